import type { WorkItem } from './plan.js';

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
  private committed = 0;

  constructor(readonly limitMicros: number | undefined) {}

  get committedMicros(): number {
    return this.committed;
  }

  /** Reserves `micros` if it fits; false means: do not submit. */
  reserve(micros: number): boolean {
    if (this.limitMicros !== undefined && this.committed + micros > this.limitMicros) return false;
    this.committed += micros;
    return true;
  }

  /** Replaces a reservation by what was actually billed (0 for an unbilled failure). */
  settle(reservedMicros: number, billedMicros: number): void {
    this.committed += billedMicros - reservedMicros;
  }
}
