import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApiProtocol, SimulatorContext } from './context.js';
import { errorReply, sendReply } from './http.js';
import type { Protocol, Reply } from './types.js';

const MINUTE_MS = 60_000;

export type Fault = 'error' | 'reset';

/** First index in a sorted array whose value is at least `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Arrival times of API requests, to enforce the per-minute limit and to measure a client's rate. */
export class RequestMeter {
  private readonly arrivals: number[] = [];

  record(now: number): void {
    this.arrivals.push(now);
  }

  /** Requests in the sliding minute that ends now. */
  inLastMinute(now: number): number {
    return this.arrivals.length - lowerBound(this.arrivals, now - MINUTE_MS + 1);
  }

  /** Seconds until the oldest request that puts us over `limit` leaves the window. */
  retryAfterSeconds(limit: number, now: number): number {
    const oldest = this.arrivals[this.arrivals.length - limit - 1] ?? now;
    return Math.max(1, Math.ceil((oldest + MINUTE_MS - now) / 1000));
  }

  /** The most requests seen in any 60-second window. */
  maxInAnyMinute(): number {
    let most = 0;
    let start = 0;
    for (let end = 0; end < this.arrivals.length; end++) {
      while (this.arrivals[end]! - this.arrivals[start]! >= MINUTE_MS) start++;
      most = Math.max(most, end - start + 1);
    }
    return most;
  }
}

/** The refusal an API request gets before any route sees it: a missing or wrong key, the rate limit, a random 429. */
export function refusalOf(sim: SimulatorContext, meter: RequestMeter, api: ApiProtocol, req: IncomingMessage, now: number): Reply | undefined {
  const key = api.keyPattern.exec(req.headers.authorization ?? '')?.[1];
  if (!key || (sim.options.api_key !== undefined && key !== sim.options.api_key))
    return errorReply(api.name, 401, 'UNAUTHORIZED', 'Missing or invalid API key');
  const limit = sim.options.requests_per_minute;
  if (limit > 0 && meter.inLastMinute(now) > limit) {
    sim.stats.rateLimitedOverLimit++;
    return errorReply(api.name, 429, 'RATE_LIMITED', `Rate limit of ${limit} requests per minute exceeded`, {
      'retry-after': String(meter.retryAfterSeconds(limit, now)),
    });
  }
  if (sim.random() < sim.options.rate_limit_rate) {
    sim.stats.rateLimitedRandom++;
    // One version of the docs sends Retry-After with a 429, another sends none: half and half.
    const headers: Record<string, string> = sim.random() < 0.5 ? { 'retry-after': '1' } : {};
    return errorReply(api.name, 429, 'RATE_LIMITED', 'Too many requests', headers);
  }
  return undefined;
}

/** Draws this request's injected fault; on a create, half of them strike after the run was made (the answer is lost, not the run). */
export function drawFault(sim: SimulatorContext, isCreate: boolean): { fault: Fault | undefined; afterCreate: boolean } {
  const fault = sim.random() < sim.options.error_rate ? 'error' : sim.random() < sim.options.reset_rate ? 'reset' : undefined;
  const afterCreate = fault !== undefined && isCreate && sim.random() < 0.5;
  return { fault, afterCreate };
}

export function injectFault(sim: SimulatorContext, res: ServerResponse, protocol: Protocol, fault: Fault): void {
  if (fault === 'reset') {
    sim.stats.resets++;
    res.socket?.resetAndDestroy();
    return;
  }
  sim.stats.errors++;
  sendReply(res, errorReply(protocol, 503, 'MODEL_UNAVAILABLE', 'The model is temporarily unavailable'));
}
