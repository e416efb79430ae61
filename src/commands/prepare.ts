import path from 'node:path';
import { resolvePipeline, type Pipeline } from '../config/pipeline.js';
import type { LogFormat, Logger } from '../infra/log.js';
import { InputError, type Problem } from '../load/problem.js';
import type { LoadedManifests } from '../load/load.js';
import { loadValidated } from '../load/validate.js';
import { observedRates, overBudget, reservationMicros, spentInPeriod } from '../money/budget.js';
import { audioModeOf, formatUsd, type AudioMode } from '../money/cost.js';
import type { BilledRun } from '../money/ledger.js';
import type { BudgetView } from '../plan/estimate.js';
import { mayHaveRun, planRun, rowKey, withoutRowsOverBudget, type Plan, type WorkItem } from '../plan/plan.js';
import { parseSelection, selectRows, unmatchedPatterns, type LeftAlone, type RowSelection } from '../plan/select.js';
import { providerProblems } from '../providers/index.js';
import { findDamagedOutputs } from '../state/outputs.js';
import { isBucketUrl } from '../infra/bucket.js';
import type { Replay } from '../state/replay.js';
import type { RowState } from '../lifecycle/events.js';
import { standingOf } from '../lifecycle/standing.js';
import { readReview, reviewedManifests, type ReviewMarks } from '../review/notes.js';

export interface RunOptions {
  manifests: string[];
  pipelineFile?: string;
  outDir?: string;
  concurrency?: number;
  requestsPerMinute?: number;
  dryRun?: boolean;
  retryFailed?: boolean;
  /** `--only`: run (or estimate) only these rows, `<manifest>/<id>` with globs; the others are left as they are. */
  only?: string[];
  /** `clipmill retry`: of the rows in `only`, submit again those that failed (rows in flight or owed are still finished). */
  retry?: boolean;
  /** `--max-cost` in dollars; the lower of it and the pipeline's `budget_usd` applies. */
  maxCostUsd?: number;
  /** Run the rows that fit the budget, in manifest order, instead of refusing to start. */
  partial?: boolean;
  /** Submit again rows whose create got no answer, without a look-up (for providers with no run list, after checking by hand). */
  resubmitUnknown?: boolean;
  /** Run the valid manifests and list the invalid ones, instead of refusing the whole night. */
  skipInvalid?: boolean;
  /** Read every downloaded video again and compare its hash, instead of trusting an unchanged size and modification time. */
  verify?: boolean;
  log?: LogFormat;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Where the end-of-run summary goes (stdout by default). */
  print?: (line: string) => void;
  /** Where log lines go (stderr by default; a terminal gets the live block instead). */
  logLine?: (line: string) => void;
  /** How often a non-terminal log says the run is alive (default one minute). */
  heartbeatMs?: number;
  /** `clipmill enqueue`: review.json is not read (a fleet's rows are not reviewed); told here when the folder has one. */
  ignoreReview?: (warning: string) => void;
}

/** A command's inputs, all checked before anything is read from or written to the output folder. */
export interface Prepared {
  pipeline: Pipeline;
  loaded: LoadedManifests & { skipped: Problem[] };
  outDir: string;
  budgetMicros: number | undefined;
  /** The rows `--only` or `clipmill retry` named; undefined means every row. */
  selection?: RowSelection;
  /** review.json's marks, applied by `planFor` with the journal's own notes (`loaded` holds the rows as the manifests have them). */
  review: ReviewMarks;
}

/** Pipeline, credentials and every manifest checked, before anything is read from or written to the output folder. */
export async function prepare(options: RunOptions, env: NodeJS.ProcessEnv, needsKey: boolean): Promise<Prepared> {
  const pipeline = await resolvePipeline(options, env);
  if (needsKey) {
    const configProblems = providerProblems(pipeline, env);
    if (configProblems.length > 0) throw new InputError(configProblems);
  }
  const outDir = outDirOf(pipeline.outputDir);
  const loaded = await loadValidated(options.manifests, pipeline, options.skipInvalid ?? false, options.signal);
  // A reviewer's marks are checked now (a bad review.json is an input error before anything); planFor applies them.
  const review = await readReview(outDir, options.ignoreReview);
  const selection = selectionOf(options, loaded);
  return { pipeline, loaded, outDir, budgetMicros: pipeline.budgetMicros, review, ...(selection && { selection }) };
}

