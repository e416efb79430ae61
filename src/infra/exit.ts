/**
 * How clipmill ends: 0 all rows done, 1 some rows failed or are owed, 2 invalid input or config (or the
 * journal could not be written), 3 stopped by budget or credit, 4 an internal error (a bug: report it;
 * the journal is consistent and a rerun resumes), 130 interrupted.
 */
export const EXIT = { ok: 0, rowsFailed: 1, invalid: 2, stopped: 3, internal: 4, interrupted: 130 } as const;
export type ExitName = keyof typeof EXIT;
