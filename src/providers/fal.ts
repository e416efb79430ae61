import path from 'node:path';
import { formatUsd } from '../money/cost.js';
import { ApiError } from '../infra/errors.js';
import type { ImageInfo } from '../load/images.js';
import type { KlingV3Input } from '../model/kling-v3.js';
import { apiRequest, isRecord, putPresigned, str, type ApiOptions, type SendControl } from './api.js';
import { clockCheck } from './checks.js';
import { falErrorOf, falErrorText, falRunState, inferenceMs, lockedAccountMessage, resultSnapshot } from './fal-parse.js';
import type { AccountCheck, ListedRun, Provider, RunRef, RunSnapshot, Submission, UploadedAsset } from './provider.js';

export { falErrorText, lockedAccountMessage } from './fal-parse.js';

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
    const own = (url: unknown) =>
      typeof url === 'string' && URL.canParse(url) && new URL(url).origin === new URL(this.options.baseUrl).origin ? url : undefined;
    return {
      runId: requestId,
      urls: { status: own(body.status_url) ?? built.status, result: own(body.response_url) ?? built.result, cancel: own(body.cancel_url) ?? built.cancel },
    };
  }

  async getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot> {
    const urls = run.urls ?? this.urlsFor(run.runId);
    const status = await this.call('GET', urls.status, undefined, signal);
    const state = falRunState(run.runId, status);
    if (state !== 'succeeded') return { runId: run.runId, state };
    return this.result(run.runId, urls.result, inferenceMs(status), signal);
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

  listRunsSince(): Promise<ListedRun[]> {
    return Promise.reject(
      new ApiError(
        'row',
        'NO_RUN_LIST',
        'fal keeps no list of requests: an audit needs its dashboard (fal.ai/dashboard) and the ledger.csv of each output folder',
      ),
    );
  }

  balance(): Promise<number | undefined> {
    return Promise.resolve(undefined); // fal documents no balance endpoint
  }

  findRuns(): Promise<string[]> {
    return Promise.reject(
      new ApiError(
        'row',
        'NO_RUN_LIST',
        'fal keeps no list of requests to look a lost submission up in: check the fal dashboard, then rerun with --resubmit-unknown if it is not there',
      ),
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
      else if (response.status === 404 && isRecord(response.body) && response.body.detail !== undefined)
        checks.push({ name: 'key', status: 'ok', detail: 'fal takes the key (a made-up request id is "not found")' });
      else
        checks.push({
          name: 'key',
          status: 'warn',
          detail: `could not tell whether fal takes the key: a made-up request id answered ${response.status} (${message})`,
        });
      checks.push(clockCheck([response]));
    } catch (error) {
      checks.push({ name: 'key', status: 'fail', detail: error instanceof Error ? error.message : String(error) });
    }
    checks.push({
      name: 'balance',
      status: 'warn',
      detail: `fal documents no balance endpoint: check fal.ai/dashboard/billing covers tonight's estimate of ${formatUsd(estimateMicros)}`,
    });
    return checks;
  }

  private urlsFor(requestId: string): NonNullable<RunRef['urls']> {
    const base = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_REQUESTS_PATH}/${encodeURIComponent(requestId)}`;
    return { status: `${base}/status`, result: base, cancel: `${base}/cancel` };
  }

  /** The result of a COMPLETED request (resultSnapshot says what each answer means for the row and the money). */
  private async result(runId: string, url: string, runMs: number | undefined, signal: AbortSignal): Promise<RunSnapshot> {
    const response = await apiRequest(this.options, { method: 'GET', url, headers: this.headers() }, signal);
    return resultSnapshot(runId, url, response, runMs, this.options.retry.maxDelayMs);
  }

  private headers(): Record<string, string> {
    return { authorization: `Key ${this.options.apiKey}`, accept: 'application/json' };
  }

  private async call(method: 'GET' | 'POST' | 'PUT', url: string, body: unknown, signal: AbortSignal, control: SendControl = {}): Promise<unknown> {
    const response = await apiRequest(
      this.options,
      {
        method,
        url,
        headers: { ...this.headers(), ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      },
      signal,
      control,
    );
    if (response.status >= 200 && response.status < 300) return response.body;
    throw falErrorOf(method, url, response, this.options.retry.maxDelayMs);
  }
}
