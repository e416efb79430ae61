/** Why the run stopped early, if it did: the CLI turns it into an exit code. */
export interface StopReason {
  /** fatal: the provider refuses us (401/403); credit: out of credit (402); budget: the run's budget is spent; io: the journal cannot be written. */
  kind: 'fatal' | 'credit' | 'budget' | 'io';
  message: string;
}
