import path from 'node:path';
import { ACTIVE_ACTIONS, executePlan, type StopReason } from '../execute/runner.js';
import { RateGate } from '../execute/rate-gate.js';
import { HttpClient } from '../infra/http.js';
import { jsonLine, Logger } from '../infra/log.js';
import { formatProblem, InputError } from '../load/problem.js';
import { isBucketUrl } from '../infra/bucket.js';
import { BudgetLedger, LocalBudget } from '../money/budget.js';
import { formatUsd } from '../money/cost.js';
import { renderEstimate, summariseEstimate } from '../plan/estimate.js';
import type { Row } from '../load/row.js';
import type { Plan } from '../plan/plan.js';
import { configuredHosts, openProvider } from '../providers/index.js';
import { buildReport, type Report, type ReportExtras } from '../report/build.js';
import type { Manifest } from '../load/load.js';
import type { PlannedManifest, RowState } from '../lifecycle/events.js';
import type { RowSelection } from '../plan/select.js';
import { noticeFor, sendNotice } from '../report/notify.js';
import { decideOutcome, EXIT, renderSummary } from '../report/summary.js';
import { writeReports } from '../report/write.js';
import { Journal } from '../state/journal.js';
import { LocalStore } from '../state/local-store.js';
import { refuseFleetFolder } from '../state/fleet-marker.js';
import type { RecordedPlan } from '../state/plans.js';
import { findDamagedOutputs, removeTemporaryFiles } from '../state/outputs.js';
import { budgetViewOf, describePlan, planFor, prepare, type Money, type Prepared, type RunOptions } from './prepare.js';

export type { RunOptions } from './prepare.js';

export interface RunResult {
  exitCode: number;
  plan?: Plan;
  report?: Report;
  stopped?: StopReason;
}

function withoutFile(row: Row): Omit<Row, 'file'> {
  const { file: _shown, ...rest } = row;
  return rest;
}

/** `--dry-run`: the plan and its estimate against the journal as it stands; nothing is locked, written or sent. */
async function dryRun(prepared: Prepared, options: RunOptions, print: (line: string) => void): Promise<RunResult> {
  const { plan, money, left } = await planFor(prepared, await Journal.replay(prepared.outDir), options);
  for (const { key, why } of left) print(`${key} ${why}`);
  print(renderEstimate(summariseEstimate(plan), budgetViewOf(prepared, plan, money)));
  print(`dry run: ${describePlan(plan)}. Nothing was sent.`);
  return { exitCode: EXIT.ok, plan };
}

/** With `--log json`, stdout carries JSON lines too, shaped as the log's: a log shipper reading both streams parses every line. */
function printJson(event: string, message: string, details: Record<string, unknown> = {}): void {
  process.stdout.write(`${jsonLine('info', event, message, details)}\n`);
}

/** Node types a piped stream as a terminal of size 0; at run time `isTTY`, `columns` and `rows` are simply absent. */
function isSizedTerminal(stream: Partial<Pick<NodeJS.WriteStream, 'isTTY' | 'columns' | 'rows'>>): boolean {
  return stream.isTTY === true && (stream.columns ?? 0) > 0 && (stream.rows ?? 0) > 0;
}

/** `clipmill run`: validate everything, take the folder's lock, plan against the journal, check the budget, execute, report. */
export async function runManifests(options: RunOptions): Promise<RunResult> {
  const startedAtMs = Date.now();
  const env = options.env ?? process.env;
  const json = options.log === 'json' && options.print === undefined;
  const print = options.print ?? (json ? (line: string) => printJson('output', line) : (line: string) => process.stdout.write(`${line}\n`));
  const log = new Logger({
    format: options.log ?? 'pretty',
    ...(options.logLine && { write: options.logLine }),
    // A pseudo-terminal that reports no size (some CI runners) cannot hold a redrawn block: use lines there.
    live: options.logLine === undefined && isSizedTerminal(process.stderr),
    ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
  });
  const runSignal = options.signal ?? new AbortController().signal;
  // A dry run sends nothing, so it needs no key (as estimate).
  const prepared = await prepare(options, env, options.dryRun !== true);
  const { outDir } = prepared;
  const skippedFiles = [...new Set(prepared.loaded.skipped.map((p) => p.file))];
  for (const problem of prepared.loaded.skipped) log.error('invalid_manifest', formatProblem(problem), { file: problem.file, line: problem.line });
  if (skippedFiles.length > 0)
    log.warn(
      'skipped_manifests',
      `skipping ${skippedFiles.length} invalid manifest${skippedFiles.length === 1 ? '' : 's'} (--skip-invalid): ${skippedFiles.join(', ')}`,
    );

  if (isBucketUrl(outDir))
    throw new InputError([
      {
        file: '--out',
        line: 0,
        field: 'output.dir',
        message: `${outDir}: a bucket holds the videos of a fleet (clipmill enqueue + clipmill worker); run needs a folder for its journal and lock`,
      },
    ]);
  await refuseFleetFolder(outDir);
  if (options.dryRun) return dryRun(prepared, options, print);

  const store = await LocalStore.open(outDir);
  // A run that lost its lock (another run took the folder over) stops starting new work, as on Ctrl-C.
  const signal = AbortSignal.any([runSignal, store.lost]);
  store.lost.addEventListener('abort', () => log.error('lock_lost', (store.lost.reason as Error).message), { once: true });
  try {
    const took = store.tookOverFrom;
    if (took) log.warn('lock_taken_over', `took over the lock of a run that is gone (pid ${took.pid}, started ${took.started_at})`);
    const removed = await removeTemporaryFiles(
      outDir,
      prepared.loaded.manifests.map((m) => m.name),
    );
    if (removed.length > 0) log.info('cleanup', `removed ${removed.length} partial download${removed.length === 1 ? '' : 's'} left by an interrupted run`);
    const { plan, money, left } = await planFor(prepared, store.replay, options, log);
    for (const { key, why } of left) log.warn('not_retried', `${key} ${why}`, { row: key });
    logChangedSheets(prepared, store.replay.lastPlan?.manifests ?? [], log);
    log.info('plan', describePlan(plan));
    if (refuseOverBudget(prepared, plan, money, options, print)) return { exitCode: EXIT.stopped, plan };
    await recordPlan(store, prepared, plan);
    return await execute(prepared, plan, store, money, { env, print, json, log, signal, startedAtMs });
  } finally {
    logCompaction(await store.finish(), log);
  }
}

