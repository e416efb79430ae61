import path from 'node:path';
import { formatUsd } from '../money/cost.js';
import { ApiError } from '../infra/errors.js';
import { redactUrl, type HttpResponse } from '../infra/http.js';
import type { ImageInfo } from '../load/images.js';
import { MODEL_PATH, type KlingV3Input } from '../model/kling-v3.js';
import { withRetry } from '../infra/retry.js';
import { apiRequest, isRecord, putPresigned, str, type ApiOptions, type SendControl } from './api.js';
import { clockCheck } from './checks.js';
import type { AccountCheck, ListedRun, Provider, RunRef, RunSnapshot, Submission, UploadedAsset } from './provider.js';
import { balanceMicros, clientRefQuery, envelopeError, listedFor, listedRunOf, parseRun, readListPage } from './runflow-parse.js';

export { clientRefQuery, envelopeError, findVideoUrl, nextCursor, parseRun } from './runflow-parse.js';

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

export class RunflowProvider implements Provider {
  readonly name = 'runflow' as const;
  readonly maxInlineImageBytes = RUNFLOW_MAX_INLINE_BYTES;

  constructor(private readonly options: RunflowOptions) {}

  /** Runflow's three-step upload: declare the asset, PUT the bytes (no auth header), confirm once (201, the asset record). */
  async uploadImage(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset> {
    const declared = await this.call(
      'POST',
      '/v1/asset-uploads',
      { filename: path.basename(image.path), mime_type: image.mime, size_bytes: bytes.byteLength },
      signal,
    );
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
          throw new ApiError(
            'row',
            'LIST_QUERY_REFUSED',
            `Runflow refused the run-list query for client_ref ${clientRef} (${error.message}); without it a lost create cannot be looked up`,
            { status: error.status, cause: error },
          );
        }
        throw error;
      }
      const listed = readListPage(body);
      for (const run of listed.items) if (isRecord(run) && str(run.id) && listedFor(run, clientRef)) found.push(run.id as string);
      cursor = listed.cursor;
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
      const listed = readListPage(body);
      let older = false;
      for (const item of listed.items) {
        if (!isRecord(item) || !str(item.id)) continue;
        const createdAt = str(item.created_at);
        if (createdAt !== undefined && Date.parse(createdAt) < sinceMs) {
          older = true;
          continue;
        }
        runs.push(listedRunOf(item));
      }
      cursor = listed.cursor;
      if (older || cursor === undefined) return runs;
      if (seen.has(cursor)) throw new ApiError('row', 'LIST_CURSOR_LOOP', "Runflow's run list gave the same cursor twice");
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
        else
          checks.push({ name, status: 'fail', detail: envelopeError(response.status, response.body, response.headers, `GET ${url.split('?')[0]}`, 0).message });
      } catch (error) {
        checks.push({ name, status: 'fail', detail: error instanceof Error ? error.message : String(error) });
      }
    };
    await get('health', '/v1/health', () => ({ name: 'health', status: 'ok', detail: 'Runflow answers' }));
    await get('key and balance', '/v1/billing/balance', (body) => {
      const balance = balanceMicros(body);
      if (balance === undefined)
        return {
          name: 'key and balance',
          status: 'warn',
          detail: `the key is accepted; the balance answer has no readable amount (fields: ${isRecord(body) ? Object.keys(body).join(', ') : typeof body})`,
        };
      const enough = balance >= estimateMicros;
      return {
        name: 'key and balance',
        status: enough ? 'ok' : 'fail',
        detail: `the key is accepted; balance ${formatUsd(balance)}${enough ? ' covers' : ' does not cover'} tonight's estimate of ${formatUsd(estimateMicros)}`,
      };
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
    throw envelopeError(
      response.status,
      response.body,
      response.headers,
      `${method} ${redactUrl(new URL(path, this.options.baseUrl).href)}`,
      this.options.retry.maxDelayMs,
    );
  }
}
