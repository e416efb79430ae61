import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Bucket } from '../infra/bucket.js';
import type { Logger } from '../infra/log.js';
import type { Input } from '../lifecycle/machine.js';
import type { RowState } from '../lifecycle/events.js';
import { archivedVideoPath, videoPathFor, type WorkItem } from '../plan/plan.js';
import type { RunSnapshot } from '../providers/provider.js';
import { downloadVideo, type DownloadOptions } from './download.js';

/**
 * A video for a bucket: downloaded and checked in a local staging folder exactly as for a folder (size,
 * hash, MP4 structure and duration), then put in the bucket under its name with its sha256 and run id in
 * the object's metadata (the bucket's sidecar), and the staged copy removed.
 */
export async function downloadToBucket(
  o: { bucket: Bucket; stagingDir: string; log: Logger; previous: RowState['previous'] },
  item: WorkItem,
  snapshot: RunSnapshot & { videoUrl: string },
  keepPrevious: boolean,
  options: Omit<DownloadOptions, 'sidecar'>,
): Promise<Input> {
  const rel = path.relative('.', videoPathFor('.', item.row));
  if (keepPrevious && o.previous?.output.path === rel) {
    const earlier = await o.bucket.head(rel);
    // Only the earlier video itself is kept aside: an object with another hash is a newer download whose record was cut short.
    if (earlier?.sha256 === o.previous.output.sha256) {
      const archived = path.relative('.', archivedVideoPath('.', item.row, o.previous.request));
      await o.bucket.copy(rel, archived);
      o.log.info('kept_previous', `the row changed: its earlier video is kept as ${archived}`, {
        manifest: item.row.manifest,
        row: item.row.id,
        line: item.row.line,
      });
    }
  }
  const staged = await downloadVideo(snapshot.videoUrl, videoPathFor(o.stagingDir, item.row), options);
  try {
    const metadata = { sha256: staged.sha256, 'run-id': snapshot.runId, request: item.request, key: encodeURIComponent(item.key) };
    const put = await o.bucket.put(staged.path, rel, metadata, 'video/mp4');
    return {
      on: 'downloaded',
      runId: snapshot.runId,
      path: rel,
      bytes: staged.bytes,
      sha256: staged.sha256,
      seconds: staged.seconds,
      // A bucket object is checked by its size and recorded hash; its time is kept for the record.
      mtimeMs: put.modifiedMs ?? Date.now(),
    };
  } finally {
    await rm(staged.path, { force: true });
  }
}
