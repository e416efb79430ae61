import { MICROS_PER_USD, audioModeOf, type AudioMode } from '../money/cost.js';
import type { RowState } from '../lifecycle/events.js';
import { standingOf, type Standing } from '../lifecycle/standing.js';
import { redactText } from '../infra/http.js';
import type { BilledRun } from '../money/ledger.js';
import type { Manifest } from '../load/load.js';
import type { WorkItem } from '../plan/plan.js';
import { earlierOutput, imageLink } from './row-media.js';

/** `owed`: paid for, but its video is not here (not downloaded yet, or deleted or damaged since and not fetched again). */
export type RowStatus = 'done' | 'owed' | 'failed' | 'in_flight' | 'unknown' | 'skipped';
/** Which figure `actual_usd` holds: the provider's reported cost, our estimate, or nothing billed. */
export type CostSource = 'provider' | 'estimate' | 'not_billed' | 'none';

export interface ReportRow {
  manifest: string;
  id: string;
  file: string;
  line: number;
  status: RowStatus;
  prompt: string;
  duration: number;
  generate_audio: boolean;
  audio_mode: AudioMode;
  estimated_usd: number;
  /** The `cost` the provider reported on the run, when it did. */
  provider_usd: number | null;
  actual_usd: number | null;
  cost_source: CostSource;
  billed: boolean;
  /** Whether this run's create made the billed run, or an earlier run's did. */
  spent_in: 'this_run' | 'earlier_run' | null;
  attempts: number;
  run_id: string | null;
  output: string | null;
  bytes: number | null;
  sha256: string | null;
  video_seconds: number | null;
  changed: boolean;
  /** The provider billed far more than the estimate (cost_alert_factor). */
  cost_alert: boolean;
  error: string | null;
  /** The request hash of this version of the row: what a review mark is about (`review.json`). */
  request: string;
  /** The input image: a local file relative to the report's folder, or a URL with no query string; null when it cannot be shown (a signed URL, an inline image). */
  image: string | null;
  /** The video of an earlier version of an edited row, relative to the output folder (kept as `<id>.<old request>.mp4` once the new one is here). */
  earlier_output: string | null;
}

/** One billed run, as finance matches it against the provider's invoice (`ledger.csv`). */
export interface LedgerRow {
  run_id: string;
  created_at: string;
  night: string | null;
  manifest: string;
  id: string;
  request: string;
  seconds: number | null;
  audio_mode: AudioMode | null;
  cost_usd: number;
  cost_source: 'provider' | 'estimate';
  estimated_usd: number | null;
  /** The row was edited since: a paid run of an earlier version. */
  superseded: boolean;
}

export interface ReportTotals {
  rows: number;
  done: number;
  owed: number;
  failed: number;
  skipped: number;
  in_flight: number;
  seconds: number;
  estimated_usd: number;
  actual_usd: number;
}

export interface MoneyTotals {
  this_run_usd: number;
  earlier_runs_usd: number;
  /** Every billed run this folder's journal knows, superseded versions and earlier nights included: what the invoice should say. */
  billed_usd: number;
  /** Of which: runs of rows edited since (their video is an earlier version). */
  superseded_usd: number;
  by_audio_mode: Record<AudioMode, { rows: number; seconds: number; estimated_usd: number; actual_usd: number }>;
}

export interface Report {
  generated_at: string;
  provider: string;
  /** The `clipmill run` this report describes (its start time); money is split by it. */
  session: string | null;
  totals: ReportTotals;
  money: MoneyTotals;
  manifests: ({ name: string; file: string } & ReportTotals)[];
  rows: ReportRow[];
  billed_runs: LedgerRow[];
}

export interface ReportExtras {
  billed?: readonly BilledRun[];
  /** Rows whose downloaded video is missing or changed on disk. */
  missingOutputs?: ReadonlySet<string>;
  costAlertFactor?: number;
  /** The output folder the reports are written in: local images are linked relative to it (none for a bucket). */
  outDir?: string;
}

