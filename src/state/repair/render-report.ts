import path from 'node:path';
import type { ReadJournal } from '../journal.js';
import { seemingKeyOf } from './damaged-lines.js';
import type { RebuiltRow } from './rebuilt-row.js';
import { REPAIR_EXIT } from './result.js';

/** Everything `clipmill repair` found and did in a folder, for its report. */
export interface RepairFindings {
  journalFile: string;
  /** The journal's text before repair: undefined when there was none. */
  original: string | undefined;
  read: ReadJournal;
  rebuilt: readonly RebuiltRow[];
  alreadyKnown: number;
  lost: readonly string[];
  /** Rows whose last event is a create sent without an answer, with its client_ref. */
  submitting: readonly { key: string; clientRef: string | undefined }[];
  /** The repaired journal as written, or undefined when it was left as it was. */
  written: { lines: number; keptAs: string | undefined } | undefined;
  exitCode: number;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** Which lines of the journal were kept, and why the others were not. */
function renderJournalLines(f: RepairFindings): string[] {
  if (f.original === undefined || f.original === '')
    return [`journal: ${f.original === undefined ? 'missing' : 'empty'} (${f.journalFile}); rebuilding it from the sidecars`];
  const total = f.read.lines.length + f.read.damaged.length + (f.read.tornTail ? 1 : 0);
  const lines = [`journal: kept ${f.read.lines.length} of ${total} lines (${f.journalFile})`];
  for (const d of f.read.damaged) {
    const key = seemingKeyOf(d.text);
    lines.push(`  line ${d.line}: damaged, skipped${key ? ` (it seems to be about ${key})` : ''}`);
  }
  if (f.read.tornTail) lines.push(`  line ${total}: torn (a write that never finished, so its step never started), dropped`);
  return lines;
}

/** What one rebuilt row is, and which events were written for it. */
export function describeRebuiltRow(row: RebuiltRow): string {
  const wrote = row.events.map((e) => e.type).join(' + ');
  switch (row.from.kind) {
    case 'video':
      return `${row.key}: downloaded ${row.from.rel}, run ${row.from.runId} (wrote ${wrote})`;
    case 'paid-run':
      return `${row.key}: paid run ${row.from.runId} (video ${row.from.videoRel} is gone: the next run downloads it again from that run; wrote ${wrote})`;
    case 'damaged-intent':
      return `${row.key}: line ${row.from.line} was damaged, but its create's client_ref ${row.from.clientRef} was read back (the next run looks it up before any resubmit)`;
  }
}

function renderRecovery(f: RepairFindings): string[] {
  const lines = [`rebuilt from sidecars: ${plural(f.rebuilt.length, 'row')}`, ...f.rebuilt.map((row) => `  ${describeRebuiltRow(row)}`)];
  if (f.alreadyKnown > 0) lines.push(`already recorded in the journal: ${plural(f.alreadyKnown, 'video')}`);
  if (f.lost.length > 0) lines.push(`could not recover: ${f.lost.length}`, ...f.lost.map((line) => `  ${line}`));
  return lines;
}

function renderSubmitting(f: RepairFindings): string[] {
  if (f.submitting.length === 0) return [];
  return [
    `rows whose last event is a create sent without an answer (submitting): ${f.submitting.length}. repair sends nothing to the provider, ` +
      'and looking runs up by client_ref is not part of repair yet: the next `clipmill run` looks each one up before any resubmit ' +
      '(on fal, which has no run list, check its dashboard first)',
    ...f.submitting.map((row) => `  ${row.key}${row.clientRef ? ` (client_ref ${row.clientRef})` : ''}`),
  ];
}

function renderOutcome(f: RepairFindings): string[] {
  const lines: string[] = [];
  if (f.original === undefined || f.original === '') {
    lines.push('runs made but not downloaded yet left no sidecar: they cannot be found on disk (looking them up at the provider by client_ref is for later)');
  }
  if (f.written) lines.push(`wrote the repaired journal: ${f.written.lines} lines${f.written.keptAs ? `; the original is kept as ${f.written.keptAs}` : ''}`);
  else lines.push('the journal needs no repair: it was left as it is');
  lines.push(
    f.exitCode === REPAIR_EXIT.ok
      ? 'nothing was lost; run the same command as before to resume (nothing already paid for is paid again) (exit 0)'
      : 'something could not be recovered (listed above); the rest is in the journal, and a rerun pays nothing again for what it records (exit 1)',
  );
  return lines;
}

/** What `clipmill repair` prints for a folder it repaired (or found needing no repair). */
export function renderRepairReport(findings: RepairFindings): string[] {
  return [...renderJournalLines(findings), ...renderRecovery(findings), ...renderSubmitting(findings), ...renderOutcome(findings)];
}

/** What `clipmill repair` prints when a folder has neither a journal nor a sidecar (or is not there). */
export function renderNothingToRepair(o: {
  outDir: string;
  journalFile: string;
  folderExists: boolean;
  videos: readonly string[];
  exitCode: number;
}): string[] {
  return [
    o.folderExists
      ? `nothing to repair from in ${o.outDir}: no journal (${path.relative(o.outDir, o.journalFile)}) and no video sidecars (<manifest>/<id>.mp4.json)`
      : `no such folder: ${o.outDir}`,
    ...o.videos.map((rel) => `  ${rel}: no sidecar, cannot be recovered`),
    `(exit ${o.exitCode})`,
  ];
}
