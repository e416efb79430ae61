import path from 'node:path';
import { resolvePipeline, type Pipeline } from '../config/pipeline.js';
import { BudgetLedger, observedRates, overBudget, reservationMicros, spentInPeriod } from '../money/budget.js';
import { audioModeOf, formatUsd, type AudioMode } from '../money/cost.js';
import { estimateJson, renderEstimate, summariseEstimate, type BudgetView } from '../plan/estimate.js';
import { billedRuns, type BilledRun } from '../money/ledger.js';
import { foldEvents, type JournalEvent, type RowState } from '../state/events.js';
import { ACTIVE_ACTIONS, executePlan, type StopReason } from '../execute/runner.js';
import { HttpClient } from '../infra/http.js';
import { Journal } from '../state/journal.js';
import { Logger, type LogFormat } from '../infra/log.js';
import { loadManifests, type LoadedManifests } from '../load/load.js';
import { acquireLock } from '../state/lock.js';
import { findDamagedOutputs, removeTemporaryFiles } from '../state/outputs.js';
import { planRun, rowKey, withoutRowsOverBudget, type Action, type Plan } from '../plan/plan.js';
import { noticeFor, sendNotice } from '../report/notify.js';
import { formatProblem, InputError, sortProblems, type Problem } from '../load/problem.js';
import { decideOutcome, EXIT, renderSummary } from '../report/summary.js';
import { configuredHosts, openProvider, providerProblems } from '../providers/index.js';
import { buildReport, type Report } from '../report/build.js';
import { writeReports } from '../report/write.js';
import { RateGate } from '../execute/rate-gate.js';

export { EXIT } from '../report/summary.js';
/** The pipeline of one command: file, flags (`outDir`, `concurrency`, `requestsPerMinute`, `maxCostUsd`) and environment, built once. */
export { resolvePipeline } from '../config/pipeline.js';

export interface RunOptions {
  manifests: string[];
  pipelineFile?: string;
  outDir?: string;
  concurrency?: number;
  requestsPerMinute?: number;
  dryRun?: boolean;
  retryFailed?: boolean;
  /** `--max-cost` in dollars; the lower of it and the pipeline's `budget_usd` applies. */
  maxCostUsd?: number;
  /** Run the rows that fit the budget, in manifest order, instead of refusing to start. */
  partial?: boolean;
  /** Submit again rows whose create got no answer, without a look-up (for providers with no run list, after checking by hand). */
  resubmitUnknown?: boolean;
  /** Run the valid manifests and list the invalid ones, instead of refusing the whole night. */
  skipInvalid?: boolean;
  log?: LogFormat;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Where the end-of-run summary goes (stdout by default). */
  print?: (line: string) => void;
  /** Where log lines go (stderr by default; a terminal gets the live block instead). */
  logLine?: (line: string) => void;
  /** How often a non-terminal log says the run is alive (default one minute). */
  heartbeatMs?: number;
}

export interface RunResult {
  exitCode: number;
  plan?: Plan;
  report?: Report;
  stopped?: StopReason;
}

/**
 * Loads and validates manifests against the pipeline; every problem found, or InputError. With
 * `skipInvalid`, manifests with problems are set aside (and returned) instead, as long as every problem
 * belongs to one manifest: a bad pipeline default still stops the night.
 */
export async function loadValidated(manifestArgs: string[], pipeline: Pipeline, skipInvalid = false): Promise<LoadedManifests & { skipped: Problem[] }> {
  const loaded = await loadManifests(manifestArgs, pipeline);
  if (loaded.problems.length === 0) return { ...loaded, skipped: [] };
  const manifestFiles = new Set(loaded.manifests.map((m) => m.shown));
  const ownedByOneManifest = (p: Problem) => manifestFiles.has(p.file) || manifestArgs.includes(p.file);
  if (!skipInvalid || !loaded.problems.every(ownedByOneManifest)) throw new InputError(loaded.problems);
  const invalid = new Set(loaded.problems.map((p) => p.file));
  const manifests = loaded.manifests.filter((m) => !invalid.has(m.shown));
  if (manifests.length === 0) throw new InputError(loaded.problems, 'every manifest has problems');
  return { ...loaded, manifests, problems: [], skipped: sortProblems(loaded.problems) };
}

function describePlan(plan: Plan): string {
  const c = plan.counts;
  const parts = [`${c.done} done`, `${c.reattach} in flight re-attached`, `${c.download} to download`, `${c.submit} to submit`];
  if (c.failed > 0) parts.push(`${c.failed} failed before (use --retry-failed to resubmit)`);
  if (c.unknown > 0) parts.push(`${c.unknown} with an unanswered create (looked up first)`);
  if (c.over_budget > 0) parts.push(`${c.over_budget} left out by the budget`);
  return `${parts.join(', ')}; estimated cost of new submissions ${formatUsd(plan.submitMicros)}`;
}

