import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bucket, isBucketUrl } from '../infra/bucket.js';
import { InputError } from '../load/problem.js';
import { actionFor } from '../plan/plan.js';
import { buildReport, type Report } from '../report/build.js';
import { writeReports } from '../report/write.js';
import { Journal, JOURNAL_FILE, STATE_DIR } from '../state/journal.js';
import { acquireLock } from '../state/lock.js';
import { findDamagedOutputs } from '../state/outputs.js';
import type { Replay } from '../state/replay.js';
import { exportFleetJournal, fleetReplay, type FleetRef } from '../fleet/journal.js';

interface Rebuilt {
  report: Report;
  files: string[];
  warning?: string;
}

/** `clipmill report`: the four reports again, from the journal alone (the last run's plan and every row's state). */
export async function rebuildReports(outDir: string, verify = false): Promise<Rebuilt> {
  const lock = await acquireLock(outDir);
  try {
    return await reportsFrom(await Journal.replay(outDir, { planItems: true }), outDir, path.join(outDir, STATE_DIR, JOURNAL_FILE), verify);
  } finally {
    await lock.release();
  }
}

/** `clipmill report --redis`: the reports from a fleet's journal, which is also written out as `journal.jsonl` beside them. */
export async function rebuildFleetReports(fleet: FleetRef, outDir: string, verify = false): Promise<Rebuilt> {
  const replay = await fleetReplay(fleet, { planItems: true });
  if (!isBucketUrl(outDir)) {
    const rebuilt = await reportsFrom(replay, outDir, `the fleet "${fleet.queue}"`, verify);
    return { ...rebuilt, files: [...rebuilt.files, await exportFleetJournal(fleet, outDir)] };
  }
  // A bucket's reports are written here first, then put beside its videos.
  const staging = await mkdtemp(path.join(tmpdir(), 'clipmill-reports-'));
  try {
    const rebuilt = await reportsFrom(replay, outDir, `the fleet "${fleet.queue}"`, verify, staging);
    const files = [...rebuilt.files, await exportFleetJournal(fleet, staging)];
    const bucket = Bucket.shared(outDir);
    for (const file of files) await bucket.putFile(file, path.basename(file), contentTypeOf(file));
    return { ...rebuilt, files: files.map((file) => `${outDir}/${path.basename(file)}`) };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function contentTypeOf(file: string): string {
  const types: Record<string, string> = {
    '.json': 'application/json',
    '.csv': 'text/csv',
    '.md': 'text/markdown',
    '.html': 'text/html',
    '.jsonl': 'application/x-ndjson',
  };
  return `${types[path.extname(file)] ?? 'application/octet-stream'}; charset=utf-8`;
}

/** The reports a journal's fold says, written into `outDir`; `source` names the journal in an error. */
async function reportsFrom(replay: Replay, outDir: string, source: string, verify: boolean, writeDir = outDir): Promise<Rebuilt> {
  const { report, incomplete } = await reportFromReplay(replay, outDir, source, verify);
  const files = await writeReports(writeDir, report);
  if (!incomplete) return { report, files };
  // A repaired journal lost a plan line that later ones build on: the rows it alone named are not known here.
  const warning = `part of the last run's plan was lost (a repaired journal): rows it alone recorded may be missing from these reports, and money in ledger.csv is complete; the next clipmill run records the whole plan again`;
  return { report, files, warning };
}

/** The report a journal's fold says (the last run's plan and every row's state), written nowhere: `clipmill report` and `clipmill review`. */
export async function reportFromReplay(replay: Replay, outDir: string, source: string, verify = false): Promise<{ report: Report; incomplete: boolean }> {
  const planned = replay.lastPlan;
  if (!planned)
    throw new InputError([
      {
        file: source,
        line: 0,
        field: '',
        message: 'no night is recorded here yet (run clipmill run first, or clipmill enqueue for a fleet)',
      },
    ]);
  const { states } = replay;
  const items = planned.items.map((i) => ({
    key: i.key,
    request: i.request,
    action:
      i.action === 'over_budget' || i.action === 'not_selected'
        ? i.action
        : actionFor(states.get(i.key)?.request === i.request ? states.get(i.key) : undefined, false, true, false),
    estimateMicros: i.estimateMicros,
    changed: i.changed,
    row: { ...i.row, file: i.row.file ?? planned.manifests.find((m) => m.name === i.row.manifest)?.shown ?? i.row.manifest },
  }));
  const missingOutputs = await findDamagedOutputs(
    outDir,
    states,
    items.map((i) => i.key),
    verify,
  );
  const report = buildReport(
    planned.manifests.map((m) => ({ ...m, rows: [] })),
    items,
    states,
    planned.provider,
    planned.session,
    { billed: replay.billedRuns(), missingOutputs, outDir },
  );
  return { report, incomplete: planned.incomplete };
}
