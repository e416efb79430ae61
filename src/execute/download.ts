import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ApiError, kindOfStatus } from '../infra/errors.js';
import { redactUrl, type HttpClient } from '../infra/http.js';
import { isDiskFull, JournalWriteError } from '../state/disk-write.js';
import { sidecarPathFor } from '../state/journal.js';
import { Mp4Inspector } from '../infra/mp4.js';
import { linkedSignal } from '../infra/signals.js';

export interface DownloadedVideo {
  path: string;
  bytes: number;
  sha256: string;
  seconds: number;
  /** Its modification time once in place: with the size, what later runs check instead of reading it again. */
  mtimeMs: number;
}

export interface DownloadOptions {
  http: HttpClient;
  signal: AbortSignal;
  /** Give up when no byte arrives for this long… */
  idleTimeoutMs: number;
  /** …or when the whole download takes longer than this. */
  deadlineMs: number;
  /** The most bytes the video may have (a lying Content-Length or an endless body must not fill the disk). */
  maxBytes: number;
  /** When given, `<video>.json` is written beside the video once it is in place: what `clipmill repair` rebuilds a journal from. */
  sidecar?: SidecarFacts;
}

/** What the caller knows of the row (the download adds the file's facts). No URL: a presigned one is a credential. */
export interface SidecarFacts {
  key: string;
  request: string;
  run_id: string;
  cost_micros?: number | undefined;
  provider?: string | undefined;
}

/** A video's sidecar as written: enough to rebuild its row's `downloaded` state without the journal. */
export interface Sidecar extends SidecarFacts {
  sha256: string;
  bytes: number;
  seconds: number;
  /** The video's modification time when it was put in place (absent in sidecars of older versions). */
  mtime_ms?: number;
  downloaded_at: string;
}

/** Writes the sidecar beside the video (temporary file + fsync + rename); any failure stops the run like a journal write. */
async function writeSidecar(video: DownloadedVideo, facts: SidecarFacts): Promise<void> {
  const file = sidecarPathFor(video.path);
  const sidecar: Sidecar = {
    run_id: facts.run_id,
    request: facts.request,
    key: facts.key,
    sha256: video.sha256,
    bytes: video.bytes,
    seconds: video.seconds,
    mtime_ms: video.mtimeMs,
    cost_micros: facts.cost_micros,
    provider: facts.provider,
    downloaded_at: new Date().toISOString(),
  };
  const temporary = temporaryPathFor(file);
  try {
    await writeFile(temporary, `${JSON.stringify(sidecar, null, 2)}\n`, { flush: true });
    await rename(temporary, file);
    await syncDirectory(path.dirname(file));
  } catch (error) {
    await rm(temporary, { force: true });
    throw new JournalWriteError(file, error, 'the video sidecar');
  }
}

/** Pure: a generous ceiling for a clip of this many seconds (1080p H.264 is a few MB a second; this allows ten). */
export function maxVideoBytes(seconds: number): number {
  return (16 + 10 * seconds) * 1024 * 1024;
}

