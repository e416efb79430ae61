/** The review notes as a night applies them: review.json read before anything, applied where the journal is at hand. */
import { isBucketUrl } from '../infra/bucket.js';
import type { LoadedManifests, Manifest } from '../load/load.js';
import { display } from '../load/load.js';
import { InputError } from '../load/problem.js';
import { MAX_PROMPT_CHARS } from '../model/kling-v3.js';
import type { Replay } from '../state/replay.js';
import { marksFile, readMarks, type Mark } from './marks.js';
import { applyReview } from './redo.js';

/** review.json's marks, and the file as messages name it (none for a bucket, which holds no marks). */
export interface ReviewMarks {
  marks: Mark[];
  file: string;
}

/** The folder's review.json, read (and checked) before anything is planned: a bad file is an input error, nothing sent. */
export async function readReview(outDir: string): Promise<ReviewMarks> {
  if (isBucketUrl(outDir)) return { marks: [], file: '' };
  return { marks: await readMarks(outDir), file: display(marksFile(outDir)) };
}

/** The rows as tonight runs them: the notes the journal acted on, then review.json's redo marks. */
export function reviewedManifests(
  loaded: Pick<LoadedManifests, 'manifests' | 'images'>,
  review: ReviewMarks,
  replay: Pick<Replay, 'states' | 'reviews'>,
): { manifests: Manifest[]; redone: string[] } {
  const applied = applyReview(
    loaded.manifests,
    review.marks,
    loaded.images,
    (key) => ({ state: replay.states.get(key), recorded: replay.reviews.get(key) }),
    replay.reviews.keys(),
  );
  if (applied.tooLong.length > 0)
    throw new InputError(
      applied.tooLong.map(({ row, chars }) => ({
        file: review.file,
        line: 0,
        field: `${row.manifest}/${row.id}`,
        message: `the redo notes make the prompt of ${row.file}:${row.line} ${chars} characters, over the model's ${MAX_PROMPT_CHARS}: shorten the note (or edit the row's prompt in its manifest, which drops the notes)`,
      })),
    );
  return { manifests: applied.manifests, redone: applied.redone };
}
