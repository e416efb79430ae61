import { unlink } from 'node:fs/promises';
import { claimPrefix, createExclusive, readSeen, removeClaims, replaceAtomic, type Seen } from './files.js';
import { claimIsStale, judge } from './judge.js';
import type { Settings } from './options.js';
import type { LockRecord } from './record.js';
import type { Watch } from './watch.js';

export type TakeOver = { outcome: 'taken' | 'retry' | 'busy' } | { outcome: 'live'; seen: Seen };

/**
 * Replaces the stale lock `seen` with ours, if nobody else does it first. Each lock instance has its own chain of
 * claim files `lock.takeover.<identity>.<n>`, created exclusively: only the holder of a claim may replace that
 * instance, and it does so only after re-reading the lock under the claim and finding the same instance, still stale
 * (for another host's lock: with the mtime it had all through the watch). A lock found live then is refused.
 * A claim left by a crashed taker is never deleted (deleting is what races): the next taker uses claim n+1.
 */
export async function takeOver(file: string, seen: Seen, text: string, me: LockRecord, o: Settings, watch: Watch): Promise<TakeOver> {
  const prefix = claimPrefix(file, seen.identity);
  for (let n = 0; n < 100; n++) {
    const claim = `${prefix}${n}`;
    if (!(await createExclusive(claim, text))) {
      const other = await readSeen(claim);
      if (!other) return { outcome: 'retry' }; // the winner cleaned up: the lock is someone's now
      if (await claimIsStale(claim, other, me, o, watch)) continue;
      return { outcome: 'busy' };
    }
    try {
      return await replaceUnderClaim(file, seen, text, me, o, watch);
    } finally {
      await unlink(claim).catch(() => {});
    }
  }
  return { outcome: 'busy' };
}

/** Holding a claim: replaces the lock only if it is still the same instance, and still stale. */
async function replaceUnderClaim(file: string, seen: Seen, text: string, me: LockRecord, o: Settings, watch: Watch): Promise<TakeOver> {
  const now = await readSeen(file);
  if (!now) return { outcome: 'retry' };
  const verdict = await judge(now, me, o, watch);
  if (verdict.kind === 'live') return { outcome: 'live', seen: now };
  if (now.identity !== seen.identity || verdict.kind !== 'stale') return { outcome: 'retry' };
  await replaceAtomic(file, text);
  await removeClaims(file, seen.identity);
  return { outcome: 'taken' };
}
