/** Pure: a mark posted by the review page, checked against the page's rows and the journal as it is now. */
import type { RowState } from '../lifecycle/events.js';
import { markSchema, type Mark } from './marks.js';

/** A row the page may mark: the version it shows, whether it has a video to approve, and its longest prompt. */
export interface Markable {
  request: string;
  approvable: boolean;
  promptChars: number;
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
  if (parsed.data.verdict === 'approved' && !row.approvable) return { status: 400, message: `${String(input.key)} has no video to approve` };
  return { mark: parsed.data as Mark };
}
