import { thisHostVerdict, type ProcessState } from '../state/lock/liveness.js';
import type { ReadRecord } from '../state/lock/record.js';

/** Who holds an output folder's lock, as `clipmill status` shows it: never its token. Every field is null when nobody holds it. */
export interface StatusLock {
  held: boolean;
  pid: number | null;
  host: string | null;
  started_at: string | null;
  /** The lock file's modification time: the holder refreshes it every few seconds (by its own clock). */
  heartbeat_at: string | null;
  /** Its age by this host's clock; null for another host's lock, whose clock may differ from ours. */
  heartbeat_age_seconds: number | null;
  /** Whether the holder still runs; null when it cannot be told (an unreadable lock, or another host's that did not move while watched). */
  alive: boolean | null;
  /**
   * `process`: its pid checked on this host; `heartbeat`: this host's older lock (no process start time recorded), by
   * its heartbeat's age on this host's one clock; `watch`: another host's, by whether it moved while status watched it.
   */
  judged_by: 'process' | 'heartbeat' | 'watch' | null;
  /** How long status watched another host's lock (seconds); null otherwise. */
  watched_seconds: number | null;
}

export const NO_LOCK: StatusLock = {
  held: false,
  pid: null,
  host: null,
  started_at: null,
  heartbeat_at: null,
  heartbeat_age_seconds: null,
  alive: null,
  judged_by: null,
  watched_seconds: null,
};

/** A lock as read: its record (undefined when unreadable), its mtime, the lock instance it is. */
export interface SeenLock {
  record: ReadRecord | undefined;
  mtimeMs: number;
  identity: string;
}

/**
 * How the holder was judged: `local` is its process state when it runs on this host (see lock/judge.ts); another
 * host's lock is watched (`watch`), never judged by comparing its mtime with our clock (see lock/liveness.ts).
 */
export type LockJudgement = { local: ProcessState } | { watch: { ms: number; moved: boolean } } | undefined;

/** Pure: the lock as read and judged. */
export function lockView(seen: SeenLock | undefined, judged: LockJudgement, staleMs: number, nowMs: number): StatusLock {
  if (!seen) return NO_LOCK;
  const ageMs = Math.max(0, nowMs - seen.mtimeMs);
  const heartbeat = { heartbeat_at: new Date(seen.mtimeMs).toISOString(), heartbeat_age_seconds: Math.round(ageMs / 1000) };
  const record = seen.record;
  if (!record) return { ...NO_LOCK, held: true, ...heartbeat };
  const holder = { held: true, pid: record.pid, host: record.host, started_at: record.started_at, ...heartbeat, watched_seconds: null };
  if (judged !== undefined && 'watch' in judged) {
    // Its mtime comes from its clock: only whether it moved is told, never how old it is.
    const watched_seconds = Math.round(judged.watch.ms / 1000);
    return { ...holder, heartbeat_age_seconds: null, alive: judged.watch.moved ? true : null, judged_by: 'watch', watched_seconds };
  }
  const local = judged?.local ?? 'unknown';
  return { ...holder, alive: thisHostVerdict(local, ageMs, staleMs).kind === 'live', judged_by: local === 'unknown' ? 'heartbeat' : 'process' };
}

/** Whether a run is at work on the folder now: held, and not known to be gone. */
export function isActive(lock: StatusLock | null): boolean {
  return lock?.held === true && lock.alive !== false;
}
