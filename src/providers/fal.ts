import path from 'node:path';
import { formatUsd } from '../money/cost.js';
import { ApiError, kindOfStatus } from '../infra/errors.js';
import { redactText, redactUrl, type HttpResponse } from '../infra/http.js';
import type { ImageInfo } from '../load/images.js';
import type { KlingV3Input } from '../model/kling-v3.js';
import { apiRequest, isRecord, putPresigned, retryAfterOf, str, type ApiOptions, type SendControl } from './api.js';
import { clockCheck } from './checks.js';
import type { AccountCheck, ListedRun, Provider, RunRef, RunSnapshot, RunState, Submission, UploadedAsset } from './provider.js';

export const FAL_QUEUE_URL = 'https://queue.fal.run';
/** fal's REST host, where storage uploads start (what `@fal-ai/client`'s `storage.upload` calls). */
export const FAL_REST_URL = 'https://rest.fal.ai';
export const FAL_STORAGE_INITIATE_PATH = '/storage/upload/initiate?storage_type=fal-cdn-v3';
/** Inline data: URIs only when a pipeline opts in, and only this small: fal takes them for "some models". */
export const FAL_MAX_INLINE_BYTES = 1024 * 1024;
export const FAL_ENDPOINT = 'fal-ai/kling-video/v3/pro/image-to-video';
/** Where fal keeps requests of this model family (its status and result URLs are shorter than the submit path). */
export const FAL_REQUESTS_PATH = 'fal-ai/kling-video/requests';

export interface FalOptions extends ApiOptions {
  baseUrl: string;
  /** Where storage uploads are initiated (fal's REST host, or a simulator). */
  storageUrl: string;
  apiKey: string;
}

/** fal's locked account (`{"detail": "User is locked. Reason: …"}`): stop creating, keep polling what is paid for. */
export function lockedAccountMessage(status: number, detail: unknown): string | undefined {
  if (status !== 403 || typeof detail !== 'string' || !/user is locked/i.test(detail)) return undefined;
  if (/balance|top.?up/i.test(detail)) return `${detail.trim()} — the fal balance is exhausted: top it up at fal.ai/dashboard/billing, then run again (runs already submitted are still fetched)`;
  return `${detail.trim()} — fal has locked the account: contact fal support, then run again (runs already submitted are still fetched)`;
}

const STATES: Record<string, RunState> = { IN_QUEUE: 'queued', IN_PROGRESS: 'running', COMPLETED: 'succeeded' };

/** fal's errors: `{detail}` (a string, or a 422 list of `{loc, msg, type}`), `error_type` and `X-Fal-Error-Type`. */
export function falErrorText(response: Pick<HttpResponse, 'status' | 'body' | 'headers'>): { code: string; message: string; hasDetail: boolean } {
  const body = isRecord(response.body) ? response.body : {};
  const header = response.headers['x-fal-error-type'];
  const code = str(body.error_type) ?? (Array.isArray(header) ? header[0] : header) ?? (response.status === 422 ? 'VALIDATION_ERROR' : `HTTP_${response.status}`);
  const detail = body.detail;
  let message: string;
  if (Array.isArray(detail)) {
    message = detail.map((d) => (isRecord(d) ? `${Array.isArray(d.loc) ? d.loc.filter((l) => l !== 'body').join('.') : ''}: ${str(d.msg) ?? ''}`.replace(/^: /, '') : String(d))).join('; ');
  } else {
    message = str(detail) ?? (typeof response.body === 'string' && response.body.trim() ? response.body.trim().slice(0, 200) : `HTTP ${response.status}`);
  }
  return { code, message: redactText(message), hasDetail: detail !== undefined };
}

/**
 * fal's queue for the same model: submit, poll the returned status URL, fetch the result (a COMPLETED
 * status can still hold a model error), cancel on deadline. fal keeps no searchable list of requests.
 */
export class FalProvider implements Provider {
  readonly name = 'fal' as const;
  readonly maxInlineImageBytes = FAL_MAX_INLINE_BYTES;

  constructor(private readonly options: FalOptions) {}

