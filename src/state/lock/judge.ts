/** Applies the liveness rules to a lock or claim as read: the observations (process, clocks, watch) are made here. */
import type { Seen } from './files.js';
import {
  bootChanged,
  claimStaleElsewhere,
  claimStaleOnThisHost,
  isLocal,
  otherHostVerdict,
  startTimeState,
  thisHostVerdict,
  unreadableVerdict,
  watchesOtherHosts,
  type ProcessState,
  type Verdict,
} from './liveness.js';
import type { Settings } from './options.js';
import { isAlive, startTicks } from './proc.js';
import type { LockRecord, ReadRecord } from './record.js';
import type { Watch } from './watch.js';

/** Whether a holder on this host still runs (see ProcessState); /proc is read only when the answer needs it. */
export async function localState(holder: ReadRecord, me: LockRecord): Promise<ProcessState> {
  if (bootChanged(holder, me)) return 'gone';
  if (!isAlive(holder.pid)) return 'gone';
  if (holder.pid_start === undefined) return 'unknown';
  const start = await startTicks(holder.pid);
  return startTimeState(holder.pid_start, start, start !== undefined || isAlive(holder.pid));
}

/** Whether the lock `seen` belongs to a live run (see liveness.ts for the rules). */
export async function judge(seen: Seen, me: LockRecord, o: Settings, watch: Watch): Promise<Verdict> {
  const holder = seen.record;
  if (!holder) return unreadableVerdict(Date.now() - seen.mtimeMs, watch.lock(seen).ms, o.graceMs);
  if (isLocal(holder, me)) {
    const state = await localState(holder, me);
    return thisHostVerdict(state, Date.now() - seen.mtimeMs, o.staleMs);
  }
  if (!watchesOtherHosts(o)) return { kind: 'live' }; // the caller will not wait long enough to tell
  return otherHostVerdict(watch.lock(seen), o);
}

/** A claim is passed over when its taker is gone: judged like a lock, with `claimStaleMs` (claims have no heartbeat). */
export async function claimIsStale(file: string, claim: Seen, me: LockRecord, o: Settings, watch: Watch): Promise<boolean> {
  const record = claim.record;
  if (record && isLocal(record, me)) {
    const state = await localState(record, me);
    return claimStaleOnThisHost(state, Date.now() - claim.mtimeMs, o.claimStaleMs);
  }
  return claimStaleElsewhere(watch.claim(file, claim), record !== undefined, Date.now() - claim.mtimeMs, o.claimStaleMs);
}
