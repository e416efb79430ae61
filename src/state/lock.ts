import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, mkdir, open, readdir, readFile, readlink, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { STATE_DIR } from './journal.js';

export const LOCK_FILE = 'lock';

export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
}

/**
 * Who the holding process is on its machine, so that a live pid is told apart from a reused one (Linux /proc; each
 * field is left out where it cannot be read). `pid_start` is field 22 (`starttime`) of `/proc/<pid>/stat`, in clock
 * ticks since boot; `boot_id` names the boot it counts from; `pid_ns` the pid namespace the pid belongs to.
 */
interface ProcIdentity {
  pid_start?: string;
  boot_id?: string;
  pid_ns?: string;
}

/** What a lock (or a takeover claim) file holds: the holder, and a token unique to one acquisition. */
interface LockRecord extends LockHolder, ProcIdentity {
  token: string;
}

/** A record as read back: older lock formats lack the token and the process identity. */
type ReadRecord = LockHolder & ProcIdentity & { token?: string };

/** Another live run holds the folder: the CLI reports it and exits 2 without touching anything. */
export class LockedError extends Error {
  constructor(
    readonly holder: LockHolder,
    readonly file: string,
  ) {
    super(
      `another clipmill run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is using this output folder; ` +
        `wait for it to finish, or use another --out. A lock whose run is gone is taken over by itself (at once on this host; ` +
        `from another host once its heartbeat has stood still for a while as this run watches it); if you are sure it is gone, ` +
        `you may also delete ${file}`,
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

export interface HeldLock {
  file: string;
  /** Set when a stale lock (process gone, pid reused, heartbeat stopped, unreadable) was taken over. */
  tookOverFrom?: LockHolder;
  /** Aborted (with a LockLostError) when the heartbeat finds the lock is no longer ours. */
  lost: AbortSignal;
  /** Stops the heartbeat and removes the lock if it still holds our token. */
  release(): Promise<void>;
}

type Settings = Required<LockOptions>;

const DEFAULTS = { heartbeatMs: 5_000, staleMs: 30_000, graceMs: 2_000, claimStaleMs: 5_000, watchIntervalMs: 1_000 };

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 (`starttime`) of `/proc/<pid>/stat`: clock ticks since boot. Undefined when it cannot be read. */
async function startTicks(pid: number): Promise<string | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: count from the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const start = fields[22 - 3];
    return start !== undefined && /^\d+$/.test(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

let ownIdentity: Promise<ProcIdentity> | undefined;

/** This process's identity, read once: nothing where /proc is unavailable. */
function readOwnIdentity(): Promise<ProcIdentity> {
  return (ownIdentity ??= (async () => {
    const [start, boot, ns] = await Promise.all([
      startTicks(process.pid),
      readFile('/proc/sys/kernel/random/boot_id', 'utf8').then((text) => text.trim(), () => undefined),
      readlink('/proc/self/ns/pid').catch(() => undefined),
    ]);
    return {
      ...(start !== undefined && { pid_start: start }),
      ...(boot !== undefined && BOOT_ID.test(boot) && { boot_id: boot }),
      ...(ns !== undefined && PID_NS.test(ns) && { pid_ns: ns }),
    };
  })());
}

const BOOT_ID = /^[0-9a-f-]{8,64}$/;
const PID_NS = /^pid:\[\d+\]$/;

/** A holder on this machine and in our pid namespace, whose pid we can check; any other is another host's. */
function isLocal(holder: ReadRecord, me: LockRecord): boolean {
  return holder.host === me.host && (holder.pid_ns === undefined || me.pid_ns === undefined || holder.pid_ns === me.pid_ns);
}

/**
 * Whether a holder on this host still runs: `gone` (pid dead, or the machine restarted since), `reused` (the pid
 * is alive but started at another time: a different process), `same` (alive, same start time: the holder itself),
 * or `unknown` (no start time recorded, or unreadable for that pid).
 */
async function localState(holder: ReadRecord, me: LockRecord): Promise<'gone' | 'reused' | 'same' | 'unknown'> {
  if (holder.boot_id !== undefined && me.boot_id !== undefined && holder.boot_id !== me.boot_id) return 'gone';
  if (!isAlive(holder.pid)) return 'gone';
  if (holder.pid_start === undefined) return 'unknown';
  const start = await startTicks(holder.pid);
  if (start === undefined) return isAlive(holder.pid) ? 'unknown' : 'gone';
  return start === holder.pid_start ? 'same' : 'reused';
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function parseRecord(text: string): ReadRecord | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, started_at, token, pid_start, boot_id, pid_ns } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || typeof host !== 'string') return undefined;
    return {
      pid,
      host,
      started_at: typeof started_at === 'string' ? started_at : 'unknown',
      ...(typeof token === 'string' && { token }),
      ...(typeof pid_start === 'string' && /^\d+$/.test(pid_start) && { pid_start }),
      ...(typeof boot_id === 'string' && BOOT_ID.test(boot_id) && { boot_id }),
      ...(typeof pid_ns === 'string' && PID_NS.test(pid_ns) && { pid_ns }),
    };
  } catch {
    return undefined;
  }
}

interface Seen {
  text: string;
  record: ReadRecord | undefined;
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

/**
 * What one acquisition has seen, by its own monotonic clock (performance.now()): since when the lock, and each
 * claim, has stood unchanged (the same instance with the same mtime). Another host's files are judged by this
 * alone: its clock may run ahead or behind ours, so its mtimes are compared only with each other, never with our time.
 */
class Watch {
  private lockSeen: { key: string; since: number } | undefined;
  private readonly claimsSeen = new Map<string, { key: string; since: number }>();

