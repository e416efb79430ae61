/**
 * The redo rule: a row whose current version a reviewer marked "redo" runs again with the note appended to its
 * prompt. Pure and stable: the row with the note is a new version (a new request hash) with no mark, so once
 * it is done later runs leave it alone; editing the manifest row gives a version no mark names (the notes go).
 * The notes a night acted on are recorded with its plan (`Row.review`): once the journal has moved past a
 * version, no later mark (nor a lost review.json) takes the row back to it.
 */
import type { RowState } from '../lifecycle/events.js';
import { standingOf, type Standing } from '../lifecycle/standing.js';
import type { ImageInfo } from '../load/images.js';
import type { Manifest } from '../load/load.js';
import type { Row } from '../load/row.js';
import { MAX_PROMPT_CHARS, type KlingRequest } from '../model/kling-v3.js';
import { requestHash, rowKey } from '../plan/plan.js';
import { latestMarks, versionKey, type Mark } from './marks.js';

/** A blank line between: the prompt stays as written, and the note reads as an added instruction (the report shows both). */
export const NOTE_JOINER = '\n\n';

export type RowReview = NonNullable<Row['review']>;

/** Pure: the request with a note appended to its prompt (to every shot's prompt of a multi-shot row: a note is about the whole video). */
export function withNote(request: KlingRequest, note: string): KlingRequest {
  if (request.multiPrompt !== undefined)
    return { ...request, multiPrompt: request.multiPrompt.map((shot) => ({ ...shot, prompt: `${shot.prompt}${NOTE_JOINER}${note}` })) };
  return { ...request, prompt: `${request.prompt ?? ''}${NOTE_JOINER}${note}` };
}

/** Pure: the longest prompt of a request (each shot's of a multi-shot row): what the model's 2,500 characters cap. */
export function longestPrompt(request: KlingRequest): number {
  return Math.max(request.prompt?.length ?? 0, ...(request.multiPrompt ?? []).map((shot) => shot.prompt.length));
}

/** What the journal knows of a row: the version its state is at, and the notes the last plan that applied any recorded. */
export interface RowHistory {
  state?: RowState | undefined;
  recorded?: RowReview | undefined;
  /** False when the row's downloaded video is missing or changed on disk. */
  outputIntact?: boolean;
}

/**
 * Where a version stands for a redo: its standing, except `forgotten_create` for a lost create given up by hand
 * (`clipmill forget`): failed, yet its client_refs kept, as the run it may have made is still billed if it exists.
 */
export type ReviewStanding = Standing | 'forgotten_create';

/** Pure: a row's standing for the review: a failed state still holding client_refs is a forgotten lost create, never looked up. */
export function reviewStandingOf(state: RowState | undefined, outputIntact = true): ReviewStanding {
  if (state?.status === 'failed' && (state.clientRefs?.length ?? 0) > 0) return 'forgotten_create';
  return standingOf(state, outputIntact);
}

/** A version may be redone once nothing of it can still be billed: never run, done, or failed for good. */
export const REDO_FROM: ReadonlySet<ReviewStanding> = new Set(['new', 'done', 'failed']);

/** Pure: where the marked version stands in the journal: its state's standing, or `new` when the journal is at another version. */
export function standingOfVersion(history: RowHistory, request: string): ReviewStanding {
  return history.state?.request === request ? reviewStandingOf(history.state, history.outputIntact ?? true) : 'new';
}

/**
 * A row as tonight runs it: `notes` applied (oldest first); `request` its hash. A redo mark not applied: `held`, as
 * the marked version's run may still be billed (abandoning it would pay twice); `tooLong`, as the prompt would pass the cap.
 */
export interface Effective {
  row: Row;
  request: string;
  notes: string[];
  held?: ReviewStanding;
  tooLong?: { chars: number };
}

/**
 * Pure: the notes the journal has acted on. When the row is the one the notes were recorded against (same base) and
 * its state is at the version after the first j of them, those j notes stay applied whatever the marks say now.
 */
