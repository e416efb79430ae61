import path from 'node:path';
import { formatUsd, parseUsdToMicros } from '../money/cost.js';
import { ApiError, kindOfStatus } from '../infra/errors.js';
import { redactText, redactUrl, type HttpResponse } from '../infra/http.js';
import type { ImageInfo } from '../load/images.js';
import { MODEL_PATH, type KlingV3Input } from '../model/kling-v3.js';
import { withRetry } from '../infra/retry.js';
import { apiRequest, isRecord, putPresigned, retryAfterOf, str, type ApiOptions, type SendControl } from './api.js';
import { clockCheck } from './checks.js';
import type { AccountCheck, ListedRun, Provider, RunRef, RunSnapshot, RunState, Submission, UploadedAsset } from './provider.js';

export const RUNFLOW_BASE_URL = 'https://api.runflow.io';
export const RUNFLOW_CREATE_PATH = `/v1/models/${MODEL_PATH}/runs`;
/** Runflow documents inline data: URIs under about 1 MiB as fine; base64 grows bytes by 4/3. */
export const RUNFLOW_MAX_INLINE_BYTES = Math.floor(((1024 * 1024 - 64) * 3) / 4);

const LIST_PAGE_SIZE = 100;
/** A filter on a unique client_ref matches one run: this many pages means the list is not what we think. */
const LIST_MAX_PAGES = 50;

export interface RunflowOptions extends ApiOptions {
  baseUrl: string;
  apiKey: string;
}

const STATES: Record<string, RunState> = {
  queued: 'queued',
  dispatching: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  // Meant for batches; a single-output run in it is read by its outputs like a success.
  partial_succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
  cancelled: 'canceled',
};

/** The run-list filter Runflow's own templates use: an exact match on the create's client_ref. */
export function clientRefQuery(clientRef: string): string {
  return `client_ref.EQ:'${clientRef}'`;
}

const VIDEO_FILE = /\.(mp4|mov|m4v|webm|mkv)$/i;

/**
 * The video in Runflow's normalised output (`output.outputs[]`): the entry of type `video`, or, when
 * entries carry no type, the one whose content type or file name is a video. Nothing else is guessed at.
 */
export function findVideoUrl(output: unknown): string | undefined {
  if (!isRecord(output) || !Array.isArray(output.outputs)) return undefined;
  const entries = output.outputs.filter(isRecord).filter((e) => str(e.url));
  const typed = entries.find((e) => e.type === 'video');
  if (typed) return str(typed.url);
  const untyped = entries.find((e) => {
    if (e.type !== undefined && e.type !== null) return false;
    const mime = str(e.content_type) ?? str(e.mime_type) ?? '';
    const name = str(e.file_name) ?? str(e.name) ?? '';
    return mime.startsWith('video/') || VIDEO_FILE.test(name);
  });
  return untyped ? str(untyped.url) : undefined;
}

/** Reads a run object into a snapshot; an unknown status is an error, never "still running". */
export function parseRun(body: unknown): RunSnapshot {
  if (!isRecord(body) || !str(body.id)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered without a run object');
  const runId = body.id as string;
  const status = String(body.status_code ?? '').toLowerCase();
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
    snapshot.rawOutput = body.output ?? null;
    const url = findVideoUrl(body.output);
    if (url) snapshot.videoUrl = url;
  }
  if (state === 'failed' || state === 'canceled') {
    const error = isRecord(body.error) ? body.error : {};
    snapshot.failure = {
      code: str(body.failure_code) ?? str(error.code) ?? state.toUpperCase(),
      // A provider's message may quote a presigned input URL: it reaches the journal and the report without its signature.
      message: redactText(str(body.failure_message) ?? str(error.message) ?? `the run ended as ${state}`),
    };
  }
  return snapshot;
}

/**
 * A list cursor: `next_pq` (opaque, taken as it is), or the sibling spelling `next`, which may be a link
 * carrying `pq`; a link without one cannot be followed, so the list cannot be read to its end.
 */
export function nextCursor(body: Record<string, unknown>): string | undefined {
  const nextPq = str(body.next_pq);
  if (nextPq !== undefined) return nextPq;
  const next = str(body.next);
  if (next === undefined || !/^(https?:\/\/|\/v1\/)/.test(next)) return next;
  const pq = new URL(next, 'http://cursor.invalid').searchParams.get('pq');
  if (!pq) throw new ApiError('row', 'LIST_CURSOR_UNREADABLE', 'Runflow\'s run list gave a next link without a pq cursor: the list cannot be read to its end');
  return pq;
}