/** A manifest read from a URL whose bytes differ from the last run's: said once, before its edited rows are paid as new versions. */
function logChangedSheets(prepared: Prepared, before: readonly PlannedManifest[], log: Logger): void {
  for (const m of prepared.loaded.manifests) {
    const last = before.find((b) => b.name === m.name)?.sha256;
    if (m.sha256 !== undefined && last !== undefined && last !== m.sha256)
      log.info(
        'manifest_changed',
        `${m.shown} changed since the last run (sha256 ${last.slice(0, 12)} → ${m.sha256.slice(0, 12)}): edited rows are new versions`,
        { manifest: m.name },
      );
  }
}

/** The journal compacted at the end of the run (it had become mostly history), or why it was not. */
function logCompaction(finished: Awaited<ReturnType<LocalStore['finish']>>, log: Logger): void {
  const { compacted, compactError } = finished;
  if (compacted) {
    const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
    const message = `journal compacted from ${mb(compacted.beforeBytes)} to ${mb(compacted.afterBytes)}; the old one is kept in ${compacted.archive}`;
    log.info('compacted', message, { before_bytes: compacted.beforeBytes, after_bytes: compacted.afterBytes, archive: compacted.archive });
  }
  if (compactError !== undefined) log.warn('compact_failed', `journal not compacted (left as it was): ${(compactError as Error).message}`, {});
}

/** Records tonight's plan in the journal; what it writes is dropped once it is written, not held through the night. */
async function recordPlan(store: LocalStore, prepared: Prepared, plan: Plan): Promise<void> {
  await store.recordPlan(planToRecord(prepared, plan));
}

/** Tonight's plan as the journal records it. */
export function planToRecord(prepared: Prepared, plan: Plan): Pick<RecordedPlan, 'provider' | 'manifests' | 'items'> {
  const manifests = prepared.loaded.manifests.map((m) => ({ name: m.name, file: m.file, shown: m.shown, ...(m.sha256 !== undefined && { sha256: m.sha256 }) }));
  const items = plan.items.map((item) => ({
    key: item.key,
    request: item.request,
    // Only the budget's verdict is recorded: actions that follow from row states would make every night's plan differ.
    ...((item.action === 'over_budget' || item.action === 'not_selected') && { action: item.action }),
    estimateMicros: item.estimateMicros,
    changed: item.changed,
    // The manifest's path is recorded once (in `manifests`), not per row: a run from another folder would otherwise change every row.
    row: withoutFile(item.row),
  }));
  return { provider: prepared.pipeline.provider, manifests, items };
}

/**
 * Without --partial, a plan over the budget submits no new row (runs already made, re-attached, to
 * download or lost creates, are still fetched): says so, and whether anything is left to do at all.
 */
export function refuseOverBudget(prepared: Prepared, plan: Plan, money: Money, options: RunOptions, print: (line: string) => void): boolean {
  const budget = budgetViewOf(prepared, plan, money);
  if (budget === undefined || options.partial || plan.counts.over_budget === 0) return false;
  const wanted = plan.items.filter((i) => i.action === 'over_budget' || i.action === 'unknown').reduce((sum, i) => sum + i.estimateMicros, 0);
  print(renderEstimate(summariseEstimate(plan), budget));
  const spent =
    budget.committedMicros > 0 ? `, of which ${formatUsd(budget.committedMicros)} is already spent or committed in the budget's period (budget_period)` : '';
  const active = plan.items.some((i) => ACTIVE_ACTIONS.has(i.action));
  const stillDone = active ? ' Runs already made are still fetched.' : ' Nothing was sent.';
  print(
    `refusing to start new rows: the remaining work is estimated at ${formatUsd(wanted)}, over the budget of ${formatUsd(budget.limitMicros)}${spent}.${stillDone} Raise budget_usd / --max-cost, or add --partial to run the rows that fit, in manifest order.`,
  );
  return !active;
}