/** `--only` (or `clipmill retry`) checked against the manifests' rows: a pattern that names no row is an input error, before anything is spent. */
function selectionOf(options: Pick<RunOptions, 'only' | 'retry'>, loaded: LoadedManifests): RowSelection | undefined {
  if (options.only === undefined || options.only.length === 0) return undefined;
  const source = options.retry ? 'clipmill retry' : '--only';
  const { selection, problems } = parseSelection(options.only, source, options.retry ?? false);
  if (selection === undefined) throw new InputError(problems);
  const keys = loaded.manifests.flatMap((m) => m.rows.map(rowKey));
  const unmatched = unmatchedPatterns(selection, keys);
  const read = loaded.manifests.map((m) => m.shown).join(', ');
  const hint = options.retry
    ? `the folder's last run read ${read}: to retry a row of other manifests, run clipmill run <manifests> --only '<manifest>/<id>' --retry-failed`
    : `rows are <manifest>/<id>, e.g. ${keys[0] ?? 'spring-launch/hero-1'}`;
  if (unmatched.length > 0)
    throw new InputError(
      unmatched.map((pattern) => ({
        file: source,
        line: 0,
        field: pattern,
        message: `names no row of the manifests (${hint})`,
      })),
    );
  return selection;
}

/** The output folder as an absolute path; a bucket URL (`s3://…`, fleet mode) as given. */
export function outDirOf(out: string): string {
  return isBucketUrl(out) ? out : path.resolve(out);
}

/** What the folder's journal says about money: every billed run, what the budget's period has spent, the provider's observed prices. */
export interface Money {
  billed: BilledRun[];
  spentBeforeMicros: number;
  rates: Partial<Record<AudioMode, number>>;
}

/** The journal's money as `run` reads it (`clipmill status` too): billed runs, with the plan's estimate for runs whose own plan was lost. */
export function moneyOf(
  replay: Replay,
  pipeline: Pick<Pipeline, 'budgetPeriod'>,
  plan?: { items: readonly Pick<WorkItem, 'key' | 'request' | 'estimateMicros'>[] },
  nowMs = Date.now(),
): Money {
  // Tonight's plan knows the estimate of runs whose own plan was lost (a repaired journal): they count at it, not at zero.
  const estimates = new Map(plan?.items.map((item) => [`${item.key}\u0000${item.request}`, item.estimateMicros]) ?? []);
  const billed = replay.billedRuns(estimates);
  return { billed, spentBeforeMicros: spentInPeriod(billed, pipeline.budgetPeriod, nowMs), rates: observedRates(billed) };
}

/** Money a run may already be spending before any new row: runs re-attached, and lost creates `--only` leaves unlooked-up (tonight's own look-ups count as still to pay). */
export function isCommitted(item: Pick<WorkItem, 'action' | 'wanted'>): boolean {
  return item.action === 'reattach' || (item.action === 'not_selected' && mayHaveRun(item));
}

/** A row as the budget's commitments need it. */
export type CommitItem = Pick<WorkItem, 'action' | 'wanted' | 'estimateMicros'> & {
  row: { request: Parameters<typeof audioModeOf>[0] & { durationSeconds: number } };
};

/** What the rows commit before any new row (`isCommitted`), each at what the budget reserves for it: `run` and `clipmill status` alike. */
export function committedMicros(items: readonly CommitItem[], rates: Money['rates']): number {
  return items
    .filter(isCommitted)
    .reduce((sum, i) => sum + reservationMicros(i.estimateMicros, i.row.request.durationSeconds, audioModeOf(i.row.request), rates), 0);
}

/** The budget as tonight sees it: spent in its period, plus the runs that already exist and are re-attached. */
export function budgetViewOf(prepared: Pick<Prepared, 'budgetMicros'>, plan: Pick<Plan, 'items'>, money: Money): BudgetView | undefined {
  if (prepared.budgetMicros === undefined) return undefined;
  return { limitMicros: prepared.budgetMicros, committedMicros: money.spentBeforeMicros + committedMicros(plan.items, money.rates) };
}

