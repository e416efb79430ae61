/**
 * Whether a lock's holder still runs, as pure rules over what was observed. On this host by its process: stale when
 * the pid is dead, or alive but started at another time than the lock records (a reused pid); a live pid with the
 * recorded start time is never stale, however old its heartbeat (a run suspended by Ctrl-Z or a paused VM keeps its
 * lock). Only a lock recording no start time (an older format, or no /proc) goes by its heartbeat's age there, on this
 * host's one clock. Another host's lock is stale only when its mtime stands still for `staleMs` while we watch it.
 */
import type { Settings } from './options.js';
import type { LockRecord, ReadRecord } from './record.js';

/**
 * Whether a holder on this host still runs: `gone` (pid dead, or the machine restarted since), `reused` (the pid
 * is alive but started at another time: a different process), `same` (alive, same start time: the holder itself),
 * or `unknown` (no start time recorded, or unreadable for that pid).
 */
export type ProcessState = 'gone' | 'reused' | 'same' | 'unknown';

export type Verdict = { kind: 'live' } | { kind: 'stale'; why: string } | { kind: 'wait'; ms: number };

/** A holder on this machine and in our pid namespace, whose pid we can check; any other is another host's. */
export function isLocal(holder: ReadRecord, me: LockRecord): boolean {
  return holder.host === me.host && (holder.pid_ns === undefined || me.pid_ns === undefined || holder.pid_ns === me.pid_ns);
}

/** The machine restarted since the holder wrote its record: every process it knew is gone. */
export function bootChanged(holder: ReadRecord, me: LockRecord): boolean {
  return holder.boot_id !== undefined && me.boot_id !== undefined && holder.boot_id !== me.boot_id;
}

/** A live pid's start time read now against the recorded one; `aliveNow` tells an unreadable one of a dying pid apart. */
export function startTimeState(recorded: string, current: string | undefined, aliveNow: boolean): ProcessState {
  if (current === undefined) return aliveNow ? 'unknown' : 'gone';
  return current === recorded ? 'same' : 'reused';
}

/** An unreadable lock (no writer of ours leaves one): stale once old enough by its mtime, or by how long we watched it. */
export function unreadableVerdict(ageMs: number, watchedMs: number, graceMs: number): Verdict {
  // Either clock may say so: its mtime may come from a clock ahead of ours.
  const waited = Math.max(ageMs, watchedMs);
  return waited >= graceMs ? { kind: 'stale', why: 'unreadable' } : { kind: 'wait', ms: Math.min(graceMs - waited, 100) };
}

/** A lock held on this host: by its process, and by its heartbeat's age only when no start time was recorded. */
export function thisHostVerdict(state: ProcessState, heartbeatAgeMs: number, staleMs: number): Verdict {
  if (state === 'gone') return { kind: 'stale', why: 'process gone' };
  if (state === 'reused') return { kind: 'stale', why: 'pid reused' };
  if (state === 'same') return { kind: 'live' };
  return heartbeatAgeMs > staleMs ? { kind: 'stale', why: 'heartbeat stopped' } : { kind: 'live' };
}

/** Whether this acquisition waits long enough to tell another host's stopped heartbeat from a live one. */
export function watchesOtherHosts(o: Pick<Settings, 'waitForOtherHostMs' | 'staleMs'>): boolean {
  return o.waitForOtherHostMs >= o.staleMs;
}

/** Another host's lock, by our own watch of it: a change means live, standing still for `staleMs` means stale. */
export function otherHostVerdict(watched: { ms: number; changed: boolean }, o: Pick<Settings, 'staleMs' | 'watchIntervalMs'>): Verdict {
  if (watched.changed) return { kind: 'live' };
  if (watched.ms >= o.staleMs) return { kind: 'stale', why: 'heartbeat stood still' };
  return { kind: 'wait', ms: Math.min(o.watchIntervalMs, o.staleMs - watched.ms) };
}

/** A takeover claim on this host: passed over when its taker is gone; by its age (claims have no heartbeat) if unknown. */
export function claimStaleOnThisHost(state: ProcessState, ageMs: number, claimStaleMs: number): boolean {
  if (state === 'gone' || state === 'reused') return true;
  if (state === 'same') return false;
  return ageMs > claimStaleMs;
}

/** Another host's (or an unreadable) claim: stale when it stood unchanged while watched, or, unreadable, by its age. */
export function claimStaleElsewhere(watchedMs: number, readable: boolean, ageMs: number, claimStaleMs: number): boolean {
  if (watchedMs > claimStaleMs) return true;
  // An unreadable claim (never one of ours, which appear whole) may also go by its age.
  return !readable && ageMs > claimStaleMs;
}
