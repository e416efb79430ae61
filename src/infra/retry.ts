import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from './errors.js';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Exponential backoff with full jitter: spreads retries of many rows so they do not return together. */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Retry-After as seconds or an HTTP date, in milliseconds from `nowMs`, capped; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | undefined | null, nowMs: number, capMs: number): number | undefined {
  if (value === undefined || value === null || value.trim() === '') return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (Number.isNaN(at)) return undefined;
    ms = at - nowMs;
  }
  return Math.min(capMs, Math.max(0, Math.round(ms)));
}

/** Whether a failed call may be repeated as-is: only transient errors, and never past the last attempt. */
export function shouldRetry(error: unknown, attempt: number, policy: Pick<RetryPolicy, 'maxAttempts'>): boolean {
  return error instanceof ApiError && error.kind === 'transient' && attempt < policy.maxAttempts;
}

/** The wait before attempt `attempt + 1`: the server's Retry-After when given, else backoff. */
export function retryDelayMs(error: unknown, attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  if (error instanceof ApiError && error.retryAfterMs !== undefined) return error.retryAfterMs;
  return backoffMs(attempt, policy, random);
}

/**
 * Runs `call` until it succeeds, fails for good, or runs out of attempts; waits stop at once on abort.
 * Only for idempotent calls (reads, downloads): a create is never passed here blindly.
 */
export async function withRetry<T>(
  call: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  signal: AbortSignal,
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (error) {
      if (signal.aborted || !shouldRetry(error, attempt, policy)) throw error;
      const delayMs = retryDelayMs(error, attempt, policy);
      onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, undefined, { signal });
    }
  }
}
