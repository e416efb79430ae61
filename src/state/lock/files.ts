/** Reading and writing lock and claim files so that no reader ever sees one half written. */
import { createHash, randomBytes } from 'node:crypto';
import { link, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { LOCK_FILE, parseRecord, type ReadRecord } from './record.js';

export function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

export interface Seen {
  text: string;
  record: ReadRecord | undefined;
  mtimeMs: number;
  /** Names this one lock instance: its token, or (a lock without one, which nobody heartbeats) a hash of its inode, mtime and bytes. */
  identity: string;
}

/** Reads a lock or claim through one descriptor, so content and mtime belong to the same file. Undefined when it is gone. */
export async function readSeen(file: string): Promise<Seen | undefined> {
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
export async function createExclusive(file: string, text: string): Promise<boolean> {
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
export async function replaceAtomic(file: string, text: string): Promise<void> {
  const temp = await writeTemp(file, text);
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => {});
    throw error;
  }
}

/** The claim files of one lock instance are `<lock>.takeover.<identity>.<n>`. */
export function claimPrefix(file: string, identity: string): string {
  return `${file}.takeover.${identity}.`;
}

/** Removes every claim on the lock instance `identity` (after it was taken over: nobody needs them). */
export async function removeClaims(file: string, identity: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = path.basename(claimPrefix(file, identity));
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length))) await unlink(path.join(dir, name)).catch(() => {});
  }
}

/** Temp files and claims of crashed acquirers, left long enough ago that nobody can still be using them. */
export async function removeLeftovers(file: string, keepIdentity: string): Promise<void> {
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