export function actedOn(row: Row, base: string, history: RowHistory, hashOf: (row: Row) => string): Effective {
  const { recorded, state } = history;
  const start: Effective = { row, request: base, notes: [] };
  if (recorded?.base !== base || state === undefined || state.request === base) return start;
  let current = row;
  for (let i = 0; i < recorded.notes.length; i++) {
    current = { ...current, request: withNote(current.request, recorded.notes[i]!) };
    const request = hashOf(current);
    if (request === state.request) return { row: current, request, notes: recorded.notes.slice(0, i + 1) };
  }
  return start;
}

/**
 * Pure: the row as tonight runs it. First the notes the journal acted on (permanent), then, while the marks say
 * "redo" for (key, r), the note is appended and r becomes the hash of the row with it. A row with notes carries
 * `review` (its base and notes), which tonight's plan records.
 */
export function effectiveRow(row: Row, latest: ReadonlyMap<string, Mark>, history: RowHistory, hashOf: (row: Row) => string): Effective {
  const key = rowKey(row);
  const base = hashOf(row);
  const acted = actedOn(row, base, history, hashOf);
  let current = acted.row;
  let request = acted.request;
  const notes = [...acted.notes];
  const seen = new Set<string>();
  while (!seen.has(request)) {
    seen.add(request);
    const mark = latest.get(versionKey(key, request));
    if (mark?.verdict !== 'redo' || mark.note === undefined) break;
    const standing = standingOfVersion(history, request);
    if (!REDO_FROM.has(standing)) return { ...finish(row, base, current, request, notes), held: standing };
    const next = withNote(current.request, mark.note);
    if (longestPrompt(next) > MAX_PROMPT_CHARS) return { ...finish(row, base, current, request, notes), tooLong: { chars: longestPrompt(next) } };
    notes.push(mark.note);
    current = { ...current, request: next };
    request = hashOf(current);
  }
  return finish(row, base, current, request, notes);
}

function finish(row: Row, base: string, current: Row, request: string, notes: string[]): Effective {
  if (notes.length === 0) return { row, request: base, notes };
  return { row: { ...current, review: { base, notes } }, request, notes };
}

/** A row whose next redo note was not applied: its version's run may still be billed (`held`), or the prompt would pass the model's cap. */
export interface NotApplied {
  row: Row;
  held?: ReviewStanding;
  tooLong?: { chars: number };
}

/** Pure: the manifests as tonight runs them: the marks and the journal's recorded notes applied to the rows they name. */
export function applyReview(
  manifests: readonly Manifest[],
  marks: readonly Mark[],
  images: ReadonlyMap<string, ImageInfo>,
  historyOf: (key: string) => RowHistory,
  recordedKeys: Iterable<string>,
): { manifests: Manifest[]; redone: string[]; notApplied: NotApplied[] } {
  const latest = latestMarks(marks);
  // Only rows a redo mark or a recorded note names are hashed here: the plan hashes every row anyway.
  const named = new Set([...marks.filter((m) => m.verdict === 'redo').map((m) => m.key), ...recordedKeys]);
  const redone: string[] = [];
  const notApplied: NotApplied[] = [];
  if (named.size === 0) return { manifests: [...manifests], redone, notApplied };
  const out = manifests.map((manifest) => {
    if (!manifest.rows.some((row) => named.has(rowKey(row)))) return manifest;
    const rows = manifest.rows.map((row) => {
      const key = rowKey(row);
      if (!named.has(key)) return row;
      const effective = effectiveRow(row, latest, historyOf(key), (r) => requestHash(r, images));
      if (effective.notes.length > 0) redone.push(key);
      if (effective.held || effective.tooLong)
        notApplied.push({ row, ...(effective.held && { held: effective.held }), ...(effective.tooLong && { tooLong: effective.tooLong }) });
      return effective.row;
    });
    return { ...manifest, rows };
  });
  return { manifests: out, redone, notApplied };
}
