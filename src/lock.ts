import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { STATE_DIR } from './journal.js';

export const LOCK_FILE = 'lock';

export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
}

/** What a lock (or a takeover claim) file holds: the holder, and a token unique to one acquisition. */
interface LockRecord extends LockHolder {
  token: string;
}

/** Another live run holds the folder: the CLI reports it and exits 2 without touching anything. */
export class LockedError extends Error {
  constructor(
    readonly holder: LockHolder,
    readonly file: string,
  ) {
    super(
      `another clipmill run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is using this output folder; ` +
        `wait for it to finish, or use another --out. A lock whose run is gone is taken over by itself (at once on this host, ` +
        `after its heartbeat stops for a while on another); if you are sure it is gone, you may also delete ${file}`,
    );
    this.name = 'LockedError';
  }
}

/** The reason `HeldLock.lost` is aborted with: another process now holds the lock file, or it vanished. */
export class LockLostError extends Error {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`lost the lock ${file}: ${detail}; this run stops starting new work so that only one run writes the folder`);
    this.name = 'LockLostError';
  }
}

export interface LockOptions {
  /** How often the holder refreshes the lock's mtime and checks that the lock is still its own (default 5 s). */
  heartbeatMs?: number;
  /** A lock whose mtime is older than this is stale even if its pid is alive: a reused pid, or another host's dead run (default 30 s). */
  staleMs?: number;
  /** An unreadable (empty, torn) lock younger than this is waited for, older is stale (default 2 s). */
  graceMs?: number;
  /** A takeover claim older than this (or whose pid is dead on this host) is passed over (default 5 s). */
  claimStaleMs?: number;
}

export interface HeldLock {
  file: string;
  /** Set when a stale lock (dead pid, heartbeat stopped, unreadable) was taken over. */
  tookOverFrom?: LockHolder;
  /** Aborted (with a LockLostError) when the heartbeat finds the lock is no longer ours. */
  lost: AbortSignal;
  /** Stops the heartbeat and removes the lock if it still holds our token. */
  release(): Promise<void>;
}

const DEFAULTS: Required<LockOptions> = { heartbeatMs: 5_000, staleMs: 30_000, graceMs: 2_000, claimStaleMs: 5_000 };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function parseRecord(text: string): (LockHolder & { token?: string }) | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, started_at, token } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || typeof host !== 'string') return undefined;
    return { pid, host, started_at: typeof started_at === 'string' ? started_at : 'unknown', ...(typeof token === 'string' && { token }) };
  } catch {
    return undefined;
  }
}

interface Seen {
  text: string;
  record: (LockHolder & { token?: string }) | undefined;
  mtimeMs: number;
  /** Names this one lock instance: its token, or (a lock without one, which nobody heartbeats) a hash of its inode, mtime and bytes. */
  identity: string;
}

/** Reads a lock or claim through one descriptor, so content and mtime belong to the same file. Undefined when it is gone. */
async function readSeen(file: string): Promise<Seen | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if (code(error) === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const info = await handle.stat();
    const text = await handle.readFile('utf8');
    const record = parseRecord(text);
    const identity =
      record?.token && /^[0-9a-f]{8,64}$/.test(record.token)
        ? record.token
        : `h${createHash('sha256').update(`${info.dev}:${info.ino}:${info.mtimeMs}:${text}`).digest('hex').slice(0, 32)}`;
    return { text, record, mtimeMs: info.mtimeMs, identity };
  } finally {
    await handle.close();
  }
}

/** `lock.<random>.tmp` next to the lock, for the lock and its claims alike (never under a claim's prefix). */
function tempName(file: string): string {
  return path.join(path.dirname(file), `${LOCK_FILE}.${randomBytes(8).toString('hex')}.tmp`);
}

