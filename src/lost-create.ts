/**
 * When a create's answer is lost, the run may exist or not. Runflow lists runs by client_ref, but a new
 * run may not be listed at once: "not made" may be concluded only from a complete (every page) empty
 * answer read at least one request timeout after the create was sent. Pure rules, tested by table.
 */

/** The shares of one request timeout after the create at which the list is read. */
const LOOK_UP_AT = [0.1, 0.5, 1] as const;

/** When to read the run list for a create sent at `sentAtMs`: checks already overdue collapse into the last one. */
export function lookUpTimes(sentAtMs: number, nowMs: number, requestTimeoutMs: number): number[] {
  const times = LOOK_UP_AT.map((share) => sentAtMs + Math.round(share * requestTimeoutMs));
  const last = times.at(-1)!;
  return [...times.slice(0, -1).filter((t) => t > nowMs), Math.max(last, nowMs)];
}

export type LookUpAnswer = { kind: 'found'; runIds: string[] } | { kind: 'none' } | { kind: 'cannot_tell'; reason: string };
export type LookUpVerdict = 'attach' | 'not_created' | 'look_again' | 'unknown';

/**
 * What a look-up means: a listed run is re-attached; a complete empty answer means "not made" only
 * once a whole request timeout has passed since the create; an answer we cannot read decides nothing.
 */
export function lookUpVerdict(answer: LookUpAnswer, sentAtMs: number, nowMs: number, requestTimeoutMs: number): LookUpVerdict {
  if (answer.kind === 'found') return 'attach';
  if (answer.kind === 'cannot_tell') return 'unknown';
  return nowMs - sentAtMs >= requestTimeoutMs ? 'not_created' : 'look_again';
}
