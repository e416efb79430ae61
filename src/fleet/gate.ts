import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { RATE_WINDOW_MS, type RequestGate } from '../execute/rate-gate.js';
import { runScript, type FleetKeys } from './redis.js';
import { GATE, HOLD } from './scripts.js';

/** Admission is not arrival: a request admitted at the window's edge reaches the provider a little later. */
export const FLEET_WINDOW_MS = RATE_WINDOW_MS + 2_000;

/**
 * The account's requests-per-minute limit shared by every worker: each API request of each worker is
 * admitted by one script on Redis's own clock (a sliding window, no worker's clock involved), and a 429
 * anywhere holds every worker off.
 */
export class FleetGate implements RequestGate {
  sent = 0;
  rateLimited = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
    private readonly requestsPerMinute: number,
    private readonly windowMs = FLEET_WINDOW_MS,
  ) {}

  async take(signal: AbortSignal): Promise<void> {
    const member = randomUUID();
    for (;;) {
      signal.throwIfAborted();
      const waitMs = Number(await runScript(this.redis, GATE, [this.keys.gate, this.keys.hold], [this.requestsPerMinute, this.windowMs, member]));
      if (waitMs <= 0) break;
      await sleep(waitMs, undefined, { signal });
    }
    this.sent++;
  }

  rateLimitedFor(holdMs: number): void {
    this.rateLimited++;
    // A lost hold only means the next request may meet another 429; it is not worth failing the request over.
    void runScript(this.redis, HOLD, [this.keys.hold], [Math.max(1, Math.round(holdMs))]).catch(() => {});
  }
}
