/** The review notes as a night applies them: review.json read before anything, applied where the journal is at hand. */
import { isBucketUrl } from '../infra/bucket.js';
import type { LoadedManifests, Manifest } from '../load/load.js';
import { display } from '../load/load.js';
import { InputError } from '../load/problem.js';
import { MAX_PROMPT_CHARS } from '../model/kling-v3.js';
import type { Replay } from '../state/replay.js';
import { marksFile, readMarks, type Mark } from './marks.js';
import type { Standing } from '../lifecycle/standing.js';
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

/** Why a redo is not applied while the marked version stands so: its run may still be billed, and a new version would abandon it. */
const HELD_BECAUSE: Partial<Record<Standing, string>> = {
  unanswered: 'its create got no answer, so a run may exist: it is looked up first',
  in_flight: 'its run is still at the provider: it is finished first',
  paid: 'its run is paid for and its video not downloaded yet: it is downloaded first',
  damaged: 'its video is missing or changed on disk: it is downloaded again from the same run first',
  timed_out: 'its run timed out and may still finish (and be billed): it is checked first',
};

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
  const tooLong = applied.notApplied.flatMap(({ row, tooLong }) => (tooLong ? [{ row, chars: tooLong.chars }] : []));
  if (tooLong.length > 0)
    throw new InputError(
      tooLong.map(({ row, chars }) => ({
        file: review.file,
        line: 0,
        field: `${row.manifest}/${row.id}`,
        message: `the redo notes make the prompt of ${row.file}:${row.line} ${chars} characters, over the model's ${MAX_PROMPT_CHARS}: shorten the note (or edit the row's prompt in its manifest, which drops the notes)`,
      })),
    );
  const warnings = applied.notApplied.flatMap(({ row, held }) => {
    const key = `${row.manifest}/${row.id}`;
    const because = held === undefined ? undefined : HELD_BECAUSE[held];
    const message = `${key}: its redo mark in ${review.file} is not applied tonight: ${because ?? held}; the row keeps its current version (nothing is abandoned) and the note applies on a later run`;
    return because === undefined && held === undefined ? [] : [{ key, message }];
  });
  return { manifests: applied.manifests, redone: applied.redone, warnings };
}
