import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { STATE_DIR } from '../journal.js';
import { LockContestedError, LockedError } from './errors.js';
import { createExclusive, readSeen, removeLeftovers } from './files.js';
import { hold, type HeldLock } from './heartbeat.js';
import { judge } from './judge.js';
import { acquireBudgetMs, resolveSettings, type LockOptions, type Settings } from './options.js';
import { readOwnIdentity } from './proc.js';
import { holderOf, LOCK_FILE, type LockHolder, type LockRecord } from './record.js';
import { takeOver } from './takeover.js';
import { Watch } from './watch.js';

/** This acquisition's record: who we are, and a token no other acquisition has. */
async function ownRecord(): Promise<LockRecord> {
  return {
    pid: process.pid,
    host: hostname(),
    started_at: new Date().toISOString(),
    ...(await readOwnIdentity()),
    token: randomBytes(16).toString('hex'),
  };
}

type Round = { placed: false } | { placed: true; tookOverFrom?: LockHolder };

/** One try: create the lock, or judge the one there and take it over when stale. A live one is refused (LockedError). */
async function tryOnce(file: string, text: string, me: LockRecord, o: Settings, watch: Watch): Promise<Round> {
  if (await createExclusive(file, text)) return { placed: true };
  const seen = await readSeen(file);
  if (!seen) return { placed: false }; // released between our attempt and the read
  const verdict = await judge(seen, me, o, watch);
  if (verdict.kind === 'live') throw new LockedError(holderOf(seen.record!), file);
  if (verdict.kind === 'wait') {
    await sleep(verdict.ms);
    return { placed: false };
  }
  const result = await takeOver(file, seen, text, me, o, watch);
  if (result.outcome === 'live') throw new LockedError(holderOf(result.seen.record!), file);
  if (result.outcome === 'busy') await sleep(10 + Math.random() * 30);
  if (result.outcome !== 'taken') return { placed: false };
  return { placed: true, tookOverFrom: seen.record ? holderOf(seen.record) : { pid: 0, host: me.host, started_at: 'unknown' } };
}

/**
 * One run per output folder. The lock file `<out>/.clipmill/lock` holds `{pid, host, started_at, pid_start, boot_id,
 * pid_ns, token}` (the process identity where /proc has it); it is written whole to a temporary file and linked into
 * place, so it exists complete or not at all. A stale lock (see judge: on this host its process gone or its pid
 * reused; on another host its mtime standing still for `staleMs` while we watch, polling every `watchIntervalMs`;
 * unreadable for `graceMs`) is taken over through an exclusive claim (see takeOver); a live one is refused with
 * LockedError. The holder refreshes the lock's mtime every `heartbeatMs` and checks its token each time: if another
 * token is there, `lost` is aborted.
 */
export async function acquireLock(outDir: string, options: LockOptions = {}): Promise<HeldLock> {
  const o = resolveSettings(options);
  const dir = path.join(outDir, STATE_DIR);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me = await ownRecord();
  const text = `${JSON.stringify(me)}\n`;
  const watch = new Watch();
  const deadline = performance.now() + acquireBudgetMs(o);
  for (;;) {
    if (performance.now() > deadline) throw new LockContestedError(file);
    const round = await tryOnce(file, text, me, o, watch);
    if (!round.placed) continue;
    // Verified owner: the file now holds our token, or someone else won and the next round says who.
    const mine = await readSeen(file);
    if (mine?.record?.token !== me.token) continue;
    await removeLeftovers(file, me.token);
    return hold(file, me, o, round.tookOverFrom);
  }
}
