import path from 'node:path';
import { parseUsdToMicros } from '../cost.js';
import { ApiError, kindOfStatus } from '../errors.js';
import { redactUrl } from '../http.js';
import type { ImageInfo } from '../manifest/images.js';
import { MODEL_PATH, type KlingV3Input } from '../model/kling-v3.js';
import { apiRequest, isRecord, retryAfterOf, str, type ApiOptions } from './api.js';
import type { Provider, RunMetadata, RunRef, RunSnapshot, RunState, UploadedAsset } from './provider.js';

export const RUNFLOW_BASE_URL = 'https://api.runflow.io';
export const RUNFLOW_CREATE_PATH = `/v1/models/${MODEL_PATH}/runs`;
/** Runflow accepts inline data: URIs up to about 1 MiB; base64 grows bytes by 4/3. */
export const RUNFLOW_MAX_INLINE_BYTES = Math.floor(((1024 * 1024 - 64) * 3) / 4);

const LIST_PAGE_SIZE = 100;
const LIST_MAX_PAGES = 20;

export interface RunflowOptions extends ApiOptions {
  baseUrl: string;
  apiKey: string;
}

const STATES: Record<string, RunState> = {
  queued: 'queued',
  dispatching: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
  cancelled: 'canceled',
};

/** The video URL in the shapes Runflow normalises output to, in the documented order of preference. */
export function findVideoUrl(run: Record<string, unknown>): string | undefined {
  for (const holder of [run.output, run]) {
    if (!isRecord(holder)) continue;
    const outputs = holder.outputs;
    if (Array.isArray(outputs)) {
      const video = outputs.find((o) => isRecord(o) && o.type === 'video' && str(o.url)) as Record<string, unknown> | undefined;
      if (video) return str(video.url);
    }
    const url = (isRecord(holder.video) ? str(holder.video.url) : undefined) ?? str(holder.url) ?? str(holder.output_url);
    if (url) return url;
  }
  return undefined;
}

