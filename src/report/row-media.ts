/** Pure: the files a report row links besides its video (the input image, the earlier version's video). */
import path from 'node:path';
import type { RowState } from '../lifecycle/events.js';
import { isBucketUrl } from '../infra/bucket.js';
import type { ImageRef } from '../model/kling-v3.js';
import { archivedVideoPath, type WorkItem } from '../plan/plan.js';

/** A relative path with `/` separators, as a report writes every path (and a browser reads it). */
const posix = (relative: string) => relative.split(path.sep).join('/');

/**
 * The input image as a report links it: a local file relative to the report's folder; a remote one by its URL,
 * only when that URL has no query string and no credentials (a signed URL must never be written into a report).
 */
export function imageLink(image: ImageRef, outDir: string | undefined): string | null {
  if (image.kind === 'file') return outDir === undefined || isBucketUrl(outDir) ? null : posix(path.relative(outDir, image.path));
  let url: URL;
  try {
    url = new URL(image.url);
  } catch {
    return null;
  }
  if (!/^https?:$/.test(url.protocol) || url.search !== '' || url.username !== '' || url.password !== '') return null;
  url.hash = '';
  return url.href;
}

/**
 * Where the video of the row's earlier version is, relative to the output folder: moved aside as
 * `<id>.<old request>.mp4` once this version's video is in its place, still at its own path until then.
 */
export function earlierOutput(known: RowState | undefined, item: Pick<WorkItem, 'request' | 'row'>): string | null {
  if (known === undefined) return null;
  if (known.request !== item.request) return known.output?.path ?? known.previous?.output.path ?? null;
  const previous = known.previous;
  if (previous === undefined) return null;
  if (known.output?.path !== previous.output.path) return previous.output.path;
  return posix(path.relative('.', archivedVideoPath('.', item.row, previous.request)));
}
