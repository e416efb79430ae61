import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { syncDirectory } from '../../execute/download.js';
import { writeFully } from '../disk-write.js';

/** A time as it can appear in a file name. */
function fileTimestamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

/** Writes the whole journal under a temporary name, on disk, then renames it into place. */
export async function writeJournalAtomically(file: string, lines: readonly string[]): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.repair-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await writeFully(handle, Buffer.from(lines.map((l) => `${l}\n`).join('')));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    await syncDirectory(path.dirname(file));
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** Copies the damaged journal beside itself (never over an earlier copy) and returns the copy's path. */
export async function keepDamagedOriginal(journalFile: string, now: Date): Promise<string> {
  const keptAs = `${journalFile}.damaged-${fileTimestamp(now)}`;
  await copyFile(journalFile, keptAs, constants.COPYFILE_EXCL);
  return keptAs;
}
