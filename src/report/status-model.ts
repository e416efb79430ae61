import { formatDurationMs } from '../config/duration.js';
import { redactText } from '../infra/http.js';
import type { RowState } from '../lifecycle/events.js';
import { standingOf, type Standing } from '../lifecycle/standing.js';
import type { BudgetPeriod } from '../money/budget.js';
import { MICROS_PER_USD } from '../money/cost.js';
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

/**
 * What the budget holds for a row, as `run` counts it before any new row: a run that exists (`committed`: in flight
 * or timed out, re-attached at its reservation) or a create with no answer (`lookup`: looked up first, at its estimate).
 */
export interface StatusHold {
  kind: 'committed' | 'lookup';
  micros: number;
  /** A row no recorded plan prices (a repaired journal lost its plans): held at 0, and said. */
  unpriced?: boolean;
}

/** The budget as it is counted: by the journal as the next `run` counts it, or by a fleet's shared book in Redis. */
export interface StatusBudget {
  limitMicros: number;
  period: BudgetPeriod;
  /** Spent within the period, as `run` counts it (`budget_period: run`: nothing, each run counts only its own), or the fleet's committed sum less its reservations. */
  spentMicros: number;
  countedBy: 'journal' | 'fleet';
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
  /** Each row's hold on the budget (rows holding nothing are absent). */
  holds: ReadonlyMap<string, StatusHold>;
  budget: StatusBudget | undefined;
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
  /** What the budget holds for the row: a run that exists at its reservation (its estimate, or the provider's last price when higher), an unanswered create at its estimate. */
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
  /** Runs that exist and the next run re-attaches (in flight, timed out), at what the budget reserves for them: `run`'s commitments. */
  reserved_usd: number;
  reserved_runs: number;
  /** Creates whose answer was lost, at their estimates: `run` looks them up first and counts them before any new row. */
  unanswered_usd: number;
  unanswered_creates: number;
  /** Rows held at 0 because no recorded plan prices them (a repaired journal): their runs are money all the same. */
  unpriced_rows: number;
  /** `left_usd`: the limit less what its period spent and what is reserved (what `run --dry-run` says is left); `left_for_new_usd`: that less the unanswered creates. */
  budget: {
    limit_usd: number;
    period: string;
    counted_by: 'journal' | 'fleet';
    spent_in_period_usd: number;
    left_usd: number;
    left_for_new_usd: number;
  } | null;
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

function rowOf(
  key: string,
  place: { manifest: string; id: string; line: number | null },
  state: RowState | undefined,
  cost: ReturnType<typeof actualCost>,
  input: StatusInput,
): StatusRow {
  const standing = standingOf(state, !input.damaged.has(key));
  const at = state ? input.lastEventAt.get(key) : undefined;
  const hold = input.holds.get(key);
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
    reserved_usd: hold === undefined ? null : usd(hold.micros),
    attempts: state?.attempts ?? 0,
    detail: state ? detailOf(state, standing, isActive(input.lock)) : null,
  };
}

/** A planned row: its journal state only when it is for this version of the row (an edited row is new work). */
function plannedRow(item: StatusItem, input: StatusInput): StatusRow {
  const known = input.states.get(item.key);
  const state = known?.request === item.request ? known : undefined;
  const place = { manifest: item.row.manifest, id: item.row.id, line: item.row.line };
  const row = rowOf(item.key, place, state, actualCost(state, item.estimateMicros), input);
  row.estimated_usd = usd(item.estimateMicros);
  return row;
}

/** A journaled row no plan names: its cost as the ledger has it. */
function journalRow(state: RowState, input: StatusInput, byRun: ReadonlyMap<string, BilledRun>): StatusRow {
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
  return row;
}

function countsOf(rows: readonly StatusRow[]): Record<Standing, number> {
  const counts = Object.fromEntries(STANDINGS.map((s) => [s, 0])) as Record<Standing, number>;
  for (const row of rows) counts[row.state]++;
  return counts;
}

function periodText(period: BudgetPeriod): string {
  return period.kind === 'window' ? formatDurationMs(period.ms) : period.kind;
}

/** Money: tonight's and every billed run, what the budget holds for runs that exist and unanswered creates, and what is left of it. */
function moneyOf(input: StatusInput): StatusMoney {
  const held = { committed: { micros: 0, rows: 0 }, lookup: { micros: 0, rows: 0 } };
  let unpriced = 0;
  for (const hold of input.holds.values()) {
    held[hold.kind].micros += hold.micros;
    held[hold.kind].rows++;
    if (hold.unpriced === true) unpriced++;
  }
  const sum = (runs: readonly BilledRun[]) => runs.reduce((total, run) => total + run.costMicros, 0);
  const since = input.session === undefined ? Number.NaN : Date.parse(input.session);
  // Runs created since the run started, whoever recorded them (a fleet's workers write their own sessions).
  const tonight = sum(input.billed.filter((run) => Date.parse(run.createdAt) >= since));
  const budget = input.budget;
  const spentInBudget = budget?.spentMicros ?? 0;
  return {
    spent_tonight_usd: usd(tonight),
    spent_total_usd: usd(sum(input.billed)),
    billed_runs: input.billed.length,
    reserved_usd: usd(held.committed.micros),
    reserved_runs: held.committed.rows,
    unanswered_usd: usd(held.lookup.micros),
    unanswered_creates: held.lookup.rows,
    unpriced_rows: unpriced,
    budget: budget
      ? {
          limit_usd: usd(budget.limitMicros),
          period: periodText(budget.period),
          counted_by: budget.countedBy,
          spent_in_period_usd: usd(spentInBudget),
          left_usd: usd(budget.limitMicros - spentInBudget - held.committed.micros),
          left_for_new_usd: usd(budget.limitMicros - spentInBudget - held.committed.micros - held.lookup.micros),
        }
      : null,
  };
}

/** Pure: every row with its state, run id, age and cost; the money; the lock. */
export function buildStatus(input: StatusInput): Status {
  const rows = input.items.map((item) => plannedRow(item, input));
  if (input.withOtherRows) {
    const planned = new Set(input.items.map((item) => item.key));
    const byRun = new Map(input.billed.map((run) => [run.runId, run]));
    const others = [...input.states.values()].filter((s) => !planned.has(s.key)).sort((a, b) => a.key.localeCompare(b.key));
    for (const state of others) rows.push(journalRow(state, input, byRun));
  }
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
    money: moneyOf(input),
    manifests: [...byManifest].map(([name, mine]) => ({ name, rows: mine.length, counts: countsOf(mine) })),
    rows,
  };
}
