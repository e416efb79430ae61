import { thisHostVerdict, type ProcessState } from '../state/lock/liveness.js';
import type { ReadRecord } from '../state/lock/record.js';

/** Who holds an output folder's lock, as `clipmill status` shows it: never its token. Every field is null when nobody holds it. */
export interface StatusLock {
  held: boolean;
  pid: number | null;
  host: string | null;
  started_at: string | null;
  /** The lock file's modification time: the holder refreshes it every few seconds. */
  heartbeat_at: string | null;
  heartbeat_age_seconds: number | null;
  /** Whether the holder still runs; null when the lock cannot be read. */
  alive: boolean | null;
  /** `process`: its pid checked on this host; `heartbeat`: another host's (or an older lock's), judged by the heartbeat's age. */
  judged_by: 'process' | 'heartbeat' | null;
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
};

/**
 * Pure: the lock as read. `local` is the holder's process state when it runs on this host (see lock/judge.ts);
 * another host's holder is alive while its heartbeat is younger than `staleMs` (its clock may differ from ours).
 */
export function lockView(
  seen: { record: ReadRecord | undefined; mtimeMs: number } | undefined,
  local: ProcessState | undefined,
  staleMs: number,
  nowMs: number,
): StatusLock {
  if (!seen) return NO_LOCK;
  const ageMs = Math.max(0, nowMs - seen.mtimeMs);
  const heartbeat = { heartbeat_at: new Date(seen.mtimeMs).toISOString(), heartbeat_age_seconds: Math.round(ageMs / 1000) };
  const record = seen.record;
  if (!record) return { ...NO_LOCK, held: true, ...heartbeat };
  const byProcess = local !== undefined && local !== 'unknown';
  const alive = local === undefined ? ageMs <= staleMs : thisHostVerdict(local, ageMs, staleMs).kind === 'live';
  return {
    held: true,
    pid: record.pid,
    host: record.host,
    started_at: record.started_at,
    ...heartbeat,
    alive,
    judged_by: byProcess ? 'process' : 'heartbeat',
  };
}

/** Whether a run is at work on the folder now: held, and not known to be gone. */
export function isActive(lock: StatusLock | null): boolean {
  return lock?.held === true && lock.alive !== false;
}
