import type { ServerResponse } from 'node:http';
import type { SimulatorContext } from './context.js';
import type { RawCall } from './types.js';

/** Storage answers a bad or expired signature the way S3 does: a 403 with an XML body. */
function denyDownload(res: ServerResponse, message: string): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`;
  res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** Sends the clip in ten pieces spread over `slow_download_ms`, stopping if the client goes away. */
function sendSlowly(res: ServerResponse, clip: Buffer, totalMs: number): void {
  const pieces = 10;
  const size = Math.ceil(clip.length / pieces);
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || i >= pieces) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(clip.subarray(i * size, (i + 1) * size));
    i++;
  }, totalMs / pieces);
}

/** `GET` of a run's presigned video URL: the clip, or (as the fault knobs say) cut short or sent slowly. */
export function serveVideo(sim: SimulatorContext, { res, url }: RawCall): void {
  const id = /^\/__simulator\/files\/([^/]+)\.mp4$/.exec(url.pathname)?.[1] ?? '';
  const run = sim.runs.get(id);
  const expires = Number(url.searchParams.get('expires') ?? 'NaN');
  if (run?.status !== 'succeeded' || url.searchParams.get('signature') !== sim.files.sign(`${id}:${expires}`)) return denyDownload(res, 'Invalid signature');
  if (expires !== 0 && Date.now() > expires) return denyDownload(res, 'Request has expired');
  const clip = sim.files.clipOf(run).bytes;
  if (!clip) return denyDownload(res, 'No such clip');
  sim.stats.downloads++;
  res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clip.length });
  if (sim.random() < sim.options.truncate_rate) {
    sim.stats.truncatedDownloads++;
    res.write(clip.subarray(0, Math.floor(clip.length / 2)));
    setImmediate(() => res.destroy());
    return;
  }
  if (sim.random() < sim.options.slow_download_rate) {
    sim.stats.slowDownloads++;
    return sendSlowly(res, clip, sim.options.slow_download_ms);
  }
  res.end(clip);
}