/** Errors come from providers' words: whatever an old journal holds, a report never shows a key or a signature. */
function redactNullable(text: string | null): string | null {
  return text === null ? null : redactText(text);
}

function usd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** The report's word for where a row stands (a timed-out run reads as failed until a re-check says more). */
const STATUS: Record<Standing, RowStatus> = {
  new: 'skipped',
  unanswered: 'unknown',
  in_flight: 'in_flight',
  paid: 'owed',
  done: 'done',
  damaged: 'owed',
  timed_out: 'failed',
  failed: 'failed',
};

function statusOf(state: RowState | undefined, missing: boolean): RowStatus {
  return STATUS[standingOf(state, !missing)];
}

function errorOf(state: RowState | undefined, item: WorkItem, missing: boolean): string | null {
  if (item.action === 'over_budget' && (state === undefined || state.status === 'pending')) return 'not submitted: it did not fit the budget (--partial)';
  if (item.action === 'not_selected' && (state === undefined || state.status === 'pending'))
    return 'not submitted: not selected tonight (--only, or clipmill retry left it)';
  if (state?.status === 'downloaded' && missing)
    return `paid for, but ${state.output?.path ?? 'its video'} is missing or changed on disk and could not be fetched again: run again to download it from the same run`;
  switch (state?.status) {
    case 'failed':
      return `${state.failure?.code}: ${state.failure?.message}`;
    case 'submitting':
      return 'the create request got no answer, so the run may exist: it is not resubmitted blindly';
    case 'succeeded':
      return 'generated and paid for, not downloaded yet (owed): run again to download it from the same run, nothing is paid twice';
    default:
      return null;
  }
}

/** The provider's cost wins over our estimate; a failed run is not billed. Micro-dollars. */
export function actualCost(state: RowState | undefined, estimateMicros: number): { micros: number | undefined; source: CostSource } {
  if (!state) return { micros: undefined, source: 'none' };
  if (state.status === 'downloaded' || state.status === 'succeeded') {
    return state.costMicros !== undefined ? { micros: state.costMicros, source: 'provider' } : { micros: estimateMicros, source: 'estimate' };
  }
  if (state.status === 'failed') {
    if (state.failure?.billed)
      return state.costMicros !== undefined ? { micros: state.costMicros, source: 'provider' } : { micros: estimateMicros, source: 'estimate' };
    return { micros: 0, source: 'not_billed' };
  }
  return { micros: undefined, source: 'none' };
}

function totalsOf(rows: readonly { row: ReportRow; estimate: number; actual: number }[]): ReportTotals {
  const count = (status: RowStatus) => rows.filter((r) => r.row.status === status).length;
  return {
    rows: rows.length,
    done: count('done'),
    failed: count('failed'),
    skipped: count('skipped'),
    owed: count('owed'),
    in_flight: count('in_flight') + count('unknown'),
    seconds: rows.reduce((sum, r) => sum + (r.row.status === 'done' ? r.row.duration : 0), 0),
    estimated_usd: usd(rows.reduce((sum, r) => sum + r.estimate, 0)),
    actual_usd: usd(rows.reduce((sum, r) => sum + r.actual, 0)),
  };
}

/** One plan item with the cost figures the totals add up (micro-dollars). */
interface BuiltRow {
  row: ReportRow;
  estimate: number;
  actual: number;
}

