import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../infra/log.js';
import { withRetry, type RetryPolicy } from '../infra/retry.js';
import type { ImageInfo } from '../load/images.js';
import { buildKlingInput, type ImageRef, type KlingRequest, type KlingV3Input } from '../model/kling-v3.js';
import { dataUri } from '../providers/api.js';
import type { Provider } from '../providers/provider.js';
import { uploadKey } from '../lifecycle/events.js';
import type { StateStore } from '../state/store.js';

/** Signed asset URLs are short-lived: one older than this is fetched again (`GET /v1/assets/{id}`) before a create uses it. */
const ASSET_URL_FRESH_MS = 10 * 60_000;

type FileRef = Extract<ImageRef, { kind: 'file' }>;

/** The local image files a request refers to (first frame, last frame, element images). */
export function fileImagesOf(request: KlingRequest): FileRef[] {
  const refs: (ImageRef | undefined)[] = [request.image, request.endImage];
  for (const element of request.elements ?? []) if (element.kind === 'images') refs.push(element.frontal, ...element.references);
  return refs.filter((r): r is FileRef => r?.kind === 'file');
}

export interface ImageContext {
  provider: Provider;
  store: StateStore;
  log: Logger;
  images: ReadonlyMap<string, ImageInfo>;
  inlineImages: boolean;
  retry: RetryPolicy;
  signal: AbortSignal;
}

/**
 * Local images as the model will fetch them: uploaded once per content per folder (Runflow's asset
 * flow, fal's storage), their URLs fetched fresh for tonight; inline as data: URIs only when the pipeline opts in.
 */
export class ImageUrls {
  /** Image URLs under way or obtained tonight, by image content, so rows sharing an image wait for one upload. */
  private readonly urls = new Map<string, { url: Promise<string>; atMs: number }>();

  constructor(private readonly ctx: ImageContext) {}

  /** The model's input for a request; built per create attempt, since image URLs are signed and short-lived. */
  async inputFor(request: KlingRequest): Promise<KlingV3Input> {
    const urls = new Map<string, string>();
    for (const ref of fileImagesOf(request)) urls.set(ref.path, await this.urlOf(ref));
    return buildKlingInput(request, (ref) => (ref.kind === 'url' ? ref.url : urls.get(ref.path)!));
  }

  private async urlOf(ref: FileRef): Promise<string> {
    const { images, provider, inlineImages } = this.ctx;
    const info = images.get(ref.path);
    if (!info) throw new Error(`image ${ref.written} was not checked before the run`);
    if (inlineImages && info.bytes <= provider.maxInlineImageBytes) return dataUri(info, await readFile(ref.path));
    const known = this.urls.get(info.sha256);
    if (known && Date.now() - known.atMs < ASSET_URL_FRESH_MS) return known.url;
    const url = this.assetUrl(info);
    this.urls.set(info.sha256, { url, atMs: Date.now() });
    // A failed upload is not remembered: the next row that needs the image tries again.
    url.catch(() => this.urls.delete(info.sha256));
    return url;
  }

  /** The asset's URL: a fresh one for an asset uploaded on an earlier night, else the bytes are sent (and the asset id journaled). */
  private async assetUrl(info: ImageInfo): Promise<string> {
    const { store, provider, log, retry, signal } = this.ctx;
    const key = uploadKey(provider.name, info.sha256);
    const known = store.upload(key);
    if (known) {
      const asset = await withRetry(() => provider.refreshImage(known.assetId, signal), retry, signal);
      if (asset) return asset.url;
      log.warn('upload_gone', `${provider.name} no longer has asset ${known.assetId} (${path.basename(info.path)}); uploading it again`);
    }
    const asset = await withRetry(async () => provider.uploadImage(info, await readFile(info.path), signal), retry, signal);
    await store.append({ type: 'uploaded', key, request: info.sha256, assetId: asset.assetId, provider: provider.name });
    // fal's file_url is its asset id and reads the image: it is not repeated in the log.
    log.info(
      'uploaded',
      `uploaded ${path.basename(info.path)} (${(info.bytes / 1e6).toFixed(1)} MB)${asset.assetId.includes('://') ? '' : ` as asset ${asset.assetId}`}`,
    );
    return asset.url;
  }
}