interface Prepared {
  pipeline: Pipeline;
  loaded: LoadedManifests & { skipped: Problem[] };
  outDir: string;
  budgetMicros: number | undefined;
}

/** Pipeline, credentials and every manifest checked, before anything is read from or written to the output folder. */
async function prepare(options: RunOptions, env: NodeJS.ProcessEnv, needsKey: boolean): Promise<Prepared> {
  const pipeline = await resolvePipeline(options, env);
  if (needsKey) {
    const configProblems = providerProblems(pipeline, env);
    if (configProblems.length > 0) throw new InputError(configProblems);
  }
  const loaded = await loadValidated(options.manifests, pipeline, options.skipInvalid ?? false);
  return { pipeline, loaded, outDir: path.resolve(pipeline.outputDir), budgetMicros: pipeline.budgetMicros };
}

/** What the folder's journal says about money: every billed run, what the budget's period has spent, the provider's observed prices. */
interface Money {
  billed: BilledRun[];
  spentBeforeMicros: number;
  rates: Partial<Record<AudioMode, number>>;
}

function moneyOf(events: readonly JournalEvent[], pipeline: Pipeline, plan?: Plan): Money {
  // Tonight's plan knows the estimate of runs whose own plan was lost (a repaired journal): they count at it, not at zero.
  const estimates = new Map(plan?.items.map((item) => [`${item.key}\u0000${item.request}`, item.estimateMicros]) ?? []);
  const billed = billedRuns(events, estimates);
  return { billed, spentBeforeMicros: spentInPeriod(billed, pipeline.budgetPeriod, Date.now()), rates: observedRates(billed) };
}

/** The budget as tonight sees it: spent in its period, plus the runs that already exist and are re-attached. */
function budgetViewOf(prepared: Prepared, plan: Plan, money: Money): BudgetView | undefined {
  if (prepared.budgetMicros === undefined) return undefined;
  const reattached = plan.items.filter((i) => i.action === 'reattach').reduce((sum, i) => sum + reservationMicros(i.estimateMicros, i.row.request.durationSeconds, audioModeOf(i.row.request), money.rates), 0);
  return { limitMicros: prepared.budgetMicros, committedMicros: money.spentBeforeMicros + reattached };
}

/** Rows + journal → plan, with outputs checked on disk and, under `--partial`, the rows past what is left of the budget set aside. */
async function planFor(prepared: Prepared, events: readonly JournalEvent[], states: ReadonlyMap<string, RowState>, options: RunOptions, log?: Logger, holdBack = true): Promise<{ plan: Plan; money: Money }> {
  const { loaded, outDir, pipeline } = prepared;
  const keys = loaded.manifests.flatMap((m) => m.rows.map(rowKey));
  const damagedOutputs = await findDamagedOutputs(outDir, states, keys);
  for (const key of damagedOutputs) log?.warn('output_damaged', `${key}: the downloaded video is missing or changed on disk; downloading it again from the same run`);
  const plan = planRun(loaded.manifests, states, loaded.images, { pricing: pipeline.pricing, retryFailed: options.retryFailed ?? false, resubmitUnknown: options.resubmitUnknown ?? false, damagedOutputs });
  const money = moneyOf(events, pipeline, plan);
  const budget = budgetViewOf(prepared, plan, money);
  // `estimate` shows the whole bill against the budget; a run (and --partial anywhere) holds new rows back.
  if (budget === undefined || !(holdBack || options.partial)) return { plan, money };
  const over = overBudget(plan.items, Math.max(0, budget.limitMicros - budget.committedMicros), options.partial ?? false);
  return { plan: over.length === 0 ? plan : withoutRowsOverBudget(plan, over), money };
}

