import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { foldEvents } from '../../lifecycle/events.js';
import { JOURNAL_FILE, readJournalText, STATE_DIR } from '../journal.js';
import { acquireLock } from '../lock.js';
import { describeLostLines, salvageIntents } from './damaged-lines.js';
import { readTextIfPresent } from './read-if-present.js';
import { recoverFromSidecars } from './recover-sidecars.js';
import { renderNothingToRepair, renderRepairReport } from './render-report.js';
import { REPAIR_EXIT, type RepairResult } from './result.js';
import { scanOutputFolder } from './scan-folder.js';
import { spliceRebuiltRows } from './splice-rows.js';
import { keepDamagedOriginal, writeJournalAtomically } from './write-journal.js';

/** Before taking the lock: a folder with neither a journal nor a sidecar has nothing to repair from (the result saying so), else undefined. */
async function resultIfNothingToRepair(outDir: string, journalFile: string): Promise<RepairResult | undefined> {
  const folder = await stat(outDir).catch(() => undefined);
  const folderExists = folder?.isDirectory() === true;
  const text = folderExists ? await readFile(journalFile, 'utf8').catch(() => '') : '';
  const { videos, sidecars } = folderExists ? await scanOutputFolder(outDir) : { videos: [], sidecars: [] };
  if (text !== '' || sidecars.length > 0) return undefined;
  const unrecovered = videos.map((v) => v.rel);
  const exitCode = REPAIR_EXIT.nothingHere;
  const lines = renderNothingToRepair({ outDir, journalFile, folderExists, videos: unrecovered, exitCode });
  return { exitCode, lines, journalFile, keptLines: 0, damagedLines: [], rebuilt: [], unrecovered, submitting: [] };
}

/** Replaces the journal with its repaired lines, keeping a non-empty original beside it; returns the kept copy's path. */
async function replaceJournal(journalFile: string, original: string | undefined, lines: readonly string[], now: Date): Promise<string | undefined> {
  const keptAs = original !== undefined && original !== '' ? await keepDamagedOriginal(journalFile, now) : undefined;
  await writeJournalAtomically(journalFile, lines);
  return keptAs;
}

/** The repair itself, with the folder's lock held: read what survives, rebuild what the disk proves, write it back when anything changed. */
async function repairLocked(outDir: string, journalFile: string, now: Date): Promise<RepairResult> {
  const original = await readTextIfPresent(journalFile);
  const read = readJournalText(original ?? '');
  const fromDisk = await recoverFromSidecars(outDir, read.events, now);
  const salvaged = salvageIntents(read.damaged);
  const rebuilt = [...fromDisk.rows, ...salvaged.rows];
  const repaired = spliceRebuiltRows(read, rebuilt);
  const lost = [...describeLostLines(read.damaged, salvaged.lines), ...fromDisk.problems];
  const after = foldEvents(repaired.events);
  const submitting = [...after.values()]
    .filter((s) => s.status === 'submitting')
    .map((s) => s.key)
    .sort();

  const changed = read.damaged.length > 0 || read.tornTail || rebuilt.length > 0;
  const keptAs = changed ? await replaceJournal(journalFile, original, repaired.lines, now) : undefined;
  const exitCode = lost.length > 0 ? REPAIR_EXIT.lost : REPAIR_EXIT.ok;
  const lines = renderRepairReport({
    journalFile,
    original,
    read,
    rebuilt,
    alreadyKnown: fromDisk.alreadyKnown.length,
    lost,
    submitting: submitting.map((key) => ({ key, clientRef: after.get(key)?.clientRef })),
    written: changed ? { lines: repaired.lines.length, keptAs } : undefined,
    exitCode,
  });
  return {
    exitCode,
    lines,
    journalFile,
    ...(keptAs !== undefined && { keptAs }),
    keptLines: read.lines.length,
    damagedLines: read.damaged.map((d) => d.line),
    rebuilt: rebuilt.map((row) => row.key),
    unrecovered: fromDisk.unrecovered,
    submitting,
  };
}

/**
 * `clipmill repair`: rebuilds a folder's journal from every line that still parses, and from the
 * sidecars beside the videos (the `downloaded` state of rows the journal lost), under the folder's lock.
 * Sends nothing to any provider. The damaged original is kept beside the repaired one.
 */
export async function repairFolder(outDirArg: string, now: Date = new Date()): Promise<RepairResult> {
  const outDir = path.resolve(outDirArg);
  const journalFile = path.join(outDir, STATE_DIR, JOURNAL_FILE);
  const nothingHere = await resultIfNothingToRepair(outDir, journalFile);
  if (nothingHere) return nothingHere;
  const lock = await acquireLock(outDir);
  try {
    return await repairLocked(outDir, journalFile, now);
  } finally {
    await lock.release();
  }
}