interface NightIo {
  env: NodeJS.ProcessEnv;
  print: (line: string) => void;
  /** `--log json` to a real stdout: the summary is one final JSON event, not lines. */
  json: boolean;
  log: Logger;
  signal: AbortSignal;
  startedAtMs: number;
}

/** The night's work against the provider, when there is any; why it stopped early, if it did. */
async function sendWork(prepared: Prepared, plan: Plan, store: LocalStore, money: Money, io: NightIo): Promise<StopReason | undefined> {
  const { pipeline, loaded, outDir, budgetMicros } = prepared;
  const { env, log, signal } = io;
  const rowsToDo = plan.items.filter((item) => ACTIVE_ACTIONS.has(item.action)).length;
  if (rowsToDo === 0) return undefined;
  const http = new HttpClient({ connections: Math.max(8, pipeline.concurrency * 2), allowedHosts: configuredHosts(pipeline, env) });
  const handle = await openProvider(pipeline, env, http, new RateGate(pipeline.requestsPerMinute));
  const budgetText = budgetMicros === undefined ? 'no budget' : `budget ${formatUsd(budgetMicros)}`;
  const limits = `concurrency ${pipeline.concurrency}, ${pipeline.requestsPerMinute} requests/min, ${budgetText}`;
  log.info('start', `sending to ${handle.endpoint}; ${limits}; output in ${outDir}`);
  log.startProgress({ rowsToDo, doneBefore: plan.counts.done, estimatedMicros: plan.submitMicros });
  try {
    const budget = new LocalBudget(new BudgetLedger(budgetMicros, money.spentBeforeMicros));
    const context = { provider: handle.provider, http, store, log, pipeline, outDir, images: loaded.images, signal, budget, observedRates: money.rates };
    return await executePlan(plan.items, context);
  } finally {
    log.stopProgress();
    await handle.close();
    await http.close();
  }
}

/** Reports written (a full disk is said, not fatal: `clipmill report` writes them later), per-row lines logged; the files written. */
async function writeAndLog(report: Report, outDir: string, log: Logger): Promise<string[]> {
  let files: string[] = [];
  try {
    files = await writeReports(outDir, report);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    log.error(
      'reports_not_written',
      `could not write the reports in ${outDir} (${code}): the journal holds everything; free space, then run clipmill report --out ${outDir}`,
    );
  }
  for (const row of report.rows) {
    const { manifest, id, status, file, line, output, actual_usd, error } = row;
    log.info('row_final', `${status}${error ? `: ${error}` : ''}`, { manifest, row: id, status, file, line, output, actual_usd, error });
  }
  return files;
}

/** The report of only the rows `--only` or `clipmill retry` named: what the exit code and the summary are about. */
function namedRowsReport(manifests: readonly Manifest[], plan: Plan, selection: RowSelection, args: ReportArgs): Report {
  const items = plan.items.filter((i) => selection.matches(i.key));
  const names = new Set(items.map((i) => i.row.manifest));
  return buildReport(
    manifests.filter((m) => names.has(m.name)),
    items,
    ...args,
  );
}
type ReportArgs = readonly [ReadonlyMap<string, RowState>, string, string | null, ReportExtras];

async function execute(prepared: Prepared, plan: Plan, store: LocalStore, money: Money, io: NightIo): Promise<RunResult> {
  const { pipeline, loaded, outDir } = prepared;
  const stopped = await sendWork(prepared, plan, store, money, io);
  const keys = plan.items.map((item) => item.key);
  const reportArgs = [
    store.rows(),
    pipeline.provider,
    store.session,
    {
      billed: store.replay.billedRuns(),
      missingOutputs: await findDamagedOutputs(outDir, store.rows(), keys),
      costAlertFactor: pipeline.costAlertFactor,
      outDir,
    },
  ] as const;
  const report = buildReport(loaded.manifests, plan.items, ...reportArgs);
  const files = await writeAndLog(report, outDir, io.log);
  const skippedManifests = [...new Set(loaded.skipped.map((p) => p.file))];
  // The files report the whole folder; with --only (or retry) the exit code and summary are about the rows named.
  const named = prepared.selection ? namedRowsReport(loaded.manifests, plan, prepared.selection, reportArgs) : report;
  const outcome = decideOutcome({ report: named, aborted: io.signal.aborted, stopped, overBudget: plan.counts.over_budget, skippedManifests });
  const summary = renderSummary(named, files, outcome, Date.now() - io.startedAtMs, process.cwd());
  if (io.json) printJson('summary', summary.join('\n'), { exit_code: outcome.exitCode, totals: named.totals, files });
  else for (const line of summary) io.print(line);
  if (pipeline.notifyWebhookUrl)
    await sendNotice(pipeline.notifyWebhookUrl, noticeFor(named, outcome, path.join(outDir, 'report.html'), pipeline), io.log, { signal: io.signal });
  return { exitCode: outcome.exitCode, plan, report, ...(stopped && { stopped }) };
}
