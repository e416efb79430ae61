/** The review notes as a night applies them: review.json read before anything, applied where the journal is at hand. */
import { stat } from 'node:fs/promises';
import { isBucketUrl } from '../infra/bucket.js';
import type { LoadedManifests, Manifest } from '../load/load.js';
import { display } from '../load/load.js';
import { MAX_PROMPT_CHARS } from '../model/kling-v3.js';
import type { Replay } from '../state/replay.js';
import { marksFile, readMarks, type Mark } from './marks.js';
import { lookUpForgotten } from './posted.js';
import { applyReview, type ReviewStanding } from './redo.js';

/** review.json's marks, and the file as messages name it (none for a bucket, which holds no marks). */
export interface ReviewMarks {
  marks: Mark[];
  file: string;
}

/**
 * The folder's review.json, read (and checked) before anything is planned: a bad file is an input error, nothing
 * sent. `ignore` (clipmill enqueue: a fleet's rows are not reviewed) leaves it unread, and is told when there is one.
 */
export async function readReview(outDir: string, ignore?: (warning: string) => void): Promise<ReviewMarks> {
  if (isBucketUrl(outDir)) return { marks: [], file: '' };
  const file = display(marksFile(outDir));
  if (ignore === undefined) return { marks: await readMarks(outDir), file };
  if (
    await stat(marksFile(outDir)).then(
      () => true,
      () => false,
    )
  )
    ignore(
      `${file}: ignored: clipmill enqueue does not apply review marks (a fleet's rows are not reviewed; clipmill review and its redo notes are for clipmill run)`,
    );
  return { marks: [], file };
}

/** Why a redo is not applied while the marked version stands so: its run may still be billed, and a new version would abandon it. */
const HELD_BECAUSE: Partial<Record<ReviewStanding, string>> = {
  unanswered: 'its create got no answer, so a run may exist: it is looked up first',
  in_flight: 'its run is still at the provider: it is finished first',
  paid: 'its run is paid for and its video not downloaded yet: it is downloaded first',
  damaged: 'its video is missing or changed on disk: it is downloaded again from the same run first',
  timed_out: 'its run timed out and may still finish (and be billed): it is checked first',
};

/** Why the redo of `key` waits: a forgotten lost create is looked up only when asked (`--retry-failed`), so the user is told how. */
function heldBecause(held: ReviewStanding, key: string): string {
  if (held === 'forgotten_create')
    return `its create got no answer and was forgotten by hand (clipmill forget), so a run may exist and be billed: ${lookUpForgotten(key)} looks it up first`;
  return HELD_BECAUSE[held] ?? held;
}

/** A row whose redo waits, as the log says it. */
export interface ReviewWarning {
  key: string;
  message: string;
}

/** The rows as tonight runs them: the notes the journal acted on, then review.json's redo marks; `damaged`: rows whose video is missing or changed. */
export function reviewedManifests(
  loaded: Pick<LoadedManifests, 'manifests' | 'images'>,
  review: ReviewMarks,
  replay: Pick<Replay, 'states' | 'reviews'>,
  damaged: ReadonlySet<string> = new Set(),
): { manifests: Manifest[]; redone: string[]; warnings: ReviewWarning[] } {
  const applied = applyReview(
    loaded.manifests,
    review.marks,
    loaded.images,
    (key) => ({ state: replay.states.get(key), recorded: replay.reviews.get(key), outputIntact: !damaged.has(key) }),
    replay.reviews.keys(),
  );
  const warnings = applied.notApplied.map(({ row, held, tooLong }) => {
    const key = `${row.manifest}/${row.id}`;
    const [because, then] =
      tooLong === undefined
        ? [heldBecause(held ?? 'in_flight', key), 'the note applies on a later run']
        : [
            `it would make the prompt of ${row.file}:${row.line} ${tooLong.chars} characters, over the model's ${MAX_PROMPT_CHARS}`,
            `shorten the note in ${review.file} (or mark the row again on the review page)`,
          ];
    return { key, message: `${key}: its redo note in ${review.file} is not applied tonight: ${because}; the row keeps its current version: ${then}` };
  });
  return { manifests: applied.manifests, redone: applied.redone, warnings };
}