/** `clipmill report`: the four reports again, from the journal alone (the last run's plan and every row's state). */
export async function rebuildReports(outDir: string): Promise<{ report: Report; files: string[] }> {
  const lock = await acquireLock(outDir);
  try {
    const events = await Journal.events(outDir);
    const planned = events.filter((e): e is Extract<JournalEvent, { type: 'planned' }> => e.type === 'planned').at(-1);
    if (!planned) throw new InputError([{ file: path.join(outDir, '.clipmill', 'journal.jsonl'), line: 0, field: '', message: 'no run is recorded in this output folder yet (run clipmill run first)' }]);
    const states = foldEvents(events);
    const items = planned.items.map((i) => ({ key: i.key, request: i.request, action: i.action as Action, estimateMicros: i.estimateMicros, changed: i.changed, row: i.row }));
    const missingOutputs = await findDamagedOutputs(outDir, states, items.map((i) => i.key));
    const report = buildReport(planned.manifests.map((m) => ({ ...m, rows: [] })), items, states, planned.provider, planned.request, { billed: billedRuns(events), missingOutputs });
    return { report, files: await writeReports(outDir, report) };
  } finally {
    await lock.release();
  }
}

/** `clipmill estimate`: what the remaining work will cost, per manifest and audio mode; sends nothing. */
export async function estimateManifests(options: RunOptions): Promise<{ plan: Plan; text: string; json: unknown; budgetMicros: number | undefined }> {
  const prepared = await prepare(options, options.env ?? process.env, false);
  const events = await Journal.events(prepared.outDir);
  const { plan, money } = await planFor(prepared, events, foldEvents(events), options, undefined, false);
  const summary = summariseEstimate(plan);
  const budget = budgetViewOf(prepared, plan, money);
  return { plan, text: renderEstimate(summary, budget), json: estimateJson(summary, budget), budgetMicros: prepared.budgetMicros };
}

/** `clipmill run`: validate everything, take the folder's lock, plan against the journal, check the budget, execute, report. */
export async function runManifests(options: RunOptions): Promise<RunResult> {
  const startedAtMs = Date.now();
  const env = options.env ?? process.env;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log = new Logger({
    format: options.log ?? 'pretty',
    ...(options.logLine && { write: options.logLine }),
    // A pseudo-terminal that reports no size (some CI runners) cannot hold a redrawn block: use lines there.
    live: options.logLine === undefined && process.stderr.isTTY === true && (process.stderr.columns ?? 0) > 0 && (process.stderr.rows ?? 0) > 0,
    ...(options.heartbeatMs !== undefined && { heartbeatMs: options.heartbeatMs }),
  });
  const runSignal = options.signal ?? new AbortController().signal;
  const prepared = await prepare(options, env, true);
  const { outDir } = prepared;
  const skippedFiles = [...new Set(prepared.loaded.skipped.map((p) => p.file))];
  for (const problem of prepared.loaded.skipped) log.error('invalid_manifest', formatProblem(problem), { file: problem.file, line: problem.line });
  if (skippedFiles.length > 0) log.warn('skipped_manifests', `skipping ${skippedFiles.length} invalid manifest${skippedFiles.length === 1 ? '' : 's'} (--skip-invalid): ${skippedFiles.join(', ')}`);

  if (options.dryRun) {
    const events = await Journal.events(outDir);
    const { plan, money } = await planFor(prepared, events, foldEvents(events), options);
    print(renderEstimate(summariseEstimate(plan), budgetViewOf(prepared, plan, money)));
    print(`dry run: ${describePlan(plan)}. Nothing was sent.`);
    return { exitCode: EXIT.ok, plan };
  }

  const lock = await acquireLock(outDir);
  // A run that lost its lock (another run took the folder over) stops starting new work, as on Ctrl-C.
  const signal = AbortSignal.any([runSignal, lock.lost]);
  lock.lost.addEventListener('abort', () => log.error('lock_lost', String((lock.lost.reason as Error).message)), { once: true });
  try {
    if (lock.tookOverFrom) log.warn('lock_taken_over', `took over the lock of a run that is gone (pid ${lock.tookOverFrom.pid}, started ${lock.tookOverFrom.started_at})`);
    const removed = await removeTemporaryFiles(outDir, prepared.loaded.manifests.map((m) => m.name));
    if (removed.length > 0) log.info('cleanup', `removed ${removed.length} partial download${removed.length === 1 ? '' : 's'} left by an interrupted run`);
    const journal = await Journal.open(outDir);
    try {
      const { plan, money } = await planFor(prepared, await Journal.events(outDir), journal.states, options, log);
      log.info('plan', describePlan(plan));
      const budget = budgetViewOf(prepared, plan, money);
      if (budget !== undefined && !options.partial && plan.counts.over_budget > 0) {
        // No new row is submitted; runs already made (re-attached, to download, lost creates) are still fetched.
        const wanted = plan.items.filter((i) => i.action === 'over_budget' || i.action === 'unknown').reduce((sum, i) => sum + i.estimateMicros, 0);
        print(renderEstimate(summariseEstimate(plan), budget));
        const spent = budget.committedMicros > 0 ? `, of which ${formatUsd(budget.committedMicros)} is already spent or committed in the budget's period (budget_period)` : '';
        const stillDone = plan.items.some((i) => ACTIVE_ACTIONS.has(i.action)) ? ' Runs already made are still fetched.' : ' Nothing was sent.';
        print(`refusing to start new rows: the remaining work is estimated at ${formatUsd(wanted)}, over the budget of ${formatUsd(budget.limitMicros)}${spent}.${stillDone} Raise budget_usd / --max-cost, or add --partial to run the rows that fit, in manifest order.`);
        if (!plan.items.some((i) => ACTIVE_ACTIONS.has(i.action))) return { exitCode: EXIT.stopped, plan };
      }
      await journal.append({
        type: 'planned',
        key: `plan:${journal.session}`,
        request: journal.session,
        provider: prepared.pipeline.provider,
        manifests: prepared.loaded.manifests.map((m) => ({ name: m.name, file: m.file, shown: m.shown })),
        items: plan.items.map((item) => ({ key: item.key, request: item.request, action: item.action, estimateMicros: item.estimateMicros, changed: item.changed, row: item.row })),
      });
      return await execute(prepared, plan, journal, money, { env, print, log, signal, startedAtMs });
    } finally {
      await journal.close();
    }
  } finally {
    await lock.release();
  }
}