  /** fal's storage: initiate (`{content_type, file_name}` → `{upload_url, file_url}`), PUT the bytes, pass `file_url`. */
  async uploadImage(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset> {
    const initiate = `${this.options.storageUrl.replace(/\/$/, '')}${FAL_STORAGE_INITIATE_PATH}`;
    const body = await this.call('POST', initiate, { content_type: image.mime, file_name: path.basename(image.path) }, signal);
    const uploadUrl = isRecord(body) ? str(body.upload_url) : undefined;
    const fileUrl = isRecord(body) ? str(body.file_url) : undefined;
    if (!uploadUrl || !fileUrl) throw new ApiError('transient', 'BAD_RESPONSE', 'fal answered the storage upload without upload_url and file_url');
    await putPresigned(this.options, uploadUrl, image.mime, bytes, signal);
    return { assetId: fileUrl, url: fileUrl };
  }

  /** A fal storage file is addressed by its file_url (its own id); one fal no longer serves is uploaded again (uploads are free). */
  async refreshImage(assetId: string, signal: AbortSignal): Promise<UploadedAsset | undefined> {
    const head = await this.options.http.send({ method: 'HEAD', url: assetId, timeoutMs: this.options.requestTimeoutMs, signal });
    return head.status >= 200 && head.status < 300 ? { assetId, url: assetId } : undefined;
  }

  async submit(input: KlingV3Input, _submission: Submission, signal: AbortSignal, control: SendControl): Promise<RunRef> {
    const url = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_ENDPOINT}`;
    const body = await this.call('POST', url, input, signal, control);
    const requestId = isRecord(body) ? str(body.request_id) : undefined;
    if (!requestId || !isRecord(body)) throw new ApiError('row', 'BAD_RESPONSE', 'fal answered the submit without a request_id');
    const built = this.urlsFor(requestId);
    // Our key goes to these URLs: only on the queue's own origin, else the documented paths are built instead.
    const own = (url: unknown) => (typeof url === 'string' && URL.canParse(url) && new URL(url).origin === new URL(this.options.baseUrl).origin ? url : undefined);
    return { runId: requestId, urls: { status: own(body.status_url) ?? built.status, result: own(body.response_url) ?? built.result, cancel: own(body.cancel_url) ?? built.cancel } };
  }

  async getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot> {
    const urls = run.urls ?? this.urlsFor(run.runId);
    const status = await this.call('GET', urls.status, undefined, signal);
    const name = isRecord(status) ? String(status.status ?? '') : '';
    const state = STATES[name];
    if (!state) throw new ApiError('row', 'UNKNOWN_STATUS', `fal request ${run.runId} has status "${name}", which clipmill does not know`);
    if (state !== 'succeeded') return { runId: run.runId, state };
    return this.result(run.runId, urls.result, isRecord(status) && isRecord(status.metrics) && typeof status.metrics.inference_time === 'number' ? status.metrics.inference_time * 1000 : undefined, signal);
  }

  async cancel(run: RunRef, signal: AbortSignal): Promise<boolean> {
    try {
      await this.call('PUT', (run.urls ?? this.urlsFor(run.runId)).cancel, undefined, signal);
      return true;
    } catch (error) {
      // A request that already finished cannot be cancelled: it may well be billed.
      if (error instanceof ApiError && (error.status === 400 || error.status === 404 || error.status === 409)) return false;
      throw error;
    }
  }

  async listRunsSince(): Promise<ListedRun[]> {
    throw new ApiError('row', 'NO_RUN_LIST', 'fal keeps no list of requests: an audit needs its dashboard (fal.ai/dashboard) and the ledger.csv of each output folder');
  }

  async balance(): Promise<number | undefined> {
    return undefined; // fal documents no balance endpoint
  }

  async findRuns(): Promise<string[]> {
    throw new ApiError(
      'row',
      'NO_RUN_LIST',
      'fal keeps no list of requests to look a lost submission up in: check the fal dashboard, then rerun with --resubmit-unknown if it is not there',
    );
  }

  /**
   * fal documents no free balance or health endpoint: the key is checked with the status of a request id
   * that does not exist (a 401 is a refused key), and the clock with that answer's Date header.
   */
  async checkAccount(signal: AbortSignal, estimateMicros: number): Promise<AccountCheck[]> {
    const checks: AccountCheck[] = [];
    const url = this.urlsFor('00000000-0000-4000-8000-000000000000').status;
    try {
      const response = await apiRequest(this.options, { method: 'GET', url, headers: this.headers() }, signal);
      const { message } = falErrorText(response);
      const locked = lockedAccountMessage(response.status, isRecord(response.body) ? response.body.detail : undefined);
      if (response.status === 401) checks.push({ name: 'key', status: 'fail', detail: `fal refuses the key (401: ${message}) — check FAL_KEY` });
      else if (locked) checks.push({ name: 'key', status: 'fail', detail: locked });
      // Only fal's own "not found" (with its `detail`) says the key got past authentication.
      else if (response.status === 404 && isRecord(response.body) && response.body.detail !== undefined) checks.push({ name: 'key', status: 'ok', detail: 'fal takes the key (a made-up request id is "not found")' });
      else checks.push({ name: 'key', status: 'warn', detail: `could not tell whether fal takes the key: a made-up request id answered ${response.status} (${message})` });
      checks.push(clockCheck([response]));
    } catch (error) {
      checks.push({ name: 'key', status: 'fail', detail: error instanceof Error ? error.message : String(error) });
    }
    checks.push({ name: 'balance', status: 'warn', detail: `fal documents no balance endpoint: check fal.ai/dashboard/billing covers tonight's estimate of ${formatUsd(estimateMicros)}` });
    return checks;
  }

