import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TEMPORARY_FILE_PATTERN } from '../execute/download.js';
import type { RowState } from '../lifecycle/events.js';

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Keys of rows the journal calls downloaded whose file is gone, or differs in size or hash from what
 * was recorded: they are downloaded again from the same run (never generated again).
 */
export async function findDamagedOutputs(outDir: string, states: ReadonlyMap<string, RowState>, keys: Iterable<string>): Promise<Set<string>> {
  const damaged = new Set<string>();
  for (const key of keys) {
    const output = states.get(key)?.status === 'downloaded' ? states.get(key)?.output : undefined;
    if (!output) continue;
    const file = path.join(outDir, output.path);
    const info = await stat(file).catch(() => undefined);
    if (info?.size !== output.bytes || (await sha256Of(file)) !== output.sha256) damaged.add(key);
  }
  return damaged;
}

/** Partial downloads left by a killed run. Only called while holding the folder's lock. */
export async function removeTemporaryFiles(outDir: string, folders: Iterable<string>): Promise<string[]> {
  const removed: string[] = [];
  for (const folder of folders) {
    const dir = path.join(outDir, folder);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names.filter((n) => TEMPORARY_FILE_PATTERN.test(n))) {
      await rm(path.join(dir, name), { force: true });
      removed.push(path.join(folder, name));
    }
  }
  return removed;
}
