import type { AudioMode } from './cost.js';
import type { BilledRun } from './ledger.js';
import type { WorkItem } from '../plan/plan.js';
import type { BudgetPeriod } from './period.js';

export type { BudgetPeriod } from './period.js';

/** Pure: what earlier invocations spent within the budget's period (runs counted by when they were created). */
export function spentInPeriod(billed: readonly BilledRun[], period: BudgetPeriod, nowMs: number): number {
  if (period.kind === 'run') return 0;
  const since = period.kind === 'window' ? nowMs - period.ms : Number.NEGATIVE_INFINITY;
  return billed.filter((run) => Date.parse(run.createdAt) >= since).reduce((sum, run) => sum + run.costMicros, 0);
}

/** Pure: the last price per second the provider actually billed, per audio mode (its `cost` over the clip's seconds). */
export function observedRates(billed: readonly BilledRun[]): Partial<Record<AudioMode, number>> {
  const rates: Partial<Record<AudioMode, number>> = {};
  const byTime = [...billed].sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
  for (const run of byTime) {
    if (run.costSource === 'provider' && run.audioMode !== undefined && run.seconds !== undefined && run.seconds > 0)
      rates[run.audioMode] = Math.ceil(run.costMicros / run.seconds);
  }
  return rates;
}

/** Pure: what a create reserves: the higher of the pipeline's estimate and the provider's last observed price, so a known price rise cannot overspend. */
export function reservationMicros(estimateMicros: number, seconds: number, mode: AudioMode, rates: Partial<Record<AudioMode, number>>): number {
  const observed = rates[mode];
  return observed === undefined ? estimateMicros : Math.max(estimateMicros, observed * seconds);
}

/**
 * Pure: the new submissions that do not fit what is left of the budget. Runs that may already exist (a lost
 * create, looked up first) count before any new row; re-attached runs and downloads are never held back,
 * since they are paid for already. With `partial`, the rows that fit run in manifest order (the first that
 * does not fit ends the list); without it, no new row is submitted if they do not all fit.
 */
export function overBudget(items: readonly WorkItem[], leftMicros: number, partial: boolean): WorkItem[] {
  const unknown = items.filter((i) => i.action === 'unknown').reduce((sum, i) => sum + i.estimateMicros, 0);
  const submits = items.filter((i) => i.action === 'submit');
  const room = leftMicros - unknown;
  if (submits.reduce((sum, i) => sum + i.estimateMicros, 0) <= room) return [];
  return partial ? fitBudget(submits, Math.max(0, room)).over : submits;
}

/** Rows a run may submit, in manifest order, while their estimates fit the budget (pure). */
export function fitBudget(items: readonly WorkItem[], budgetMicros: number): { fits: WorkItem[]; over: WorkItem[] } {
  const fits: WorkItem[] = [];
  const over: WorkItem[] = [];
  let total = 0;
  for (const item of items) {
    if (item.action !== 'submit' && item.action !== 'unknown') continue;
    // "While they fit": the first row that does not fit ends the prefix, so the order marketers chose holds.
    if (over.length === 0 && total + item.estimateMicros <= budgetMicros) {
      total += item.estimateMicros;
      fits.push(item);
    } else {
      over.push(item);
    }
  }
  return { fits, over };
}

/**
 * The money this run has committed: a row's estimate is reserved before its create is sent and settled
 * with what the provider billed when it ends (released when nothing was billed). Creates are refused once
 * the next reservation would pass the limit, so what is billed stays within it as long as the provider
 * bills no more than the pipeline's prices.
 */
export class BudgetLedger {
  private committed: number;

  /** `spentBeforeMicros`: what earlier invocations spent within the budget's period. */
  constructor(
    readonly limitMicros: number | undefined,
    readonly spentBeforeMicros = 0,
  ) {
    this.committed = spentBeforeMicros;
  }

  get committedMicros(): number {
    return this.committed;
  }

  /** Reserves `micros` if it fits; false means: do not submit. */
  reserve(micros: number): boolean {
    if (this.limitMicros !== undefined && this.committed + micros > this.limitMicros) return false;
    this.committed += micros;
    return true;
  }

  /** Counts money that is being spent whatever the limit says (a run already created, re-attached tonight). */
  commit(micros: number): void {
    this.committed += micros;
  }

  /** Replaces a reservation by what was actually billed (0 for an unbilled failure). */
  settle(reservedMicros: number, billedMicros: number): void {
    this.committed += billedMicros - reservedMicros;
  }

  /** Whether what is committed has passed the limit (a run billed above its reservation). */
  get overLimit(): boolean {
    return this.limitMicros !== undefined && this.committed > this.limitMicros;
  }
}

/**
 * Where a night's reservations are counted, in micro-dollars: this process's ledger, or a fleet's shared
 * one in Redis (keyed by row, so a job run twice reserves once).
 */
export interface BudgetBook {
  readonly limitMicros: number | undefined;
  /** Committed within the budget's period, as last known here. */
  readonly committedMicros: number;
  /** Reserves a create's price if it fits; false means: do not submit. */
  reserve(key: string, micros: number): Promise<boolean>;
  /** Counts money being spent whatever the limit says (a run that may already exist). */
  commit(key: string, micros: number): Promise<void>;
  /** Adds to a row's reservation (the provider's price rose). */
  grow(key: string, micros: number): Promise<void>;
  /** Replaces a row's reservation by its bill (0 when not billed); true when the committed sum is now past the limit. */
  settle(key: string, reservedMicros: number, billedMicros: number): Promise<boolean>;
}

/** One process's book: the ledger above. */
export class LocalBudget implements BudgetBook {
  constructor(private readonly ledger: BudgetLedger) {}

  get limitMicros(): number | undefined {
    return this.ledger.limitMicros;
  }

  get committedMicros(): number {
    return this.ledger.committedMicros;
  }

  reserve(_key: string, micros: number): Promise<boolean> {
    return Promise.resolve(this.ledger.reserve(micros));
  }

  commit(_key: string, micros: number): Promise<void> {
    this.ledger.commit(micros);
    return Promise.resolve();
  }

  grow(_key: string, micros: number): Promise<void> {
    this.ledger.commit(micros);
    return Promise.resolve();
  }

  settle(_key: string, reservedMicros: number, billedMicros: number): Promise<boolean> {
    this.ledger.settle(reservedMicros, billedMicros);
    return Promise.resolve(this.ledger.overLimit);
  }
}
