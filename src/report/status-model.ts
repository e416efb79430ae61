import { formatDurationMs } from '../config/duration.js';
import { redactText } from '../infra/http.js';
import type { RowState } from '../lifecycle/events.js';
import { standingOf, type Standing } from '../lifecycle/standing.js';
import { observedRates, reservationMicros, spentInPeriod, type BudgetPeriod } from '../money/budget.js';
import { audioModeOf, MICROS_PER_USD } from '../money/cost.js';
import type { BilledRun } from '../money/ledger.js';
import type { KlingRequest } from '../model/kling-v3.js';
import { actualCost, type CostSource } from './build.js';
import type { StatusLock } from './status-lock.js';

export type { StatusLock } from './status-lock.js';

/** Where the rows come from: the manifests named, the last plan the journal recorded, the journal alone (no plan), or a fleet's journal. */
export type StatusSource = 'manifests' | 'last_plan' | 'journal' | 'fleet';

/** A row as a plan knows it (a run's plan item, or one the journal recorded): all status needs of it. */
export interface StatusItem {
  key: string;
  request: string;
  estimateMicros: number;
  row: { manifest: string; id: string; line: number; request: Pick<KlingRequest, 'durationSeconds' | 'generateAudio' | 'voiceIds' | 'elements'> };
}

export interface StatusInput {
  outDir: string;
  source: StatusSource;
  items: readonly StatusItem[];
  /** Journaled rows outside `items` are listed too (after them) only when this is set. */
  withOtherRows: boolean;
  states: ReadonlyMap<string, RowState>;
  /** Each row's last event time (ISO). */
  lastEventAt: ReadonlyMap<string, string>;
  billed: readonly BilledRun[];
  /** The current or last run (its start time, as its plan records it). */
  session: string | undefined;
  /** Rows whose downloaded video is missing or changed on disk. */
  damaged: ReadonlySet<string>;
  budget: { limitMicros: number; period: BudgetPeriod } | undefined;
  lock: StatusLock | null;
  nowMs: number;
}

/** One row of `clipmill status --json` (money in dollars). */
export interface StatusRow {
  manifest: string;
  id: string;
  key: string;
  line: number | null;
  state: Standing;
  label: string;
  run_id: string | null;
  last_event_at: string | null;
  age_seconds: number | null;
  estimated_usd: number | null;
  cost_usd: number | null;
  cost_source: CostSource;
  /** What the budget holds for a run in flight (its estimate, or the provider's last price when higher). */
  reserved_usd: number | null;
  attempts: number;
  /** Why it needs attention, or what happens to it next; null for rows done or pending. */
  detail: string | null;
}

export interface StatusMoney {
  /** Billed runs created since the current (or last) run started. */
  spent_tonight_usd: number;
  /** Every billed run the journal knows: what the invoice should say (ledger.csv). */
  spent_total_usd: number;
  billed_runs: number;
  /** Runs in flight (or whose create is unanswered), at what the budget reserves for them. */
  reserved_usd: number;
  reserved_runs: number;
  budget: { limit_usd: number; period: string; spent_in_period_usd: number; left_usd: number } | null;
}

/** `clipmill status --json`: one document; field names are stable (README). */
export interface Status {
  out: string;
  source: StatusSource;
  session: string | null;
  generated_at: string;
  /** Who holds the folder's lock; null for a fleet (its workers hold rows by leases in Redis). */
  lock: StatusLock | null;
  money: StatusMoney;
  manifests: { name: string; rows: number; counts: Record<Standing, number> }[];
  rows: StatusRow[];
}

export const LABELS: Record<Standing, string> = {
  done: 'done',
  damaged: 'video missing',
  paid: 'to download',
  in_flight: 'in flight',
  unanswered: 'unanswered create',
  new: 'pending',
  timed_out: 'failed',
  failed: 'failed',
};

const STANDINGS: Standing[] = ['done', 'damaged', 'paid', 'in_flight', 'unanswered', 'new', 'timed_out', 'failed'];
const RESERVED: ReadonlySet<Standing> = new Set(['in_flight', 'unanswered']);

function usd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** Whether a run is at work on the folder now: held, and not known to be gone. */
export function isActive(lock: StatusLock | null): boolean {
  return lock?.held === true && lock.alive !== false;
}

/** What status says of a row needing attention, and what happens to it next. */
function detailOf(s: RowState, standing: Standing, active: boolean): string | null {
  switch (standing) {
    case 'failed':
    case 'timed_out':
      return redactText(`${s.failure?.code}: ${s.failure?.message}`);
    case 'unanswered':
      return `the create got no answer; ${active ? 'the run' : 'the next run'} looks it up by client_ref ${s.clientRef ?? '(none: sent by an older clipmill)'} before any resubmit`;
    case 'paid':
      return `run ${s.runId} succeeded; ${active ? 'the run downloads it' : 'the next run downloads it'}`;
    case 'in_flight':
      return active ? `run ${s.runId}; the run holding the folder is waiting for it` : `run ${s.runId}; the next run re-attaches to it`;
    case 'damaged':
      return `${s.output?.path ?? 'its video'} is missing or changed on disk; the next run downloads it again from run ${s.runId}`;
    default:
      return null;
  }
}

interface Built {
  row: StatusRow;
  reservedMicros: number;
}