/** The temporary name a download streams to, beside its final name (so the rename is atomic). */
export function temporaryPathFor(finalPath: string): string {
  return path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.${randomBytes(4).toString('hex')}.part`);
}

export const TEMPORARY_FILE_PATTERN = /^\..+\.[0-9a-f]{8}\.part$/;

type Response = Awaited<ReturnType<HttpClient['open']>>;

/** The answer's status and announced length, checked before a byte is written: a refused URL has usually expired. */
async function checkResponse(response: Response, what: string, maxBytes: number): Promise<number | undefined> {
  if (response.statusCode !== 200) {
    const text = (await response.body.text().catch(() => '')).slice(0, 200).replace(/\s+/g, ' ');
    // A presigned URL that is refused has usually expired: the caller fetches the run again for a fresh one.
    const code = [401, 403, 404, 410].includes(response.statusCode) ? 'URL_REFUSED' : `HTTP_${response.statusCode}`;
    throw new ApiError(code === 'URL_REFUSED' ? 'row' : kindOfStatus(response.statusCode), code, `${what}: HTTP ${response.statusCode} ${text}`.trim(), {
      status: response.statusCode,
    });
  }
  const lengthHeader = response.headers['content-length'];
  const expected = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (expected !== undefined && expected > maxBytes) {
    await response.body.dump().catch(() => {});
    throw new ApiError('row', 'TOO_LARGE', `${what}: announces ${expected} bytes, more than the ${maxBytes} a clip this long may have`);
  }
  return expected;
}

/** What streaming a body found: its size and hash, whether it stalled or ran long, and the MP4 facts. */
interface Streamed {
  bytes: number;
  hash: ReturnType<typeof createHash>;
  inspector: Mp4Inspector;
  tooLarge: boolean;
  idle: AbortController;
  deadline: AbortSignal;
}

/** Streams the body into an open file, hashing and inspecting as it goes, within the idle timeout, the deadline and the size cap. */
async function streamBody(body: Response['body'], file: FileHandle, options: DownloadOptions, streamed: Streamed): Promise<void> {
  const { signal, idleTimeoutMs, maxBytes } = options;
  let idleTimer = setTimeout(() => streamed.idle.abort(), idleTimeoutMs);
  const link = linkedSignal(signal, streamed.idle.signal, streamed.deadline);
  try {
    await pipeline(
      body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => streamed.idle.abort(), idleTimeoutMs);
          streamed.bytes += chunk.length;
          if (streamed.bytes > maxBytes) {
            streamed.tooLarge = true;
            throw new Error('too large');
          }
          streamed.hash.update(chunk);
          streamed.inspector.push(chunk);
          yield chunk;
        }
      },
      file.createWriteStream(),
      { signal: link.signal },
    );
  } finally {
    clearTimeout(idleTimer);
    link.unlink();
  }
}

/** Makes the temporary file durable, then renames it into place (and makes the rename durable). */
export async function commitFile(temporary: string, finalPath: string): Promise<void> {
  const handle = await open(temporary, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, finalPath);
  await syncDirectory(path.dirname(finalPath));
}

/** Why a download failed, as the rules read it: a full disk stops the run; a stall, a deadline or a cut is worth retrying. */
function downloadFailure(error: unknown, finalPath: string, what: string, options: DownloadOptions, streamed: Streamed): unknown {
  const { signal, idleTimeoutMs, deadlineMs, maxBytes } = options;
  if (error instanceof JournalWriteError) return error;
  if (signal.aborted) return signal.reason ?? error;
  // A full disk is not the network's fault and no retry helps: the run stops, as when the journal cannot be written.
  if (isDiskFull(error)) return new JournalWriteError(finalPath, error, 'the video');
  if (streamed.tooLarge) return new ApiError('row', 'TOO_LARGE', `${what}: more than ${maxBytes} bytes, more than a clip this long may have`, { cause: error });
  if (streamed.idle.signal.aborted) return new ApiError('transient', 'TIMEOUT', `${what}: no data for ${idleTimeoutMs} ms`, { cause: error });
  if (streamed.deadline.aborted)
    return new ApiError('transient', 'TIMEOUT', `${what}: not finished within ${deadlineMs} ms (download_timeout)`, { cause: error });
  // Anything else broke the stream itself: the transport says what it was.
  return error instanceof ApiError ? error : undefined;
}

/**
 * Streams a video to a temporary file, checks it (HTTP status, length, MP4 structure), then renames
 * it into place: a partial or bogus file never sits under the final name.
 */
export async function downloadVideo(url: string, finalPath: string, options: DownloadOptions): Promise<DownloadedVideo> {
  const { http, signal, idleTimeoutMs } = options;
  await mkdir(path.dirname(finalPath), { recursive: true });
  const what = `download ${redactUrl(url)}`;
  const req = { method: 'GET' as const, url, timeoutMs: idleTimeoutMs, signal };
  const response = await http.open(req);
  const expected = await checkResponse(response, what, options.maxBytes);
  const temporary = temporaryPathFor(finalPath);
  const streamed: Streamed = {
    bytes: 0,
    hash: createHash('sha256'),
    inspector: new Mp4Inspector(),
    tooLarge: false,
    idle: new AbortController(),
    deadline: AbortSignal.timeout(options.deadlineMs),
  };
  // The file is opened before the stream starts, and closed before it is removed: a stream still opening it cannot recreate it after the cleanup.
  let file: FileHandle | undefined;
  try {
    file = await open(temporary, 'w');
    await streamBody(response.body, file, options, streamed);
    if (expected !== undefined && streamed.bytes !== expected)
      throw new ApiError('transient', 'TRUNCATED', `${what}: got ${streamed.bytes} of ${expected} bytes`);
    const facts = streamed.inspector.finish();
    if ('problem' in facts) throw new ApiError('transient', 'NOT_A_VIDEO', `${what}: ${facts.problem}`);
    file = undefined; // the stream closed it at its end
    await commitFile(temporary, finalPath);
    const { mtimeMs } = await stat(finalPath);
    const video = {
      path: finalPath,
      bytes: streamed.bytes,
      sha256: streamed.hash.digest('hex'),
      seconds: Math.round(facts.durationSeconds * 1000) / 1000,
      mtimeMs,
    };
    if (options.sidecar) await writeSidecar(video, options.sidecar);
    return video;
  } catch (error) {
    // A body never read (the file could not be opened) would hold its socket and its link to the night's signal.
    if (!response.body.destroyed) response.body.destroy();
    await file?.close().catch(() => {});
    await rm(temporary, { force: true });
    throw downloadFailure(error, finalPath, what, options, streamed) ?? http.streamError(error, req);
  }
}

/** Makes a rename durable: without it a crash can forget the new directory entry. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
