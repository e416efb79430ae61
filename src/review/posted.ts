/** Pure: a mark posted by the review page, checked against the page's rows and the journal as it is now. */
import type { RowState } from '../lifecycle/events.js';
import { MAX_PROMPT_CHARS } from '../model/kling-v3.js';
import { MAX_NOTE_CHARS, markSchema, type Mark } from './marks.js';
import { NOTE_JOINER, reviewStandingOf, type ReviewStanding } from './redo.js';

/** A row the page shows a review box for: the version it shows, where that version stands, and its longest prompt. */
export interface Markable {
  request: string;
  standing: ReviewStanding;
  promptChars: number;
}

/** Pure: what a version standing so may be marked: approved with a video here; redone once nothing of it can still be billed. */
export function verdictsFor(standing: ReviewStanding): { approve: boolean; redo: boolean } {
  return { approve: standing === 'done', redo: standing === 'done' || standing === 'failed' };
}

/** Pure: the longest note that still fits the version's prompt under the model's cap (a note goes to every shot). */
export function noteRoom(row: Pick<Markable, 'promptChars'>): number {
  return Math.max(0, Math.min(MAX_NOTE_CHARS, MAX_PROMPT_CHARS - row.promptChars - NOTE_JOINER.length));
}

/** The command that looks a forgotten lost create up (its run fetched if it made one, this version sent again if not). */
export const lookUpForgotten = (key: string) => `clipmill run <manifests> --retry-failed --only '${key}'`;

/** Why a version cannot be redone yet, as the page and the API say it. */
export function notRedoable(standing: ReviewStanding, key: string): string {
  if (standing === 'forgotten_create')
    return `its create got no answer and was forgotten by hand (clipmill forget), so a run may exist and be billed: ${lookUpForgotten(key)} looks it up first (fetching its video if it made one, or sending this version again if not); mark it once it is done or failed`;
  if (standing === 'timed_out')
    return 'its run timed out and may still finish (and be billed): the next clipmill run checks it first; mark it once it is done or failed';
  return `its run is not finished (${standing.replace('_', ' ')}): mark it once it is done or failed`;
}

/** The answer when the journal has moved the row to another version since the page was loaded: the page reloads itself on it. */
export const REPLACED = 'this video has been replaced since the page was loaded: reload';

type Checked = { mark: Mark } | { status: 400 | 409; message: string };

/**
 * Pure: the mark, or the status and why not. `rows` are the page's, `states` the journal's now: a mark for a version
 * that is no longer the row's current one (a stale page, a night that ran since) is refused, never saved.
 */
export function checkPostedMark(body: unknown, rows: ReadonlyMap<string, Markable>, states: ReadonlyMap<string, RowState>, now: Date): Checked {
  const input = body as Partial<Record<keyof Mark, unknown>> | null;
  if (typeof input !== 'object' || input === null) return { status: 400, message: 'expected a JSON object { key, request, verdict, note }' };
  const row = typeof input.key === 'string' ? rows.get(input.key) : undefined;
  if (row === undefined) return { status: 400, message: `key: ${JSON.stringify(input.key)} is no row of this report` };
  if (input.request !== row.request || states.get(String(input.key))?.request !== input.request)
    return { status: 409, message: `${String(input.key)}: ${REPLACED}` };
  const note = typeof input.note === 'string' ? input.note.trim() : undefined;
  const parsed = markSchema.safeParse({ key: input.key, request: input.request, verdict: input.verdict, ...(note && { note }), at: now.toISOString() });
  if (!parsed.success) return { status: 400, message: parsed.error.issues.map((i) => `${i.path.join('.') || 'mark'}: ${i.message}`).join('; ') };
  const key = String(input.key);
  // The same version may stand elsewhere now (re-checked or resubmitted by a night since): the page shows it again first.
  if (reviewStandingOf(states.get(key)) !== row.standing) return { status: 409, message: `${key}: its run changed since the page was loaded: reload` };
  const can = verdictsFor(row.standing);
  if (parsed.data.verdict === 'approved' && !can.approve) return { status: 400, message: `${key} has no video to approve` };
  if (parsed.data.verdict === 'redo' && !can.redo) return { status: 400, message: `${key} cannot be redone yet: ${notRedoable(row.standing, key)}` };
  const chars = row.promptChars + NOTE_JOINER.length + (parsed.data.note?.length ?? 0);
  if (parsed.data.verdict === 'redo' && chars > MAX_PROMPT_CHARS)
    return {
      status: 400,
      message: `note: it would make the prompt ${chars} characters, over the model's ${MAX_PROMPT_CHARS}: at most ${noteRoom(row)} characters fit`,
    };
  return { mark: parsed.data as Mark };
}
