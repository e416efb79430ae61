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

/** `latest`: runs listed for the attempt just looked up; `earlier`: for the row's earlier attempts whose creates may also have made one. */
export type LookUpAnswer = { kind: 'found'; latest: string[]; earlier: string[] } | { kind: 'none' } | { kind: 'cannot_tell'; reason: string };
export type LookUpVerdict = 'attach' | 'not_created' | 'look_again' | 'unknown';

/**
 * What a look-up means: the latest attempt's listed run is re-attached; an earlier attempt's only once a
 * whole request timeout has passed (the latest one's may still appear); a complete empty answer means
 * "not made" only then too; an answer we cannot read decides nothing.
 */
export function lookUpVerdict(answer: LookUpAnswer, sinceMs: number, readAtMs: number, requestTimeoutMs: number): LookUpVerdict {
  if (answer.kind === 'cannot_tell') return 'unknown';
  const patient = readAtMs - sinceMs >= requestTimeoutMs;
  if (answer.kind === 'found' && (answer.latest.length > 0 || patient)) return 'attach';
  if (!patient) return 'look_again';
  return 'not_created';
}