/** Rows + journal → plan, with outputs checked on disk and, under `--partial`, the rows past what is left of the budget set aside. */
export async function planFor(
  prepared: Prepared,
  replay: Replay,
  options: Pick<RunOptions, 'retryFailed' | 'resubmitUnknown' | 'partial' | 'verify'>,
  log?: Logger,
  holdBack = true,
): Promise<{ plan: Plan; money: Money; left: LeftAlone[] }> {
  const { loaded, outDir, pipeline } = prepared;
  const keys = loaded.manifests.flatMap((m) => m.rows.map(rowKey));
  const damagedOutputs = await findDamagedOutputs(outDir, replay.states, keys, options.verify ?? false);
  for (const key of damagedOutputs)
    if (prepared.selection?.matches(key) !== false)
      log?.warn('output_damaged', `${key}: the downloaded video is missing or changed on disk; downloading it again from the same run`);
  // A reviewer's "redo" notes make their rows new versions before anything is planned: run, dry run, estimate, status alike.
  const reviewed = reviewedManifests(loaded, prepared.review, replay, damagedOutputs);
  for (const { key, message } of reviewed.warnings) log?.warn('review_held', message, { row: key });
  const whole = planRun(reviewed.manifests, replay.states, loaded.images, {
    pricing: pipeline.pricing,
    retryFailed: options.retryFailed ?? false,
    resubmitUnknown: options.resubmitUnknown ?? false,
    damagedOutputs,
  });
  const { plan, left } = prepared.selection ? selectRows(whole, prepared.selection) : { plan: whole, left: [] };
  const money = moneyOf(replay, pipeline, plan);
  const budget = budgetViewOf(prepared, plan, money);
  // `estimate` shows the whole bill against the budget; a run (and --partial anywhere) holds new rows back.
  const over =
    budget === undefined || !(holdBack || options.partial)
      ? []
      : overBudget(plan.items, Math.max(0, budget.limitMicros - budget.committedMicros), options.partial ?? false);
  const planned = over.length === 0 ? plan : withoutRowsOverBudget(plan, over);
  warnEditedUnfinished(planned, replay, log);
  return { plan: planned, money, left };
}

/** Rows submitted tonight as a new version while the old one's run is unfinished: said once, so finance and audit are not surprised. */
function warnEditedUnfinished(plan: Plan, replay: Replay, log: Logger | undefined): void {
  for (const item of plan.items) {
    const why = item.action === 'submit' && item.changed ? abandonedWork(replay.states.get(item.key)) : undefined;
    if (why !== undefined)
      log?.warn('edited_unfinished', `${item.key} changed (its manifest row, review note or pipeline defaults) while ${why}`, { row: item.key });
  }
}

/** What an edited row's earlier version leaves behind when the new version is planned. */
function abandonedWork(state: RowState | undefined): string | undefined {
  switch (standingOf(state)) {
    case 'in_flight':
    case 'timed_out':
      return `its run ${state?.runId} was unfinished: the new version is submitted, the old run is not polled again and counts at its estimate in the ledger (the provider may still bill it: clipmill audit on Runflow, fal's dashboard)`;
    case 'paid':
      return `its run ${state?.runId} was paid but not downloaded: the new version is submitted, that video is not fetched`;
    case 'unanswered':
      return `its create had no answer: the new version is submitted; if the old create made a run, clipmill audit lists it on Runflow (fal: its dashboard)`;
    default:
      return undefined;
  }
}

/** One line: what the plan does with the rows. */
export function describePlan(plan: Plan): string {
  const c = plan.counts;
  const parts = [`${c.done} done`, `${c.reattach} in flight re-attached`, `${c.download} to download`, `${c.submit} to submit`];
  if (c.failed > 0) parts.push(`${c.failed} failed before (use --retry-failed to resubmit)`);
  if (c.unknown > 0) parts.push(`${c.unknown} with an unanswered create (looked up first)`);
  if (c.over_budget > 0) parts.push(`${c.over_budget} left out by the budget`);
  if (c.not_selected > 0) parts.push(`${c.not_selected} with work left alone (not selected)`);
  return `${parts.join(', ')}; estimated cost of new submissions ${formatUsd(plan.submitMicros)}`;
}
