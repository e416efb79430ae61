import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { clipName, type ClipLibrary } from './clips.js';
import { readBody, sendText } from './http.js';
import type { SimulatorSettings } from './options.js';
import type { RawCall, SimAsset, SimRun, SimulatorStats } from './types.js';

const ASSET_PATH = /^\/__simulator\/assets\/([^/]+)$/;

/**
 * The simulator's storage: uploaded images (Runflow assets, fal storage files), the clip library the
 * videos come from, and the presigned URLs for both, signed with a secret of this process.
 */
export class FileStore {
  readonly assets = new Map<string, SimAsset>();
  clips: ClipLibrary = new Map();
  /** Set once the server listens: every URL handed out points there. */
  baseUrl = '';
  private readonly urlSecret = randomBytes(16);

  constructor(private readonly options: SimulatorSettings) {}

  sign(text: string): string {
    return createHmac('sha256', this.urlSecret).update(text).digest('hex').slice(0, 32);
  }

  /** A presigned PUT address for an asset's bytes. */
  uploadUrl(id: string): string {
    return `${this.baseUrl}/__simulator/uploads/${id}?signature=${this.sign(`upload:${id}`)}`;
  }

  /** A presigned GET address for an asset's bytes; Runflow's expire after an hour, fal's CDN files do not. */
  assetUrl(id: string, expiresAt = 0): string {
    return `${this.baseUrl}/__simulator/assets/${id}?expires=${expiresAt}&signature=${this.sign(`asset:${id}:${expiresAt}`)}`;
  }

  /** The bytes behind a signed asset URL, or why the model could not fetch them. */
  assetBytes(url: string): Buffer | string {
    const parsed = new URL(url);
    const id = ASSET_PATH.exec(parsed.pathname)?.[1] ?? '';
    const expires = Number(parsed.searchParams.get('expires'));
    const asset = this.assets.get(id);
    if (!asset?.bytes || parsed.searchParams.get('signature') !== this.sign(`asset:${id}:${expires}`)) return 'could not be downloaded (HTTP 403)';
    if (asset.protocol === 'runflow' && !asset.confirmed) return 'could not be downloaded (the asset was never confirmed)';
    if (expires !== 0 && Date.now() > expires) return 'could not be downloaded (the signed URL has expired)';
    return asset.bytes;
  }

  /** Reads an image URL the way the model's fetcher would: our own uploads and data: URIs are read; .invalid hosts are unreachable. */
  readImage(url: string): Buffer | string | undefined {
    if (url.startsWith('data:')) {
      const m = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url);
      return m ? Buffer.from(m[1] ?? '', 'base64') : 'is not a base64 data:image URI';
    }
    if (this.baseUrl && url.startsWith(`${this.baseUrl}/__simulator/assets/`)) return this.assetBytes(url);
    // No network here: hosts under the reserved .invalid TLD stand for images the model cannot fetch.
    if (new URL(url).hostname.endsWith('.invalid')) return 'could not be downloaded (HTTP 404)';
    return undefined;
  }

  /** The video file's name in the clip library: its duration, audio and the start image's shape. */
  clipOf(run: SimRun): { name: string; bytes: Buffer | undefined } {
    const name = clipName(run.seconds, run.audio, run.aspect);
    return { name, bytes: this.clips.get(name) };
  }

  /** The presigned GET address of a run's video; it expires after `url_ttl_ms` when that is set. */
  videoUrl(run: SimRun): string {
    const expires = this.options.url_ttl_ms > 0 ? Date.now() + this.options.url_ttl_ms : 0;
    return `${this.baseUrl}/__simulator/files/${run.id}.mp4?expires=${expires}&signature=${this.sign(`${run.id}:${expires}`)}`;
  }
}

/** Why storage refuses an upload (status, text), checked in the order a real bucket checks. */
function uploadRefusal(req: IncomingMessage, bytes: Buffer, asset: SimAsset | undefined, signed: boolean): [number, string] | undefined {
  if (req.method !== 'PUT') return [405, 'PUT only'];
  if (!asset || !signed) return [403, 'Invalid signature'];
  if (req.headers.authorization) return [400, 'Only one auth mechanism allowed: the URL is already signed'];
  if (req.headers['content-type'] !== asset.mime) return [400, `Content-Type must be ${asset.mime}`];
  if (asset.size !== undefined && bytes.length !== asset.size) return [400, `Expected ${asset.size} bytes, got ${bytes.length}`];
  return undefined;
}

/** The presigned PUT: storage, not the API, so an Authorization header is refused as it would be there. */
export async function receiveUpload(files: FileStore, stats: SimulatorStats, { req, res, url }: RawCall): Promise<void> {
  const id = /^\/__simulator\/uploads\/([^/]+)$/.exec(url.pathname)?.[1] ?? '';
  const asset = files.assets.get(id);
  const bytes = await readBody(req);
  const refusal = uploadRefusal(req, bytes, asset, url.searchParams.get('signature') === files.sign(`upload:${id}`));
  if (refusal) {
    sendText(res, refusal[0], refusal[1]);
    return;
  }
  asset!.bytes = bytes; // a missing asset was refused above
  stats.uploads++;
  res.writeHead(200);
  res.end();
}

/** `GET` (or `HEAD`) of a signed asset URL: the bytes, or a 403 saying why not. */
export function serveAsset(files: FileStore, { res, url }: RawCall): void {
  const found = files.assetBytes(url.href);
  if (typeof found === 'string') {
    sendText(res, 403, found);
    return;
  }
  const id = /\/__simulator\/assets\/([^/?]+)/.exec(url.pathname)?.[1] ?? '';
  res.writeHead(200, { 'content-length': found.length, 'content-type': files.assets.get(id)?.mime ?? 'application/octet-stream' });
  res.end(found);
}
