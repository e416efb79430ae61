import type { Pipeline } from '../config/pipeline.js';
import type { FleetBudgetState } from '../fleet/budget.js';
import type { RowState } from '../lifecycle/events.js';
import { reservationMicros } from '../money/budget.js';
import type { AudioMode } from '../money/cost.js';
import { actionFor, mayHaveRun } from '../plan/plan.js';
import type { StatusBudget, StatusHold } from '../report/status-model.js';
import type { Replay } from '../state/replay.js';
import { committedMicros, isCommitted, type CommitItem, type Money } from './prepare.js';

/** What a plan last said of a row's request: a row the last plan does not name is held at it. */
export interface PlannedFacts {
  request: string;
  estimateMicros: number;
  seconds: number;
  audioMode: AudioMode;
}

/** A row as the next `run` would plan it: what the budget's commitments need of it. */
export type Work = CommitItem & { key: string };

/** What the holds are read from: the planned rows, the journal, and each row's last planned estimate. */
export interface HoldSources {
  work: readonly Work[];
  rates: Money['rates'];
  replay: Replay;
  planned: ReadonlyMap<string, PlannedFacts>;
  /** Journaled rows outside `work` are held too (status lists them). */
  withOtherRows: boolean;
}

/**
 * Each row's hold on the budget, as `run` counts it before any new row: runs that exist at their reservation
 * (`committedMicros`), lost creates at their estimates (`overBudget`). A run in flight of a row no plan names any
 * more is held too, at its last planned estimate: `run` does not re-attach it, but the provider bills it.
 */
export function holdsOf(o: HoldSources): Map<string, StatusHold> {
  const holds = new Map<string, StatusHold>();
  for (const item of o.work) {
    if (isCommitted(item)) holds.set(item.key, { kind: 'committed', micros: committedMicros([item], o.rates) });
    else if (mayHaveRun(item)) holds.set(item.key, { kind: 'lookup', micros: item.estimateMicros });
  }
  if (!o.withOtherRows) return holds;
  const planned = new Set(o.work.map((item) => item.key));
  const others = [...o.replay.states.values()].filter((state) => !planned.has(state.key) && state.status !== 'downloaded');
  // A run's own plan facts (any plan that named its request, or a compacted journal's run fact), read only when needed.
  const byRun = others.some((state) => state.runId !== undefined)
    ? new Map([...o.replay.runFacts()].flatMap((run) => (run.planned ? [[run.runId, run.planned] as const] : [])))
    : new Map<string, Omit<PlannedFacts, 'request'>>();
  for (const state of others) {
    const last = o.planned.get(state.key);
    const facts = (state.runId === undefined ? undefined : byRun.get(state.runId)) ?? (last?.request === state.request ? last : undefined);
    const hold = journalHold(state, facts, o.rates);
    if (hold) holds.set(state.key, hold);
  }
  return holds;
}

function journalHold(state: RowState, facts: Omit<PlannedFacts, 'request'> | undefined, rates: Money['rates']): StatusHold | undefined {
  const action = actionFor(state, false, true, false);
  const unpriced = facts === undefined ? { unpriced: true } : {};
  if (action === 'reattach')
    return { kind: 'committed', micros: facts ? reservationMicros(facts.estimateMicros, facts.seconds, facts.audioMode, rates) : 0, ...unpriced };
  if (action === 'unknown') return { kind: 'lookup', micros: facts?.estimateMicros ?? 0, ...unpriced };
  return undefined;
}

/** A fleet's holds: each row's open reservation in Redis, as its workers made it. */
export function fleetHolds(fleet: FleetBudgetState): Map<string, StatusHold> {
  return new Map([...fleet.reserved].map(([key, micros]) => [key, { kind: 'committed', micros }]));
}

/**
 * The budget (and its period, set or not) as the next `run` counts it (the journal's billed runs within `budget_period`, by `moneyOf`), or as a
 * fleet's workers do: the limit the enqueuer set in Redis, and its committed sum less the open reservations.
 */
export function budgetOf(pipeline: Pick<Pipeline, 'budgetMicros' | 'budgetPeriod'>, money: Money, fleet: FleetBudgetState | undefined): StatusBudget {
  if (fleet) {
    const reserved = [...fleet.reserved.values()].reduce((sum, micros) => sum + micros, 0);
    return { limitMicros: fleet.limitMicros, period: pipeline.budgetPeriod, spentMicros: fleet.committedMicros - reserved, countedBy: 'fleet' };
  }
  return { limitMicros: pipeline.budgetMicros, period: pipeline.budgetPeriod, spentMicros: money.spentBeforeMicros, countedBy: 'journal' };
}