  private urlsFor(requestId: string): NonNullable<RunRef['urls']> {
    const base = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_REQUESTS_PATH}/${encodeURIComponent(requestId)}`;
    return { status: `${base}/status`, result: base, cancel: `${base}/cancel` };
  }

  /**
   * The result of a COMPLETED request. Only the model's own verdict fails a row (fal does not bill it): a
   * 4xx with fal's `detail` (e.g. 422). A key, lock or rate answer is the account's, not the run's; a 2xx
   * without a video is paid and owed; a 5xx, whatever it carries, is asked again later (the run may well
   * have succeeded: writing it off would pay for it again).
   */
  private async result(runId: string, url: string, runMs: number | undefined, signal: AbortSignal): Promise<RunSnapshot> {
    const response = await apiRequest(this.options, { method: 'GET', url, headers: this.headers() }, signal);
    const timing = runMs !== undefined ? { runMs } : {};
    if (response.status >= 200 && response.status < 300) {
      const body = isRecord(response.body) ? response.body : {};
      const videoUrl = isRecord(body.video) ? str(body.video.url) : undefined;
      return { runId, state: 'succeeded', rawOutput: response.body, ...(videoUrl !== undefined && { videoUrl }), ...timing };
    }
    const { code, message, hasDetail } = falErrorText(response);
    if ([401, 403, 408, 429].includes(response.status)) throw this.errorOf('GET', url, response);
    if (response.status === 404) {
      // Past fal's retention: whether the run succeeded (and was billed) can no longer be read.
      return { runId, state: 'failed', mayBeBilled: true, failure: { code: 'RESULT_GONE', message: `fal no longer keeps the result (${message}): results are kept 1 hour, 6 minutes when large; the video cannot be fetched and may have been billed` } };
    }
    if (response.status < 500 && hasDetail) return { runId, state: 'failed', failure: { code, message } };
    throw new ApiError('transient', code, `GET ${redactUrl(url)}: fal ${response.status} ${message}; asking again later`, { status: response.status });
  }

  private headers(): Record<string, string> {
    return { authorization: `Key ${this.options.apiKey}`, accept: 'application/json' };
  }

  private async call(method: 'GET' | 'POST' | 'PUT', url: string, body: unknown, signal: AbortSignal, control: SendControl = {}): Promise<unknown> {
    const response = await apiRequest(
      this.options,
      { method, url, headers: { ...this.headers(), ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) },
      signal,
      control,
    );
    if (response.status >= 200 && response.status < 300) return response.body;
    throw this.errorOf(method, url, response);
  }

  /** A refusal, classified: the locked account (a 403 with only `detail`) is out of credit, not a bad key. */
  private errorOf(method: string, url: string, response: HttpResponse): ApiError {
    const { code, message } = falErrorText(response);
    const retryAfterMs = retryAfterOf(response.headers, this.options.retry.maxDelayMs);
    const locked = lockedAccountMessage(response.status, isRecord(response.body) ? response.body.detail : undefined);
    if (locked) return new ApiError('credit', 'ACCOUNT_LOCKED', `${method} ${redactUrl(url)}: fal 403: ${locked}`, { status: 403 });
    const hint = response.status === 401 || response.status === 403 ? ' — check FAL_KEY' : '';
    return new ApiError(kindOfStatus(response.status), code, `${method} ${redactUrl(url)}: fal ${response.status} ${code}: ${message}${hint}`, {
      status: response.status,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
    });
  }
}