  /** How long the lock has stood as `seen` shows it, and whether it changed since the last look (which restarts the count). */
  lock(seen: Seen): { ms: number; changed: boolean } {
    const key = `${seen.identity}:${seen.mtimeMs}`;
    const now = performance.now();
    if (this.lockSeen?.key === key) return { ms: now - this.lockSeen.since, changed: false };
    const changed = this.lockSeen !== undefined;
    this.lockSeen = { key, since: now };
    return { ms: 0, changed };
  }

  /** How long the claim `file` has stood as `seen` shows it. */
  claim(file: string, seen: Seen): number {
    const key = `${seen.identity}:${seen.mtimeMs}`;
    const now = performance.now();
    const before = this.claimsSeen.get(file);
    if (before?.key === key) return now - before.since;
    this.claimsSeen.set(file, { key, since: now });
    return 0;
  }
}

/**
 * Whether the lock `seen` belongs to a live run. On this host by its process: stale when the pid is dead, or alive
 * but started at another time than the lock records (a reused pid); a live pid with the recorded start time is never
 * stale, however old its heartbeat (a run suspended by Ctrl-Z or a paused VM keeps its lock). Only a lock recording
 * no start time (an older format, or no /proc) goes by its heartbeat's age there, on this host's one clock. Another
 * host's lock is stale only when its mtime stands still for `staleMs` while we watch it; a change means it is live.
 */
async function judge(seen: Seen, me: LockRecord, o: Settings, watch: Watch): Promise<Verdict> {
  const holder = seen.record;
  if (!holder) {
    // Unreadable (no writer of ours leaves one): stale when its mtime is old enough, or when it stood unchanged for
    // graceMs while we watched (its mtime may come from a clock ahead of ours).
    const waited = Math.max(Date.now() - seen.mtimeMs, watch.lock(seen).ms);
    return waited >= o.graceMs ? { kind: 'stale', why: 'unreadable' } : { kind: 'wait', ms: Math.min(o.graceMs - waited, 100) };
  }
  if (isLocal(holder, me)) {
    const state = await localState(holder, me);
    if (state === 'gone') return { kind: 'stale', why: 'process gone' };
    if (state === 'reused') return { kind: 'stale', why: 'pid reused' };
    if (state === 'same') return { kind: 'live' };
    return Date.now() - seen.mtimeMs > o.staleMs ? { kind: 'stale', why: 'heartbeat stopped' } : { kind: 'live' };
  }
  if (o.waitForOtherHostMs < o.staleMs) return { kind: 'live' }; // the caller will not wait long enough to tell
  const { ms, changed } = watch.lock(seen);
  if (changed) return { kind: 'live' };
  if (ms >= o.staleMs) return { kind: 'stale', why: 'heartbeat stood still' };
  return { kind: 'wait', ms: Math.min(o.watchIntervalMs, o.staleMs - ms) };
}

/** A claim is passed over when its taker is gone: judged like a lock, with `claimStaleMs` (claims have no heartbeat). */
async function claimIsStale(file: string, claim: Seen, me: LockRecord, o: Settings, watch: Watch): Promise<boolean> {
  const record = claim.record;
  if (record && isLocal(record, me)) {
    const state = await localState(record, me);
    if (state === 'gone' || state === 'reused') return true;
    if (state === 'same') return false;
    return Date.now() - claim.mtimeMs > o.claimStaleMs;
  }
  if (watch.claim(file, claim) > o.claimStaleMs) return true;
  // An unreadable claim (never one of ours, which appear whole) may also go by its age.
  return !record && Date.now() - claim.mtimeMs > o.claimStaleMs;
}

type TakeOver = { outcome: 'taken' | 'retry' | 'busy' } | { outcome: 'live'; seen: Seen };

/**
 * Replaces the stale lock `seen` with ours, if nobody else does it first. Each lock instance has its own chain of
 * claim files `lock.takeover.<identity>.<n>`, created exclusively: only the holder of a claim may replace that
 * instance, and it does so only after re-reading the lock under the claim and finding the same instance, still stale
 * (for another host's lock: with the mtime it had all through the watch). A lock found live then is refused.
 * A claim left by a crashed taker is never deleted (deleting is what races): the next taker uses claim n+1.
 */
async function takeOver(file: string, seen: Seen, text: string, me: LockRecord, o: Settings, watch: Watch): Promise<TakeOver> {
  const prefix = `${file}.takeover.${seen.identity}.`;
  for (let n = 0; n < 100; n++) {
    const claim = `${prefix}${n}`;
    if (!(await createExclusive(claim, text))) {
      const other = await readSeen(claim);
      if (!other) return { outcome: 'retry' }; // the winner cleaned up: the lock is someone's now
      if (await claimIsStale(claim, other, me, o, watch)) continue;
      return { outcome: 'busy' };
    }
    try {
      const now = await readSeen(file);
      if (!now) return { outcome: 'retry' };
      const verdict = await judge(now, me, o, watch);
      if (verdict.kind === 'live') return { outcome: 'live', seen: now };
      if (now.identity !== seen.identity || verdict.kind !== 'stale') return { outcome: 'retry' };
      await replaceAtomic(file, text);
      await removeClaims(file, seen.identity);
      return { outcome: 'taken' };
    } finally {
      await unlink(claim).catch(() => {});
    }
  }
  return { outcome: 'busy' };
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
 * One run per output folder. The lock file `<out>/.clipmill/lock` holds `{pid, host, started_at, pid_start, boot_id,
 * pid_ns, token}` (the process identity where /proc has it); it is written whole to a temporary file and linked into
 * place, so it exists complete or not at all. A stale lock (see judge: on this host its process gone or its pid
 * reused; on another host its mtime standing still for `staleMs` while we watch, polling every `watchIntervalMs`;
 * unreadable for `graceMs`) is taken over through an exclusive claim (see takeOver); a live one is refused with
 * LockedError. The holder refreshes the lock's mtime every `heartbeatMs` and checks its token each time: if another
 * token is there, `lost` is aborted.
 */
export async function acquireLock(outDir: string, options: LockOptions = {}): Promise<HeldLock> {
  const o: Settings = { ...DEFAULTS, ...options, waitForOtherHostMs: options.waitForOtherHostMs ?? options.staleMs ?? DEFAULTS.staleMs };
  if (o.staleMs < 3 * o.heartbeatMs) throw new Error(`lock staleMs (${o.staleMs}) must be at least three heartbeats (${o.heartbeatMs} ms)`);
  if (!(o.watchIntervalMs > 0)) throw new Error(`lock watchIntervalMs (${o.watchIntervalMs}) must be positive`);
  const dir = path.join(outDir, STATE_DIR);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me: LockRecord = {
    pid: process.pid,
    host: hostname(),
    started_at: new Date().toISOString(),
    ...(await readOwnIdentity()),
    token: randomBytes(16).toString('hex'),
  };
  const text = `${JSON.stringify(me)}\n`;
  const watch = new Watch();
  const watching = o.waitForOtherHostMs >= o.staleMs ? o.staleMs : 0;
  const deadline = performance.now() + watching + o.graceMs + o.claimStaleMs + 10_000;
  let tookOverFrom: LockHolder | undefined;
  for (;;) {
    if (performance.now() > deadline) throw new Error(`could not take the lock ${file}: other runs keep racing for it`);
    let seen: Seen | undefined;
    if (await createExclusive(file, text)) {
      tookOverFrom = undefined;
    } else {
      seen = await readSeen(file);
      if (!seen) continue; // released between our attempt and the read
      const verdict = await judge(seen, me, o, watch);
      if (verdict.kind === 'live') throw new LockedError(holderOf(seen.record!), file);
      if (verdict.kind === 'wait') {
        await sleep(verdict.ms);
        continue;
      }
      const result = await takeOver(file, seen, text, me, o, watch);
      if (result.outcome === 'live') throw new LockedError(holderOf(result.seen.record!), file);
      if (result.outcome === 'busy') await sleep(10 + Math.random() * 30);
      if (result.outcome !== 'taken') continue;
      tookOverFrom = seen.record ? holderOf(seen.record) : { pid: 0, host: me.host, started_at: 'unknown' };
    }
    // Verified owner: the file now holds our token, or someone else won and the next round says who.
    const mine = await readSeen(file);
    if (mine?.record?.token !== me.token) continue;
    await removeLeftovers(file, me.token);
    return hold(file, me, o, tookOverFrom);
  }
}

function holderOf(record: LockHolder): LockHolder {
  return { pid: record.pid, host: record.host, started_at: record.started_at };
}

function hold(file: string, me: LockRecord, o: Settings, tookOverFrom: LockHolder | undefined): HeldLock {
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
