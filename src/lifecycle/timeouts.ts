/** A run past a deadline may still finish and be billed: the next run looks at it again. */
export const TIMEOUT_CODES: ReadonlySet<string> = new Set(['JOB_TIMEOUT', 'QUEUE_TIMEOUT']);