/** Reads a run object into a snapshot; an unknown status is an error, never "still running". */
export function parseRun(body: unknown): RunSnapshot {
  if (!isRecord(body) || !str(body.id)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered without a run object');
  const runId = body.id as string;
  const status = String(body.status_code ?? body.status ?? '').toLowerCase();
  const state = STATES[status];
  if (!state) throw new ApiError('row', 'UNKNOWN_STATUS', `run ${runId} has status "${status}", which clipmill does not know`);
  const snapshot: RunSnapshot = { runId, state };
  const startedAt = str(body.started_at) ? Date.parse(body.started_at as string) : Number.NaN;
  if (Number.isFinite(startedAt)) snapshot.startedAtMs = startedAt;
  const completedAt = str(body.completed_at) ? Date.parse(body.completed_at as string) : Number.NaN;
  const runMs = typeof body.duration_ms === 'number' ? body.duration_ms : completedAt - startedAt;
  if (Number.isFinite(runMs) && runMs > 0) snapshot.runMs = runMs;
  const cost = typeof body.cost === 'number' ? parseUsdToMicros(body.cost.toFixed(6)) : str(body.cost) ? parseUsdToMicros(body.cost as string) : undefined;
  if (cost !== undefined) snapshot.costMicros = cost;
  if (state === 'succeeded') {
    const url = findVideoUrl(body);
    if (url) snapshot.videoUrl = url;
  }
  if (state === 'failed' || state === 'canceled') {
    const error = isRecord(body.error) ? body.error : {};
    snapshot.failure = {
      code: str(body.failure_code) ?? str(error.code) ?? state.toUpperCase(),
      message: str(body.failure_message) ?? str(error.message) ?? `the run ended as ${state}`,
    };
  }
  return snapshot;
}

/** Turns Runflow's error envelope `{code, message, errors}` into one readable, classified error. */
export function envelopeError(status: number, body: unknown, headers: Record<string, string | string[] | undefined>, what: string, maxRetryAfterMs: number): ApiError {
  const envelope = isRecord(body) ? body : {};
  const code = str(envelope.code) ?? `HTTP_${status}`;
  let message = str(envelope.message) ?? (typeof body === 'string' && body.trim() ? body.trim().slice(0, 200) : `HTTP ${status}`);
  if (Array.isArray(envelope.errors) && envelope.errors.length > 0) {
    const details = envelope.errors.map((e) => (isRecord(e) ? [str(e.field) ?? str(e.loc) ?? '', str(e.message) ?? str(e.msg) ?? ''].filter(Boolean).join(': ') : String(e)));
    message += ` (${details.join('; ')})`;
  }
  const hint = status === 401 ? ' — check RUNFLOW_API_KEY' : status === 402 ? ' — top up the Runflow balance' : status === 403 ? ' — the key may not use this model' : '';
  const retryAfterMs = retryAfterOf(headers, maxRetryAfterMs);
  return new ApiError(kindOfStatus(status), code, `${what}: Runflow ${status} ${code}: ${message}${hint}`, {
    status,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

export class RunflowProvider implements Provider {
  readonly name = 'runflow' as const;
  readonly maxInlineImageBytes = RUNFLOW_MAX_INLINE_BYTES;

  constructor(private readonly options: RunflowOptions) {}

  /** Runflow's three-step upload: declare the asset, PUT the bytes (no auth header), confirm for a signed URL. */
  async uploadImage(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset> {
    const declared = await this.call('POST', '/v1/asset-uploads', { filename: path.basename(image.path), mime_type: image.mime, size_bytes: bytes.byteLength }, signal);
    const assetId = isRecord(declared) ? str(declared.asset_id) : undefined;
    const uploadUrl = isRecord(declared) ? str(declared.upload_url) : undefined;
    if (!assetId || !uploadUrl) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the asset upload without asset_id and upload_url');
    // The upload URL is presigned storage, not the API: no Authorization header, and it does not count against the rate.
    const put = await this.options.http.send({ method: 'PUT', url: uploadUrl, headers: { 'content-type': image.mime }, body: bytes, timeoutMs: this.options.requestTimeoutMs * 4, signal });
    if (put.status < 200 || put.status >= 300) {
      const text = typeof put.body === 'string' ? put.body.slice(0, 200) : JSON.stringify(put.body).slice(0, 200);
      throw new ApiError(put.status >= 500 || put.status === 429 ? 'transient' : 'row', `UPLOAD_${put.status}`, `PUT ${redactUrl(uploadUrl)}: HTTP ${put.status} ${text}`, { status: put.status });
    }
    return this.refreshImage(assetId, signal);
  }

  async refreshImage(assetId: string, signal: AbortSignal): Promise<UploadedAsset> {
    const confirmed = await this.call('POST', `/v1/asset-uploads/${encodeURIComponent(assetId)}/confirmations`, {}, signal);
    const url = isRecord(confirmed) ? str(confirmed.url) : undefined;
    if (!url) throw new ApiError('transient', 'BAD_RESPONSE', `Runflow confirmed asset ${assetId} without a url`);
    return { assetId, url };
  }

  async submit(input: KlingV3Input, metadata: RunMetadata, signal: AbortSignal, waitSignal?: AbortSignal): Promise<RunRef> {
    const run = await this.call('POST', RUNFLOW_CREATE_PATH, { input, metadata }, signal, waitSignal);
    // Only the id matters here: a status clipmill does not know must not lose the id of a run that exists.
    const runId = isRecord(run) ? str(run.id) : undefined;
    if (!runId) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the create without a run id');
    return { runId };
  }

  async getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot> {
    return parseRun(await this.call('GET', `/v1/runs/${encodeURIComponent(run.runId)}`, undefined, signal));
  }

  async findRuns(submitToken: string, signal: AbortSignal): Promise<RunSnapshot[]> {
    const found: RunSnapshot[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < LIST_MAX_PAGES; page++) {
      const query = new URLSearchParams({ q: submitToken, limit: String(LIST_PAGE_SIZE), ...(cursor !== undefined && { next_pq: cursor }) });
      const body = await this.call('GET', `/v1/runs?${query}`, undefined, signal);
      const list = isRecord(body) ? (body.data ?? body.runs ?? body.items) : body;
      if (!Array.isArray(list)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the run list without a list of runs');
      // `q` may match loosely: only an exact metadata match counts.
      for (const run of list) if (isRecord(run) && isRecord(run.metadata) && run.metadata.clipmill_submit === submitToken) found.push(parseRun(run));
      cursor = isRecord(body) ? str(body.next_pq) : undefined;
      if (cursor === undefined) return found;
    }
    throw new ApiError('transient', 'LIST_TOO_LONG', `more than ${LIST_MAX_PAGES} pages of runs match ${submitToken}`);
  }

  private async call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, waitSignal?: AbortSignal): Promise<unknown> {
    const { baseUrl, apiKey } = this.options;
    const url = new URL(path, baseUrl).href;
    const response = await apiRequest(
      this.options,
      {
        method,
        url,
        headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      },
      signal,
      waitSignal,
    );
    if (response.status >= 200 && response.status < 300) return response.body;
    throw envelopeError(response.status, response.body, response.headers, `${method} ${redactUrl(url)}`, this.options.retry.maxDelayMs);
  }
}
