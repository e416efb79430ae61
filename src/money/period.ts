/** Over what a budget counts spending: this invocation only, a time window (a night), or the folder's whole life. */
export type BudgetPeriod = { kind: 'run' } | { kind: 'window'; ms: number } | { kind: 'folder' };