async function execute(prepared: Prepared, plan: Plan, journal: Journal, money: Money, io: { env: NodeJS.ProcessEnv; print: (line: string) => void; log: Logger; signal: AbortSignal; startedAtMs: number }): Promise<RunResult> {
  const { pipeline, loaded, outDir, budgetMicros } = prepared;
  const { env, print, log, signal } = io;
  let stopped: StopReason | undefined;
  if (plan.items.some((item) => ACTIVE_ACTIONS.has(item.action))) {
    const http = new HttpClient({ connections: Math.max(8, pipeline.concurrency * 2), allowedHosts: configuredHosts(pipeline, env) });
    const gate = new RateGate(pipeline.requestsPerMinute);
    const handle = await openProvider(pipeline, env, http, gate);
    const budgetText = budgetMicros === undefined ? 'no budget' : `budget ${formatUsd(budgetMicros)}`;
    log.info('start', `sending to ${handle.endpoint}; concurrency ${pipeline.concurrency}, ${pipeline.requestsPerMinute} requests/min, ${budgetText}; output in ${outDir}`);
    log.startProgress({ rowsToDo: plan.items.filter((item) => ACTIVE_ACTIONS.has(item.action)).length, doneBefore: plan.counts.done, estimatedMicros: plan.submitMicros });
    try {
      stopped = await executePlan(plan.items, { provider: handle.provider, http, store: journal, log, pipeline, outDir, images: loaded.images, signal, budget: new BudgetLedger(budgetMicros, money.spentBeforeMicros), observedRates: money.rates });
    } finally {
      log.stopProgress();
      await handle.close();
      await http.close();
    }
  }

  const keys = plan.items.map((item) => item.key);
  const report = buildReport(loaded.manifests, plan.items, journal.states, pipeline.provider, journal.session, {
    billed: billedRuns(await Journal.events(outDir)),
    missingOutputs: await findDamagedOutputs(outDir, journal.states, keys),
    costAlertFactor: pipeline.costAlertFactor,
  });
  let files: string[] = [];
  try {
    files = await writeReports(outDir, report);
  } catch (error) {
    // A full disk stops the run cleanly; the reports can be written again from the journal later.
    log.error('reports_not_written', `could not write the reports in ${outDir} (${(error as NodeJS.ErrnoException).code ?? String(error)}): the journal holds everything; free space, then run clipmill report --out ${outDir}`);
  }
  const outcome = decideOutcome({ report, aborted: signal.aborted, stopped, overBudget: plan.counts.over_budget, skippedManifests: [...new Set(loaded.skipped.map((p) => p.file))] });
  for (const row of report.rows) {
    log.info('row_final', `${row.status}${row.error ? `: ${row.error}` : ''}`, { manifest: row.manifest, row: row.id, status: row.status, file: row.file, line: row.line, output: row.output, actual_usd: row.actual_usd, error: row.error });
  }
  for (const line of renderSummary(report, files, outcome, Date.now() - io.startedAtMs, process.cwd())) print(line);
  if (pipeline.notifyWebhookUrl) await sendNotice(pipeline.notifyWebhookUrl, noticeFor(report, outcome, path.join(outDir, 'report.html')), log);
  return { exitCode: outcome.exitCode, plan, report, ...(stopped && { stopped }) };
}
