import { setTimeout as sleep } from 'node:timers/promises';

export const RATE_WINDOW_MS = 60_000;
/** Clock and network jitter between us and the provider: keep this much clear of its window edge. */
const WINDOW_MARGIN_MS = 250;
/** After a 429 the rate halves (not below a tenth), then climbs back to the limit over this long. */
const RECOVERY_MS = 30_000;
const MIN_FACTOR = 0.1;

export interface GateState {
  requestsPerMinute: number;
  /** Earliest time the next request may go, from even spacing and any hold-off. */
  nextSlotMs: number;
  /** Send times of the most recent requests (at most `requestsPerMinute` kept). */
  recent: number[];
  /** Share of the configured rate in use: 1 normally, less after a 429. */
  factor: number;
  factorAtMs: number;
}

export function newGateState(requestsPerMinute: number): GateState {
  return { requestsPerMinute, nextSlotMs: Number.NEGATIVE_INFINITY, recent: [], factor: 1, factorAtMs: 0 };
}

function recoveredFactor(state: GateState, now: number): number {
  return Math.min(1, state.factor + ((now - state.factorAtMs) / RECOVERY_MS) * (1 - MIN_FACTOR));
}

/**
 * Pure rule: the time the next request may be sent. Requests are spaced evenly at the current rate and,
 * whatever happened before (a burst after a hold-off), no 60-second window holds more than the limit.
 */
export function reserveSlot(state: GateState, now: number): number {
  state.factor = recoveredFactor(state, now);
  state.factorAtMs = now;
  const limit = state.requestsPerMinute;
  let slot = Math.max(now, state.nextSlotMs);
  if (state.recent.length >= limit) slot = Math.max(slot, state.recent[state.recent.length - limit]! + RATE_WINDOW_MS + WINDOW_MARGIN_MS);
  state.recent.push(slot);
  if (state.recent.length > 2 * limit) state.recent.splice(0, state.recent.length - limit);
  state.nextSlotMs = slot + RATE_WINDOW_MS / (limit * state.factor);
  return slot;
}

/** Pure rule for a 429: everybody slows down (rate halved) and nobody sends before `holdMs` from now. */
export function penalise(state: GateState, now: number, holdMs: number): void {
  state.factor = Math.max(MIN_FACTOR, recoveredFactor(state, now) / 2);
  state.factorAtMs = now;
  state.nextSlotMs = Math.max(state.nextSlotMs, now + holdMs);
}

/** What a provider's API calls pass before they are sent: this process's gate, or a fleet's shared one. */
export interface RequestGate {
  /** Waits for this caller's slot; rejects at once when the signal aborts. */
  take(signal: AbortSignal): Promise<void>;
  /** After a 429: slow everybody down, and hold off for the server's Retry-After (or a default). */
  rateLimitedFor(holdMs: number): void;
}

/**
 * The requests-per-minute gate every provider API call passes (creates, polls, lists; not CDN downloads).
 */
export class RateGate implements RequestGate {
  private readonly state: GateState;
  /** Requests let through, and 429s reported back: for the end-of-run summary and the benchmark. */
  sent = 0;
  rateLimited = 0;

  constructor(
    requestsPerMinute: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.state = newGateState(requestsPerMinute);
  }

  /** Waits for this caller's slot; rejects at once when the signal aborts. */
  async take(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    const now = this.now();
    const slot = reserveSlot(this.state, now);
    if (slot > now) await sleep(slot - now, undefined, { signal });
    this.sent++;
  }

  /** After a 429: slow everybody down, and hold off for the server's Retry-After (or a default). */
  rateLimitedFor(holdMs: number): void {
    this.rateLimited++;
    penalise(this.state, this.now(), holdMs);
  }
}
