/** The lock's timing knobs, their defaults, and the rules they must keep (pure). */

export interface LockOptions {
  /** How often the holder refreshes the lock's mtime and checks that the lock is still its own (default 5 s). */
  heartbeatMs?: number;
  /**
   * Another host's lock whose mtime stands still for this long, watched by this process's own monotonic clock, is
   * stale (its clock is never compared with ours). On this host only a lock without a recorded start time (an older
   * format, or no /proc) is judged by its heartbeat: stale when its mtime is older than this (default 30 s).
   */
  staleMs?: number;
  /**
   * How long acquireLock may wait watching another host's lock (default staleMs; it never watches longer than
   * staleMs). Less than staleMs means the caller does not want to wait: another host's lock is then refused at once,
   * as it is whenever it changes while watched.
   */
  waitForOtherHostMs?: number;
  /** How often another host's lock (or an unreadable one) is re-read while it is watched (default 1 s). */
  watchIntervalMs?: number;
  /** An unreadable (empty, torn) lock younger than this is waited for, older is stale (default 2 s). */
  graceMs?: number;
  /**
   * A takeover claim is passed over when its process is gone or its pid reused (this host), when it has stood
   * unchanged this long while watched (another host), or (this host, no start time recorded) when older than this
   * (default 5 s).
   */
  claimStaleMs?: number;
}

export type Settings = Required<LockOptions>;

const DEFAULTS = { heartbeatMs: 5_000, staleMs: 30_000, graceMs: 2_000, claimStaleMs: 5_000, watchIntervalMs: 1_000 };

/** The options with their defaults, refused when a holder's heartbeat could not keep its lock fresh. */
export function resolveSettings(options: LockOptions): Settings {
  const o: Settings = { ...DEFAULTS, ...options, waitForOtherHostMs: options.waitForOtherHostMs ?? options.staleMs ?? DEFAULTS.staleMs };
  if (o.staleMs < 3 * o.heartbeatMs) throw new Error(`lock staleMs (${o.staleMs}) must be at least three heartbeats (${o.heartbeatMs} ms)`);
  if (!(o.watchIntervalMs > 0)) throw new Error(`lock watchIntervalMs (${o.watchIntervalMs}) must be positive`);
  return o;
}

/** How long one acquisition may keep trying before it calls the contest a race it cannot win. */
export function acquireBudgetMs(o: Settings): number {
  const watching = o.waitForOtherHostMs >= o.staleMs ? o.staleMs : 0;
  return watching + o.graceMs + o.claimStaleMs + 10_000;
}
