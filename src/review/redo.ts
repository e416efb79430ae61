/**
 * The redo rule: a row whose current version a reviewer marked "redo" runs again with the note appended to its
 * prompt. Pure and stable: the row with the note is a new version (a new request hash) with no mark, so once
 * it is done later runs leave it alone; editing the manifest row gives a version no mark names (the notes go).
 */
import { isBucketUrl } from '../infra/bucket.js';
import type { ImageInfo } from '../load/images.js';
import type { LoadedManifests, Manifest } from '../load/load.js';
import { display } from '../load/load.js';
import { InputError, type Problem } from '../load/problem.js';
import type { Row } from '../load/row.js';
import { MAX_PROMPT_CHARS, type KlingRequest } from '../model/kling-v3.js';
import { requestHash, rowKey } from '../plan/plan.js';
import { latestMarks, marksFile, readMarks, versionKey, type Mark } from './marks.js';

/** A blank line between: the prompt stays as written, and the note reads as an added instruction (the report shows both). */
export const NOTE_JOINER = '\n\n';

/** Pure: the request with a note appended to its prompt (to every shot's prompt of a multi-shot row: a note is about the whole video). */
export function withNote(request: KlingRequest, note: string): KlingRequest {
  if (request.multiPrompt !== undefined)
    return { ...request, multiPrompt: request.multiPrompt.map((shot) => ({ ...shot, prompt: `${shot.prompt}${NOTE_JOINER}${note}` })) };
  return { ...request, prompt: `${request.prompt ?? ''}${NOTE_JOINER}${note}` };
}

/**
 * Pure: the row as tonight runs it: while the marks say "redo" for (key, r), the note is appended and r becomes the
 * hash of the row with it. `notes` are the notes applied, oldest first.
 */
export function redoChain(row: Row, latest: ReadonlyMap<string, Mark>, hashOf: (row: Row) => string): { row: Row; notes: string[] } {
  const key = rowKey(row);
  const notes: string[] = [];
  const seen = new Set<string>();
  let current = row;
  for (let request = hashOf(row); !seen.has(request); request = hashOf(current)) {
    seen.add(request);
    const mark = latest.get(versionKey(key, request));
    if (mark?.verdict !== 'redo' || mark.note === undefined) break;
    notes.push(mark.note);
    current = { ...current, request: withNote(current.request, mark.note) };
  }
  return { row: current, notes };
}

function longestPrompt(request: KlingRequest): number {
  return Math.max(request.prompt?.length ?? 0, ...(request.multiPrompt ?? []).map((shot) => shot.prompt.length));
}

/** Pure: the manifests with every redo applied; a prompt the notes make too long is a problem naming review.json and the row. */
export function applyRedoMarks(
  manifests: readonly Manifest[],
  marks: readonly Mark[],
  images: ReadonlyMap<string, ImageInfo>,
  file: string,
): { manifests: Manifest[]; redone: string[]; problems: Problem[] } {
  const latest = latestMarks(marks);
  // Only rows with a redo mark are hashed here: the plan hashes every row anyway.
  const redoKeys = new Set(marks.filter((m) => m.verdict === 'redo').map((m) => m.key));
  const redone: string[] = [];
  const problems: Problem[] = [];
  const out = manifests.map((manifest) => {
    if (!manifest.rows.some((row) => redoKeys.has(rowKey(row)))) return manifest;
    const rows = manifest.rows.map((row) => {
      if (!redoKeys.has(rowKey(row))) return row;
      const chain = redoChain(row, latest, (r) => requestHash(r, images));
      if (chain.notes.length === 0) return row;
      redone.push(rowKey(row));
      const chars = longestPrompt(chain.row.request);
      if (chars > MAX_PROMPT_CHARS)
        problems.push({
          file,
          line: 0,
          field: rowKey(row),
          message: `the redo note${chain.notes.length === 1 ? '' : 's'} make the prompt of ${row.file}:${row.line} ${chars} characters, over the model's ${MAX_PROMPT_CHARS}: shorten the note (or edit the row's prompt in its manifest, which drops the notes)`,
        });
      return chain.row;
    });
    return { ...manifest, rows };
  });
  return { manifests: out, redone, problems };
}

/** The marks of `<outDir>/review.json` applied to the loaded rows (a local folder's only: a bucket holds no marks). */
export async function withReviewNotes<T extends LoadedManifests>(loaded: T, outDir: string): Promise<T> {
  if (isBucketUrl(outDir)) return loaded;
  const marks = await readMarks(outDir);
  if (marks.length === 0) return loaded;
  const applied = applyRedoMarks(loaded.manifests, marks, loaded.images, display(marksFile(outDir)));
  if (applied.problems.length > 0) throw new InputError(applied.problems);
  return { ...loaded, manifests: applied.manifests };
}
