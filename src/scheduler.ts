import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The requests-per-minute gate every provider API call passes (creates, polls, lists; not CDN downloads).
 * Requests are spaced evenly, so no minute holds more than the limit; a 429 pushes every caller back.
 */
export class RateGate {
  private readonly intervalMs: number;
  private nextSlotMs = 0;

  constructor(requestsPerMinute: number, private readonly now: () => number = () => performance.now()) {
    this.intervalMs = 60_000 / requestsPerMinute;
  }

  /** Waits for this caller's slot; rejects at once when the signal aborts. */
  async take(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const now = this.now();
    const slot = Math.max(now, this.nextSlotMs);
    this.nextSlotMs = slot + this.intervalMs;
    if (slot > now) await sleep(slot - now, undefined, { signal });
  }

  /** After a 429: nobody sends before `delayMs` from now. */
  holdOff(delayMs: number): void {
    this.nextSlotMs = Math.max(this.nextSlotMs, this.now() + delayMs);
  }
}