/** One row of the report: the plan's item and its journal state (only when that state is for this version of the row). */
function buildRow(item: WorkItem, states: ReadonlyMap<string, RowState>, session: string | null, extras: ReportExtras): BuiltRow {
  const known = states.get(item.key);
  const state = known?.request === item.request ? known : undefined;
  const cost = actualCost(state, item.estimateMicros);
  const missing = extras.missingOutputs?.has(item.key) ?? false;
  const request = item.row.request;
  const row: ReportRow = {
    manifest: item.row.manifest,
    id: item.row.id,
    file: item.row.file,
    line: item.row.line,
    status: statusOf(state, missing),
    prompt: request.prompt ?? (request.multiPrompt ?? []).map((s) => s.prompt).join(' | '),
    duration: request.durationSeconds,
    generate_audio: request.generateAudio,
    audio_mode: audioModeOf(request),
    estimated_usd: usd(item.estimateMicros),
    provider_usd: state?.costMicros === undefined ? null : usd(state.costMicros),
    actual_usd: cost.micros === undefined ? null : usd(cost.micros),
    cost_source: cost.source,
    billed: (cost.micros ?? 0) > 0,
    spent_in: (cost.micros ?? 0) > 0 ? (session !== null && state?.submittedIn === session ? 'this_run' : 'earlier_run') : null,
    attempts: state?.attempts ?? 0,
    run_id: state?.runId ?? null,
    output: state?.output?.path ?? null,
    bytes: state?.output?.bytes ?? null,
    sha256: state?.output?.sha256 ?? null,
    video_seconds: state?.output?.seconds ?? null,
    changed: item.changed,
    cost_alert: state?.costMicros !== undefined && state.costMicros > item.estimateMicros * (extras.costAlertFactor ?? 1.5),
    error: redactNullable(errorOf(state, item, missing)),
    request: item.request,
    image: imageLink(request.image, extras.outDir),
    earlier_output: earlierOutput(known, item),
  };
  return { row, estimate: item.estimateMicros, actual: cost.micros ?? 0 };
}

/** Money split by who spent it (this run or earlier ones), what the invoice should say, and by audio mode. */
function moneyTotals(built: readonly BuiltRow[], billed: readonly BilledRun[]): MoneyTotals {
  const sum = (rows: readonly BuiltRow[], pick: (b: BuiltRow) => number) => usd(rows.reduce((total, b) => total + pick(b), 0));
  const byMode = (mode: AudioMode) => {
    const rows = built.filter((b) => b.row.audio_mode === mode);
    return {
      rows: rows.length,
      seconds: rows.reduce((t, b) => t + b.row.duration, 0),
      estimated_usd: sum(rows, (b) => b.estimate),
      actual_usd: sum(rows, (b) => b.actual),
    };
  };
  return {
    this_run_usd: sum(
      built.filter((b) => b.row.spent_in === 'this_run'),
      (b) => b.actual,
    ),
    earlier_runs_usd: sum(
      built.filter((b) => b.row.spent_in === 'earlier_run'),
      (b) => b.actual,
    ),
    billed_usd: usd(billed.reduce((t, r) => t + r.costMicros, 0)),
    superseded_usd: usd(billed.filter((r) => r.superseded).reduce((t, r) => t + r.costMicros, 0)),
    by_audio_mode: { silent: byMode('silent'), audio: byMode('audio'), voice: byMode('voice') },
  };
}

/** Pure: the plan's rows and the journal's states → the report every renderer draws from. */
export function buildReport(
  manifests: readonly Manifest[],
  items: readonly WorkItem[],
  states: ReadonlyMap<string, RowState>,
  provider: string,
  session: string | null,
  extras: ReportExtras = {},
  now = new Date(),
): Report {
  const built = items.map((item) => buildRow(item, states, session, extras));
  return {
    generated_at: now.toISOString(),
    provider,
    session,
    totals: totalsOf(built),
    money: moneyTotals(built, extras.billed ?? []),
    manifests: manifests.map((m) => ({ name: m.name, file: m.file, ...totalsOf(built.filter((b) => b.row.manifest === m.name)) })),
    rows: built.map((b) => b.row),
    billed_runs: (extras.billed ?? []).map(ledgerRow),
  };
}

function ledgerRow(run: BilledRun): LedgerRow {
  const slash = run.key.indexOf('/');
  return {
    run_id: run.runId,
    created_at: run.createdAt,
    night: run.night ?? null,
    manifest: run.key.slice(0, slash),
    id: run.key.slice(slash + 1),
    request: run.request,
    seconds: run.seconds ?? null,
    audio_mode: run.audioMode ?? null,
    cost_usd: usd(run.costMicros),
    cost_source: run.costSource,
    estimated_usd: run.estimateMicros === undefined ? null : usd(run.estimateMicros),
    superseded: run.superseded,
  };
}
