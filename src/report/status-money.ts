import { formatDurationMs } from '../config/duration.js';
import type { BudgetPeriod } from '../money/budget.js';
import { MICROS_PER_USD } from '../money/cost.js';
import type { BilledRun } from '../money/ledger.js';
import { isActive, type StatusLock } from './status-lock.js';

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

/** The budget's period as it is counted: by the journal as the next `run` counts it, or by a fleet's shared book in Redis; its limit if one is set. */
export interface StatusBudget {
  limitMicros: number | undefined;
  period: BudgetPeriod;
  /** Spent within the period, as `run` counts it (`budget_period: run`: nothing, each run counts only its own), or the fleet's committed sum less its reservations. */
  spentMicros: number;
  countedBy: 'journal' | 'fleet';
}

/** The last plan recorded: when its run started, its rows, those it worked on (a journal event since), those `--only` or `clipmill retry` left alone with work. */
export interface StatusPlan {
  session: string;
  rows: number;
  worked: number;
  leftAlone: number;
}

/**
 * What "tonight" is: the run whose plan the journal last recorded (`run`: `clipmill run`, or `run --only` and
 * `clipmill retry`, which record a plan too: `rows_worked` tells a morning retry of a row from a night's run;
 * `enqueue`: a fleet's last enqueue), or `unplanned`: a run holds the folder but has not recorded its plan yet
 * (nothing is sent before it is), so nothing of the previous night is counted for it.
 */
export interface StatusTonight {
  started_at: string | null;
  by: 'run' | 'enqueue' | 'unplanned' | null;
  /** The plan's rows, those with a journal event since it started, and those it left alone with work (`--only`, `retry`). */
  rows: number | null;
  rows_worked: number | null;
  rows_left_alone: number | null;
}

/** Every figure in dollars (`*_usd`) and, exactly, in integer micro-dollars (`*_micros`). */
export interface StatusMoney {
  /** Billed runs created since tonight's run started (`tonight`). */
  spent_tonight_usd: number;
  spent_tonight_micros: number;
  tonight: StatusTonight;
  /** Billed runs within the budget's period (`period`), as `run` counts them. */
  spent_in_period_usd: number;
  spent_in_period_micros: number;
  period: string;
  /** Every billed run the journal knows: what the invoice should say (ledger.csv). */
  spent_total_usd: number;
  spent_total_micros: number;
  billed_runs: number;
  /** Runs that exist and the next run re-attaches (in flight, timed out), at what the budget reserves for them: `run`'s commitments. */
  reserved_usd: number;
  reserved_micros: number;
  reserved_runs: number;
  /** Creates whose answer was lost, at their estimates: `run` looks them up first and counts them before any new row. */
  unanswered_usd: number;
  unanswered_micros: number;
  unanswered_creates: number;
  /** Rows held at 0 because no recorded plan prices them (a repaired journal): their runs are money all the same. */
  unpriced_rows: number;
  /** `left_usd`: the limit less what its period spent and what is reserved (what `run --dry-run` says is left); `left_for_new_usd`: that less the unanswered creates. */
  budget: {
    limit_usd: number;
    limit_micros: number;
    period: string;
    counted_by: 'journal' | 'fleet';
    spent_in_period_usd: number;
    spent_in_period_micros: number;
    left_usd: number;
    left_micros: number;
    left_for_new_usd: number;
    left_for_new_micros: number;
  } | null;
}

export interface MoneyInput {
  billed: readonly BilledRun[];
  holds: ReadonlyMap<string, StatusHold>;
  budget: StatusBudget;
  plan: StatusPlan | undefined;
  /** The fleet's name (its queue) when the journal is a fleet's in Redis; null for a folder. */
  fleet: string | null;
  lock: StatusLock | null;
}

/** A plan recorded this long after the lock's start is another run's: the holder records its own within moments of taking the lock. */
const PLAN_AFTER_LOCK_MS = 5 * 60_000;

function usd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** A figure as `<name>_usd` and `<name>_micros` (integer micro-dollars: what a program adds up without rounding). */
function both<N extends string>(name: N, micros: number): Record<`${N}_usd` | `${N}_micros`, number> {
  return { [`${name}_usd`]: usd(micros), [`${name}_micros`]: Math.round(micros) } as Record<`${N}_usd` | `${N}_micros`, number>;
}

export function periodText(period: BudgetPeriod): string {
  return period.kind === 'window' ? formatDurationMs(period.ms) : period.kind;
}

/**
 * Whether the last plan is the lock holder's own: recorded just after it took the lock, both times from the holder's
 * clock (another run's plan, even from a host whose clock differs, falls outside that moment).
 */
function planIsHolders(plan: StatusPlan | undefined, lock: StatusLock): boolean {
  if (plan === undefined || lock.started_at === null) return false;
  const after = Date.parse(plan.session) - Date.parse(lock.started_at);
  return after >= 0 && after <= PLAN_AFTER_LOCK_MS;
}

/** Pure: which run "tonight" is, and when it started. */
export function tonightOf(o: Pick<MoneyInput, 'plan' | 'fleet' | 'lock'>): StatusTonight {
  const { plan, lock } = o;
  if (lock && isActive(lock) && lock.started_at !== null && !planIsHolders(plan, lock))
    return { started_at: lock.started_at, by: 'unplanned', rows: null, rows_worked: null, rows_left_alone: null };
  if (plan === undefined) return { started_at: null, by: null, rows: null, rows_worked: null, rows_left_alone: null };
  return { started_at: plan.session, by: o.fleet ? 'enqueue' : 'run', rows: plan.rows, rows_worked: plan.worked, rows_left_alone: plan.leftAlone };
}

/** Pure: tonight's, the period's and every billed run; what the budget holds for runs that exist and unanswered creates; what is left of it. */
export function statusMoney(input: MoneyInput): StatusMoney {
  const held = { committed: { micros: 0, rows: 0 }, lookup: { micros: 0, rows: 0 } };
  let unpriced = 0;
  for (const hold of input.holds.values()) {
    held[hold.kind].micros += hold.micros;
    held[hold.kind].rows++;
    if (hold.unpriced === true) unpriced++;
  }
  const sum = (runs: readonly BilledRun[]) => runs.reduce((total, run) => total + run.costMicros, 0);
  const tonight = tonightOf(input);
  const since = tonight.by === 'unplanned' || tonight.started_at === null ? Number.NaN : Date.parse(tonight.started_at);
  // Runs created since the run started, whoever recorded them (a fleet's workers write their own sessions).
  const tonightMicros = sum(input.billed.filter((run) => Date.parse(run.createdAt) >= since));
  const { limitMicros, spentMicros } = input.budget;
  const left = limitMicros === undefined ? 0 : limitMicros - spentMicros - held.committed.micros;
  const total = sum(input.billed);
  return {
    ...both('spent_tonight', tonightMicros),
    tonight,
    ...both('spent_in_period', spentMicros),
    period: periodText(input.budget.period),
    ...both('spent_total', total),
    billed_runs: input.billed.length,
    ...both('reserved', held.committed.micros),
    reserved_runs: held.committed.rows,
    ...both('unanswered', held.lookup.micros),
    unanswered_creates: held.lookup.rows,
    unpriced_rows: unpriced,
    budget:
      limitMicros === undefined
        ? null
        : {
            ...both('limit', limitMicros),
            period: periodText(input.budget.period),
            counted_by: input.budget.countedBy,
            ...both('spent_in_period', spentMicros),
            ...both('left', left),
            ...both('left_for_new', left - held.lookup.micros),
          },
  };
}
