import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Sidecar } from '../../execute/download.js';
import { downloadedSha256s, foldEvents, type JournalEvent, type RowState } from '../../lifecycle/events.js';
import { sidecarPathFor } from '../journal.js';
import { sha256Of } from '../outputs.js';
import type { RebuiltRow } from './rebuilt-row.js';
import { scanOutputFolder, type FolderContents, type Video } from './scan-folder.js';
import { readSidecar, type ReadSidecar } from './sidecar-file.js';
import { rowFromSidecar } from './sidecar-events.js';

/** What the sidecars beside the videos prove that the journal does not record. */
export interface SidecarRecovery {
  /** One row per video (or per sidecar whose video is gone) whose events the journal lacks. */
  rows: RebuiltRow[];
  /** Videos (relative paths) the journal already records. */
  alreadyKnown: string[];
  /** Why each unrecovered video could not be recovered, one line each. */
  problems: string[];
  /** Videos (relative paths) whose row could not be recovered. */
  unrecovered: string[];
}

/** What the journal already knows, to leave out what it records. */
interface Known {
  states: ReadonlyMap<string, RowState>;
  sha256s: ReadonlySet<string>;
  now: Date;
}

/** The videos' outcomes, and the hashes of every video on disk (a sidecar of one of them is not a lost video's). */
type VideoRecovery = SidecarRecovery & { videoSha256s: Set<string> };

type VideoOutcome = { kind: 'known' } | { kind: 'unrecovered'; problem: string } | { kind: 'rebuilt'; row: RebuiltRow };

/** A video's sidecar when it can rebuild the video's row, else why not (none, unreadable, another file's or another row's). */
export function checkVideoSidecar(sidecar: ReadSidecar | undefined, video: { rel: string; sha256: string; bytes: number }): ReadSidecar {
  if (sidecar === undefined) return { problem: 'no sidecar' };
  if ('problem' in sidecar) return sidecar;
  if (sidecar.sha256 !== video.sha256 || sidecar.bytes !== video.bytes) return { problem: 'its sidecar does not match the file (sha256 or size differ)' };
  if (`${sidecar.key}.mp4` !== video.rel) return { problem: `its sidecar names another row (${sidecar.key})` };
  return sidecar;
}

/** One video: already in the journal, its row rebuilt from its sidecar, or why it cannot be. */
async function recoverVideo(video: Video & { sha256: string; bytes: number }, known: Known): Promise<VideoOutcome> {
  if (known.sha256s.has(video.sha256)) return { kind: 'known' };
  const sidecar = checkVideoSidecar(await readSidecar(sidecarPathFor(video.file)), video);
  if ('problem' in sidecar) return { kind: 'unrecovered', problem: sidecar.problem };
  const state = known.states.get(sidecar.key);
  if (state?.request === sidecar.request && state.status === 'downloaded') return { kind: 'known' };
  return { kind: 'rebuilt', row: rowFromSidecar(sidecar, state, { kind: 'video', rel: video.rel, runId: sidecar.run_id }, known.now) };
}

/** Every video's outcome, gathered; also the hashes of all videos on disk. */
async function recoverVideos(videos: readonly Video[], known: Known): Promise<VideoRecovery> {
  const found: VideoRecovery = { rows: [], alreadyKnown: [], problems: [], unrecovered: [], videoSha256s: new Set() };
  for (const video of videos) {
    const info = await stat(video.file);
    const sha256 = await sha256Of(video.file);
    found.videoSha256s.add(sha256);
    const outcome = await recoverVideo({ ...video, sha256, bytes: info.size }, known);
    if (outcome.kind === 'known') found.alreadyKnown.push(video.rel);
    else if (outcome.kind === 'rebuilt') found.rows.push(outcome.row);
    else {
      found.problems.push(`${video.rel}: ${outcome.problem}, and the journal does not record this video`);
      found.unrecovered.push(video.rel);
    }
  }
  return found;
}

/** Whether a sidecar whose video is gone proves a paid run the journal and the other rows do not already hold. */
function provesUnrecordedRun(sidecar: Sidecar, known: Known, videoSha256s: ReadonlySet<string>, rows: readonly RebuiltRow[]): boolean {
  if (videoSha256s.has(sidecar.sha256) || known.sha256s.has(sidecar.sha256)) return false;
  const state = known.states.get(sidecar.key);
  if (state?.request === sidecar.request && state.runId === sidecar.run_id) return false;
  return !rows.some((row) => row.key === sidecar.key);
}

/** A sidecar whose video is gone still proves a paid run: the next run downloads it again from that run. */
async function recoverPaidRuns(outDir: string, { videos, sidecars }: FolderContents, known: Known, found: VideoRecovery): Promise<RebuiltRow[]> {
  const rows = [...found.rows];
  for (const rel of sidecars) {
    const videoRel = rel.slice(0, -'.json'.length);
    if (videos.some((v) => v.rel === videoRel)) continue;
    const sidecar = await readSidecar(path.join(outDir, rel));
    if (sidecar === undefined || 'problem' in sidecar || !provesUnrecordedRun(sidecar, known, found.videoSha256s, rows)) continue;
    rows.push(rowFromSidecar(sidecar, known.states.get(sidecar.key), { kind: 'paid-run', videoRel, runId: sidecar.run_id }, known.now));
  }
  return rows;
}

/** What the sidecars prove, row by row, that the journal's events do not: one row per video, or per sidecar whose video is gone. */
export async function recoverFromSidecars(outDir: string, journalEvents: readonly JournalEvent[], now: Date): Promise<SidecarRecovery> {
  const known: Known = {
    states: foldEvents(journalEvents),
    sha256s: new Set(journalEvents.flatMap(downloadedSha256s)),
    now,
  };
  const folder = await scanOutputFolder(outDir);
  const found = await recoverVideos(folder.videos, known);
  const rows = await recoverPaidRuns(outDir, folder, known, found);
  return { rows, alreadyKnown: found.alreadyKnown, problems: found.problems, unrecovered: found.unrecovered };
}
