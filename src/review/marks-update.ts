/**
 * review.json changed by one process at a time: two review servers (or a server and a hand edit) must not
 * write over each other's marks, or an old redo comes back. A lock file made with O_EXCL is held around the
 * read-modify-write, and the file is checked unchanged just before the new one replaces it.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { marksFile, readMarks, renderMarks, type Mark } from './marks.js';

/** How long a mark waits for another process's write (a write takes milliseconds). */
const LOCK_WAIT_MS = 5_000;
const RETRY_MS = 10;
/** A lock this old was left by a process that died while writing. */
const STALE_MS = 30_000;
/** Reads again this many times when the file changes under the write (a hand edit), then gives up. */
const MAX_REREADS = 5;

/** Whether the lock's holder is gone: its process has ended, or the lock is far older than any write. */
async function isStale(lockFile: string): Promise<boolean> {
  const info = await stat(lockFile).catch(() => undefined);
  if (info === undefined) return false;
  if (Date.now() - info.mtimeMs > STALE_MS) return true;
  const pid = Number((await readFile(lockFile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Takes `<file>.lock` (O_EXCL), waiting for another holder; the function it returns lets it go. */
async function lock(file: string): Promise<() => Promise<void>> {
  const lockFile = `${file}.lock`;
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return () => rm(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await isStale(lockFile)) await rm(lockFile, { force: true });
    else if (Date.now() > until)
      throw new Error(`${lockFile} is held by another process for more than ${LOCK_WAIT_MS / 1000} s: if none is writing, delete it and mark again`);
    else await sleep(RETRY_MS);
  }
}

const signatureOf = async (file: string) => {
  const info = await stat(file).catch(() => undefined);
  return info === undefined ? 'none' : `${info.ino}:${info.size}:${info.mtimeMs}`;
};

/** review.json read, changed and replaced whole (a reader sees the old marks or the new ones), under the lock. */
export async function updateMarks(outDir: string, change: (marks: Mark[]) => Mark[]): Promise<void> {
  const file = marksFile(outDir);
  const release = await lock(file);
  try {
    for (let read = 1; read <= MAX_REREADS; read++) {
      const before = await signatureOf(file);
      const text = renderMarks(change(await readMarks(outDir)));
      const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
      const handle = await open(temporary, 'w');
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
      // Edited by hand meanwhile (no lock): read again rather than write over it.
      if ((await signatureOf(file)) === before) {
        await rename(temporary, file);
        return;
      }
      await rm(temporary, { force: true });
    }
    throw new Error(`${file} kept changing while a mark was saved (is it being edited?): mark again`);
  } finally {
    await release();
  }
}
