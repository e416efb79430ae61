import { hostname } from 'node:os';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { STATE_DIR } from './journal.js';

export const LOCK_FILE = 'lock';

export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
}

/** Another live run holds the folder: the CLI reports it and exits 2 without touching anything. */
export class LockedError extends Error {
  constructor(
    readonly holder: LockHolder,
    readonly file: string,
  ) {
    super(
      `another clipmill run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is using this output folder; ` +
        `wait for it to finish, or use another --out. If you are sure it is gone, delete ${file}`,
    );
    this.name = 'LockedError';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface HeldLock {
  file: string;
  /** Set when a dead run's lock was taken over. */
  tookOverFrom?: LockHolder;
  release(): Promise<void>;
}

/**
 * One run per output folder: a lock file created exclusively, holding the pid and host. A lock left by a
 * dead process on this host is taken over; a live one, or one from another host, is refused.
 */
export async function acquireLock(outDir: string): Promise<HeldLock> {
  const dir = path.join(outDir, STATE_DIR);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), started_at: new Date().toISOString() };
  let tookOverFrom: LockHolder | undefined;
  for (let tries = 0; tries < 3; tries++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(`${JSON.stringify(me)}\n`);
      await handle.sync();
      await handle.close();
      return { file, ...(tookOverFrom && { tookOverFrom }), release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const text = await readFile(file, 'utf8').catch(() => '');
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(text) as LockHolder;
    } catch {
      holder = undefined; // a lock torn by a crash while it was written: its writer is gone
    }
    if (holder && (holder.host !== me.host || isAlive(holder.pid))) throw new LockedError(holder, file);
    tookOverFrom = holder ?? { pid: 0, host: me.host, started_at: 'unknown' };
    await rm(file, { force: true });
  }
  throw new Error(`could not take the lock ${file}: other runs keep racing for it`);
}