function rowOf(
  key: string,
  place: { manifest: string; id: string; line: number | null },
  state: RowState | undefined,
  cost: ReturnType<typeof actualCost>,
  input: StatusInput,
): StatusRow {
  const standing = standingOf(state, !input.damaged.has(key));
  const at = state ? input.lastEventAt.get(key) : undefined;
  return {
    ...place,
    key,
    state: standing,
    label: LABELS[standing],
    run_id: state?.runId ?? null,
    last_event_at: at ?? null,
    age_seconds: at === undefined ? null : Math.max(0, Math.round((input.nowMs - Date.parse(at)) / 1000)),
    estimated_usd: null,
    cost_usd: cost.micros === undefined ? null : usd(cost.micros),
    cost_source: cost.source,
    reserved_usd: null,
    attempts: state?.attempts ?? 0,
    detail: state ? detailOf(state, standing, isActive(input.lock)) : null,
  };
}

/** A planned row: its journal state only when it is for this version of the row (an edited row is new work). */
function plannedRow(item: StatusItem, input: StatusInput, rates: ReturnType<typeof observedRates>): Built {
  const known = input.states.get(item.key);
  const state = known?.request === item.request ? known : undefined;
  const place = { manifest: item.row.manifest, id: item.row.id, line: item.row.line };
  const row = rowOf(item.key, place, state, actualCost(state, item.estimateMicros), input);
  row.estimated_usd = usd(item.estimateMicros);
  const request = item.row.request;
  const reservedMicros = RESERVED.has(row.state) ? reservationMicros(item.estimateMicros, request.durationSeconds, audioModeOf(request), rates) : 0;
  if (RESERVED.has(row.state)) row.reserved_usd = usd(reservedMicros);
  return { row, reservedMicros };
}

/** A journaled row no plan names: its cost as the ledger has it. */
function journalRow(state: RowState, input: StatusInput, byRun: ReadonlyMap<string, BilledRun>): Built {
  const slash = state.key.indexOf('/');
  const place = { manifest: state.key.slice(0, slash), id: state.key.slice(slash + 1), line: null };
  const billed = state.runId === undefined ? undefined : byRun.get(state.runId);
  const fromState = actualCost(state, 0);
  const cost = billed
    ? { micros: billed.costMicros, source: billed.costSource }
    : fromState.source === 'estimate'
      ? { micros: undefined, source: 'none' as const }
      : fromState;
  const row = rowOf(state.key, place, state, cost, input);
  if (billed?.estimateMicros !== undefined) row.estimated_usd = usd(billed.estimateMicros);
  return { row, reservedMicros: 0 };
}

function countsOf(rows: readonly StatusRow[]): Record<Standing, number> {
  const counts = Object.fromEntries(STANDINGS.map((s) => [s, 0])) as Record<Standing, number>;
  for (const row of rows) counts[row.state]++;
  return counts;
}

function periodText(period: BudgetPeriod): string {
  return period.kind === 'window' ? formatDurationMs(period.ms) : period.kind;
}

/** Money: tonight's and every billed run, what the budget holds for runs in flight, and what is left of it. */
function moneyOf(input: StatusInput, reservedMicros: number, reservedRuns: number): StatusMoney {
  const sum = (runs: readonly BilledRun[]) => runs.reduce((total, run) => total + run.costMicros, 0);
  const since = input.session === undefined ? Number.NaN : Date.parse(input.session);
  // Runs created since the run started, whoever recorded them (a fleet's workers write their own sessions).
  const tonight = sum(input.billed.filter((run) => Date.parse(run.createdAt) >= since));
  const budget = input.budget;
  let spentInBudget = 0;
  if (budget) {
    // A per-run budget counts the run at work now; once it is over, the next run starts from nothing.
    spentInBudget = budget.period.kind === 'run' ? (isActive(input.lock) ? tonight : 0) : spentInPeriod(input.billed, budget.period, input.nowMs);
  }
  return {
    spent_tonight_usd: usd(tonight),
    spent_total_usd: usd(sum(input.billed)),
    billed_runs: input.billed.length,
    reserved_usd: usd(reservedMicros),
    reserved_runs: reservedRuns,
    budget: budget
      ? {
          limit_usd: usd(budget.limitMicros),
          period: periodText(budget.period),
          spent_in_period_usd: usd(spentInBudget),
          left_usd: usd(budget.limitMicros - spentInBudget - reservedMicros),
        }
      : null,
  };
}

/** Pure: every row with its state, run id, age and cost; the money; the lock. */
export function buildStatus(input: StatusInput): Status {
  const rates = observedRates(input.billed);
  const built = input.items.map((item) => plannedRow(item, input, rates));
  if (input.withOtherRows) {
    const planned = new Set(input.items.map((item) => item.key));
    const byRun = new Map(input.billed.map((run) => [run.runId, run]));
    const others = [...input.states.values()].filter((s) => !planned.has(s.key)).sort((a, b) => a.key.localeCompare(b.key));
    for (const state of others) built.push(journalRow(state, input, byRun));
  }
  const rows = built.map((b) => b.row);
  const reserved = built.filter((b) => b.row.reserved_usd !== null);
  const byManifest = new Map<string, StatusRow[]>();
  for (const row of rows) {
    const mine = byManifest.get(row.manifest);
    if (mine) mine.push(row);
    else byManifest.set(row.manifest, [row]);
  }
  return {
    out: input.outDir,
    source: input.source,
    session: input.session ?? null,
    generated_at: new Date(input.nowMs).toISOString(),
    lock: input.lock,
    money: moneyOf(
      input,
      reserved.reduce((total, b) => total + b.reservedMicros, 0),
      reserved.length,
    ),
    manifests: [...byManifest].map(([name, mine]) => ({ name, rows: mine.length, counts: countsOf(mine) })),
    rows,
  };
}