/** Writes a whole file under a temporary name, on disk, so no reader ever sees it half written. */
async function writeTemp(file: string, text: string): Promise<string> {
  const temp = tempName(file);
  const handle = await open(temp, 'wx');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** Creates `file` with `text` only if nothing is there: a complete file appears at once (link), or EEXIST. */
async function createExclusive(file: string, text: string): Promise<boolean> {
  const temp = await writeTemp(file, text);
  try {
    await link(temp, file);
    return true;
  } catch (error) {
    if (code(error) === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/** Replaces `file` with `text` in one step (rename): readers see the old file or the new one, never a mix. */
async function replaceAtomic(file: string, text: string): Promise<void> {
  const temp = await writeTemp(file, text);
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

type Verdict = { kind: 'live' } | { kind: 'stale'; why: string } | { kind: 'wait'; ms: number };

function judge(seen: Seen, myHost: string, o: Required<LockOptions>): Verdict {
  const age = Date.now() - seen.mtimeMs;
  const holder = seen.record;
  if (!holder) return age >= o.graceMs ? { kind: 'stale', why: 'unreadable' } : { kind: 'wait', ms: o.graceMs - age };
  if (age > o.staleMs) return { kind: 'stale', why: 'heartbeat stopped' };
  if (holder.host === myHost && !isAlive(holder.pid)) return { kind: 'stale', why: 'process gone' };
  return { kind: 'live' };
}

function claimIsStale(claim: Seen, myHost: string, o: Required<LockOptions>): boolean {
  if (Date.now() - claim.mtimeMs > o.claimStaleMs) return true;
  return claim.record !== undefined && claim.record.host === myHost && !isAlive(claim.record.pid);
}

/**
 * Replaces the stale lock `seen` with ours, if nobody else does it first. Each lock instance has its own chain of
 * claim files `lock.takeover.<identity>.<n>`, created exclusively: only the holder of a claim may replace that
 * instance, and it does so only after re-reading the lock under the claim and finding the same instance, still stale.
 * A claim left by a crashed taker is never deleted (deleting is what races): the next taker uses claim n+1.
 */
async function takeOver(file: string, seen: Seen, text: string, myHost: string, o: Required<LockOptions>): Promise<'taken' | 'retry' | 'busy'> {
  const prefix = `${file}.takeover.${seen.identity}.`;
  for (let n = 0; n < 100; n++) {
    const claim = `${prefix}${n}`;
    if (!(await createExclusive(claim, text))) {
      const other = await readSeen(claim);
      if (!other) return 'retry'; // the winner cleaned up: the lock is someone's now
      if (claimIsStale(other, myHost, o)) continue;
      return 'busy';
    }
    try {
      const now = await readSeen(file);
      if (!now || now.identity !== seen.identity || judge(now, myHost, o).kind !== 'stale') return 'retry';
      await replaceAtomic(file, text);
      await removeClaims(file, seen.identity);
      return 'taken';
    } finally {
      await unlink(claim).catch(() => {});
    }
  }
  return 'busy';
}

async function removeClaims(file: string, identity: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = `${path.basename(file)}.takeover.${identity}.`;
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) await unlink(path.join(dir, name)).catch(() => {});
  }
}

/** Temp files and claims of crashed acquirers, left long enough ago that nobody can still be using them. */
async function removeLeftovers(file: string, keepIdentity: string): Promise<void> {
  const dir = path.dirname(file);
  const base = path.basename(file);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.startsWith(`${base}.`) || name.includes(keepIdentity)) continue;
    if (!name.endsWith('.tmp') && !name.startsWith(`${base}.takeover.`)) continue;
    const full = path.join(dir, name);
    const info = await stat(full).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > 60_000) await unlink(full).catch(() => {});
  }
}

/**
 * One run per output folder. The lock file `<out>/.clipmill/lock` holds `{pid, host, started_at, token}`; it is
 * written whole to a temporary file and linked into place, so it exists complete or not at all. A stale lock (its
 * process gone on this host, its heartbeat older than `staleMs` on any host, or unreadable for `graceMs`) is taken
 * over through an exclusive claim (see takeOver); a live one is refused with LockedError. The holder refreshes the
 * lock's mtime every `heartbeatMs` and checks its token each time: if another token is there, `lost` is aborted.
 */