/** Whether a listed run is the one created with `clientRef`: the list is filtered by it, so only a different client_ref rules a run out. */
function listedFor(run: Record<string, unknown>, clientRef: string): boolean {
  if (typeof run.client_ref === 'string') return run.client_ref === clientRef;
  if (isRecord(run.metadata) && typeof run.metadata.clipmill_submit === 'string') return run.metadata.clipmill_submit === clientRef;
  return true;
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
  return new ApiError(kindOfStatus(status), code, `${what}: Runflow ${status} ${code}: ${redactText(message)}${hint}`, {
    status,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/** A balance in whatever documented-looking field it comes: dollars as a number or a decimal string. */
function balanceMicros(body: unknown): number | undefined {
  if (!isRecord(body)) return undefined;
  for (const value of [body.balance, body.available_balance, body.available, body.credits, body.amount]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1e6);
    if (typeof value === 'string') {
      const micros = parseUsdToMicros(value);
      if (micros !== undefined) return micros;
    }
  }
  return undefined;
}

export class RunflowProvider implements Provider {
  readonly name = 'runflow' as const;
  readonly maxInlineImageBytes = RUNFLOW_MAX_INLINE_BYTES;

  constructor(private readonly options: RunflowOptions) {}

  /** Runflow's three-step upload: declare the asset, PUT the bytes (no auth header), confirm once (201, the asset record). */
  async uploadImage(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset> {
    const declared = await this.call('POST', '/v1/asset-uploads', { filename: path.basename(image.path), mime_type: image.mime, size_bytes: bytes.byteLength }, signal);
    const assetId = isRecord(declared) ? str(declared.asset_id) : undefined;
    const uploadUrl = isRecord(declared) ? str(declared.upload_url) : undefined;
    if (!assetId || !uploadUrl) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the asset upload without asset_id and upload_url');
    await putPresigned(this.options, uploadUrl, image.mime, bytes, signal);
    // Retried on its own, so a 429 here does not send the bytes again.
    const confirmed = await withRetry(() => this.confirm(assetId, signal), this.options.retry, signal);
    return this.assetOf(assetId, confirmed);
  }

  /** The confirmation creates the asset record, once: if an earlier answer was lost, the second is refused (how is not documented) and the asset is read instead. */
  private async confirm(assetId: string, signal: AbortSignal): Promise<unknown> {
    try {
      return await this.call('POST', `/v1/asset-uploads/${encodeURIComponent(assetId)}/confirmations`, {}, signal);
    } catch (error) {
      if (!(error instanceof ApiError && (error.status === 400 || error.status === 409 || error.status === 422))) throw error;
      return this.call('GET', `/v1/assets/${encodeURIComponent(assetId)}`, undefined, signal);
    }
  }

  /** `GET /v1/assets/{id}`: the same asset with a freshly signed URL. */
  async refreshImage(assetId: string, signal: AbortSignal): Promise<UploadedAsset | undefined> {
    try {
      return this.assetOf(assetId, await this.call('GET', `/v1/assets/${encodeURIComponent(assetId)}`, undefined, signal));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  private assetOf(assetId: string, body: unknown): UploadedAsset {
    const url = isRecord(body) ? str(body.url) : undefined;
    if (!url) throw new ApiError('transient', 'BAD_RESPONSE', `Runflow answered for asset ${assetId} without a url`);
    return { assetId, url };
  }

  async submit(input: KlingV3Input, submission: Submission, signal: AbortSignal, control: SendControl): Promise<RunRef> {
    const run = await this.call('POST', RUNFLOW_CREATE_PATH, { input, client_ref: submission.clientRef, metadata: submission.metadata }, signal, control);
    // Only the id matters here: a status clipmill does not know must not lose the id of a run that exists.
    const runId = isRecord(run) ? str(run.id) : undefined;
    if (!runId) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the create without a run id');
    return { runId };
  }

  async getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot> {
    return parseRun(await this.call('GET', `/v1/runs/${encodeURIComponent(run.runId)}`, undefined, signal));
  }

  /** Every page of `GET /v1/runs?q=client_ref.EQ:'<token>'`, following `pq` until the list says there is no more. */
  async findRuns(clientRef: string, signal: AbortSignal): Promise<string[]> {
    const found: string[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < LIST_MAX_PAGES; page++) {
      const query = new URLSearchParams({ q: clientRefQuery(clientRef), limit: String(LIST_PAGE_SIZE) });
      if (cursor !== undefined) query.set('pq', cursor);
      let body: unknown;
      try {
        body = await this.call('GET', `/v1/runs?${query}`, undefined, signal);
      } catch (error) {
        if (error instanceof ApiError && (error.status === 400 || error.status === 422)) {
          throw new ApiError('row', 'LIST_QUERY_REFUSED', `Runflow refused the run-list query for client_ref ${clientRef} (${error.message}); without it a lost create cannot be looked up`, { status: error.status });
        }
        throw error;
      }
      const items = isRecord(body) ? body.items : undefined;
      if (!isRecord(body) || !Array.isArray(items)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the run list without `items`');
      for (const run of items) if (isRecord(run) && str(run.id) && listedFor(run, clientRef)) found.push(run.id as string);
      cursor = nextCursor(body);
      if (cursor === undefined) return found;
      // Reading again would not help: "cannot tell" at once (row kind, not retried).
      if (seen.has(cursor)) throw new ApiError('row', 'LIST_CURSOR_LOOP', `Runflow's run list for client_ref ${clientRef} gave the same cursor twice`);
      seen.add(cursor);
    }
    throw new ApiError('row', 'LIST_TOO_LONG', `more than ${LIST_MAX_PAGES} pages of runs match client_ref ${clientRef}`);
  }

  /** `GET /v1/runs?sort_by=created_at:desc`, page after page until the runs are older than `sinceMs`. */
  async listRunsSince(sinceMs: number, signal: AbortSignal): Promise<ListedRun[]> {
    const runs: ListedRun[] = [];
    const seen = new Set<string>();
    let cursor: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const query = new URLSearchParams({ limit: '500', sort_by: 'created_at:desc' });
      if (cursor !== undefined) query.set('pq', cursor);
      const body = await this.call('GET', `/v1/runs?${query}`, undefined, signal);
      if (!isRecord(body) || !Array.isArray(body.items)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the run list without `items`');
      let older = false;
      for (const item of body.items) {
        if (!isRecord(item) || !str(item.id)) continue;
        const createdAt = str(item.created_at);
        if (createdAt !== undefined && Date.parse(createdAt) < sinceMs) {
          older = true;
          continue;
        }
        const cost = typeof item.cost === 'number' ? parseUsdToMicros(item.cost.toFixed(6)) : str(item.cost) ? parseUsdToMicros(item.cost as string) : undefined;
        runs.push({ runId: item.id as string, clientRef: str(item.client_ref), status: String(item.status_code ?? ''), costMicros: cost, createdAt });
      }
      cursor = nextCursor(body);
      if (older || cursor === undefined) return runs;
      if (seen.has(cursor)) throw new ApiError('row', 'LIST_CURSOR_LOOP', 'Runflow\'s run list gave the same cursor twice');
      seen.add(cursor);
    }
    throw new ApiError('row', 'LIST_TOO_LONG', 'more than 1000 pages of runs in the period');
  }

  async balance(signal: AbortSignal): Promise<number | undefined> {
    return balanceMicros(await this.call('GET', '/v1/billing/balance', undefined, signal));
  }

  /** Health, the key and balance, the run list in its documented shape with the filter clipmill relies on, and the clock. */
  async checkAccount(signal: AbortSignal, estimateMicros: number): Promise<AccountCheck[]> {
    const checks: AccountCheck[] = [];
    const answers: HttpResponse[] = [];
    const get = async (name: string, url: string, read: (body: unknown) => AccountCheck) => {
      try {
        const response = await this.raw('GET', url, undefined, signal);
        answers.push(response);
        if (response.status >= 200 && response.status < 300) checks.push(read(response.body));
        else checks.push({ name, status: 'fail', detail: envelopeError(response.status, response.body, response.headers, `GET ${url.split('?')[0]}`, 0).message });
      } catch (error) {
        checks.push({ name, status: 'fail', detail: error instanceof Error ? error.message : String(error) });
      }
    };
    await get('health', '/v1/health', () => ({ name: 'health', status: 'ok', detail: 'Runflow answers' }));
    await get('key and balance', '/v1/billing/balance', (body) => {
      const balance = balanceMicros(body);
      if (balance === undefined) return { name: 'key and balance', status: 'warn', detail: `the key is accepted; the balance answer has no readable amount (fields: ${isRecord(body) ? Object.keys(body).join(', ') : typeof body})` };
      const enough = balance >= estimateMicros;
      return { name: 'key and balance', status: enough ? 'ok' : 'fail', detail: `the key is accepted; balance ${formatUsd(balance)}${enough ? ' covers' : ' does not cover'} tonight's estimate of ${formatUsd(estimateMicros)}` };
    });
    const probe = `clipmill-doctor-${Date.now().toString(36)}`;
    await get('run list', `/v1/runs?${new URLSearchParams({ q: clientRefQuery(probe), limit: '1' })}`, (body) =>
      isRecord(body) && Array.isArray(body.items)
        ? { name: 'run list', status: 'ok', detail: 'the client_ref filter is accepted and answers with `items`: a lost create can be looked up' }
        : { name: 'run list', status: 'fail', detail: 'the run list answered without `items`: lost creates could not be looked up' },
    );
    checks.push(clockCheck(answers));
    return checks;
  }

  private async raw(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, control: SendControl = {}): Promise<HttpResponse> {
    const { baseUrl, apiKey } = this.options;
    return apiRequest(
      this.options,
      {
        method,
        url: new URL(path, baseUrl).href,
        headers: { authorization: `Bearer ${apiKey}`, accept: 'application/json', ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      },
      signal,
      control,
    );
  }

  private async call(method: 'GET' | 'POST', path: string, body: unknown, signal: AbortSignal, control: SendControl = {}): Promise<unknown> {
    const response = await this.raw(method, path, body, signal, control);
    if (response.status >= 200 && response.status < 300) return response.body;
    throw envelopeError(response.status, response.body, response.headers, `${method} ${redactUrl(new URL(path, this.options.baseUrl).href)}`, this.options.retry.maxDelayMs);
  }
}
