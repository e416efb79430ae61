import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { TEMPORARY_FILE_PATTERN } from '../execute/download.js';
import { Bucket, isBucketUrl } from '../infra/bucket.js';
import { eachInPool } from '../infra/pool.js';
import type { RowState } from '../lifecycle/events.js';

export async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

type Output = NonNullable<RowState['output']>;

/** Files checked at once: enough to keep the disk busy, few enough to leave descriptors for the night. */
const CHECKS_AT_ONCE = 32;

/**
 * Pure: what a file's size and modification time say of a recorded video. `intact` needs both to match what
 * was journaled when it was put in place; a size that differs is `damaged`; anything else (another mtime, a
 * video journaled before mtimes were) can only be told by reading it again.
 */
export function judgeByStat(output: Output, info: { size: number; mtimeMs: number } | undefined): 'intact' | 'damaged' | 'read' {
  if (info?.size !== output.bytes) return 'damaged';
  // Within a millisecond: a time set back through a tool (cp -p, rsync -t, utimes) may round the nanoseconds.
  return output.mtimeMs !== undefined && Math.abs(info.mtimeMs - output.mtimeMs) < 1 ? 'intact' : 'read';
}

async function isDamaged(file: string, output: Output, verify: boolean): Promise<boolean> {
  const info = await stat(file).catch(() => undefined);
  const verdict = judgeByStat(output, info);
  if (verdict === 'damaged') return true;
  if (verdict === 'intact' && !verify) return false;
  return (await sha256Of(file)) !== output.sha256;
}

/** A bucket's object is intact when its size and the sha256 in its metadata are the ones journaled (reading it back would cost a download). */
async function isDamagedInBucket(bucket: Bucket, output: Output): Promise<boolean> {
  const facts = await bucket.head(output.path);
  return facts?.bytes !== output.bytes || facts.sha256 !== output.sha256;
}

/**
 * Keys of rows the journal calls downloaded whose file is gone, or differs from what was recorded: they are
 * downloaded again from the same run (never generated again). A file whose size and modification time are
 * as journaled is not read; `verify` reads every file and compares its hash.
 */
export async function findDamagedOutputs(outDir: string, states: ReadonlyMap<string, RowState>, keys: Iterable<string>, verify = false): Promise<Set<string>> {
  const recorded: [string, Output][] = [];
  for (const key of keys) {
    const state = states.get(key);
    if (state?.status === 'downloaded' && state.output) recorded.push([key, state.output]);
  }
  const damaged = new Set<string>();
  const bucket = isBucketUrl(outDir) ? Bucket.shared(outDir) : undefined;
  await eachInPool(recorded, CHECKS_AT_ONCE, async ([key, output]) => {
    const bad = bucket ? await isDamagedInBucket(bucket, output) : await isDamaged(path.join(outDir, output.path), output, verify);
    if (bad) damaged.add(key);
  });
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