export async function acquireLock(outDir: string, options: LockOptions = {}): Promise<HeldLock> {
  const o = { ...DEFAULTS, ...options };
  if (o.staleMs < 3 * o.heartbeatMs) throw new Error(`lock staleMs (${o.staleMs}) must be at least three heartbeats (${o.heartbeatMs} ms)`);
  const dir = path.join(outDir, STATE_DIR);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me: LockRecord = { pid: process.pid, host: hostname(), started_at: new Date().toISOString(), token: randomBytes(16).toString('hex') };
  const text = `${JSON.stringify(me)}\n`;
  const deadline = Date.now() + o.graceMs + o.claimStaleMs + 10_000;
  let tookOverFrom: LockHolder | undefined;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`could not take the lock ${file}: other runs keep racing for it`);
    let seen: Seen | undefined;
    if (await createExclusive(file, text)) {
      tookOverFrom = undefined;
    } else {
      seen = await readSeen(file);
      if (!seen) continue; // released between our attempt and the read
      const verdict = judge(seen, me.host, o);
      if (verdict.kind === 'live') throw new LockedError(seen.record!, file);
      if (verdict.kind === 'wait') {
        await sleep(Math.min(verdict.ms, 100));
        continue;
      }
      const outcome = await takeOver(file, seen, text, me.host, o);
      if (outcome === 'busy') await sleep(10 + Math.random() * 30);
      if (outcome !== 'taken') continue;
      tookOverFrom = seen.record ? { pid: seen.record.pid, host: seen.record.host, started_at: seen.record.started_at } : { pid: 0, host: me.host, started_at: 'unknown' };
    }
    // Verified owner: the file now holds our token, or someone else won and the next round says who.
    const mine = await readSeen(file);
    if (mine?.record?.token !== me.token) continue;
    await removeLeftovers(file, me.token);
    return hold(file, me, o, tookOverFrom);
  }
}

function hold(file: string, me: LockRecord, o: Required<LockOptions>, tookOverFrom: LockHolder | undefined): HeldLock {
  const controller = new AbortController();
  let lastBeat = Date.now();
  let beating: Promise<void> | undefined;
  const beat = async (): Promise<void> => {
    let handle;
    try {
      handle = await open(file, 'r');
      const record = parseRecord(await handle.readFile('utf8'));
      if (record?.token !== me.token) {
        const who = record ? `pid ${record.pid} on ${record.host} (started ${record.started_at}) holds it now` : 'the lock file holds something else';
        controller.abort(new LockLostError(file, who));
        return;
      }
      // The descriptor we read the token through: we refresh the file we checked, never one that replaced it.
      const now = new Date();
      await handle.utimes(now, now);
      lastBeat = Date.now();
    } catch (error) {
      if (code(error) === 'ENOENT') controller.abort(new LockLostError(file, 'the lock file was deleted'));
      else if (Date.now() - lastBeat > o.staleMs / 2) controller.abort(new LockLostError(file, `the lock could not be refreshed (${(error as Error).message})`));
    } finally {
      await handle?.close().catch(() => {});
    }
  };
  const timer = setInterval(() => {
    if (beating || controller.signal.aborted) return;
    beating = beat().finally(() => {
      beating = undefined;
      if (controller.signal.aborted) clearInterval(timer);
    });
  }, o.heartbeatMs);
  timer.unref();
  let released: Promise<void> | undefined;
  const release = async (): Promise<void> => {
    clearInterval(timer);
    await beating;
    const seen = await readSeen(file).catch(() => undefined);
    if (seen?.record?.token === me.token) await unlink(file).catch((error: unknown) => {
      if (code(error) !== 'ENOENT') throw error;
    });
  };
  return {
    file,
    ...(tookOverFrom && { tookOverFrom }),
    lost: controller.signal,
    release: () => (released ??= release()),
  };
}
