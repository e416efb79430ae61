import { ApiError, kindOfStatus } from '../errors.js';
import { redactUrl, type HttpResponse } from '../http.js';
import { IMAGE_LIMITS, type KlingV3Input } from '../model/kling-v3.js';
import { apiRequest, isRecord, retryAfterOf, str, type ApiOptions } from './api.js';
import type { Provider, RunMetadata, RunRef, RunSnapshot, RunState } from './provider.js';

export const FAL_QUEUE_URL = 'https://queue.fal.run';
export const FAL_ENDPOINT = 'fal-ai/kling-video/v3/pro/image-to-video';
/** Where fal keeps requests of this model family (its status and result URLs are shorter than the submit path). */
export const FAL_REQUESTS_PATH = 'fal-ai/kling-video/requests';

export interface FalOptions extends ApiOptions {
  baseUrl: string;
  apiKey: string;
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
  return { code, message, hasDetail: detail !== undefined };
}

/**
 * fal's queue for the same model: submit, poll the returned status URL, fetch the result (a COMPLETED
 * status can still hold a model error), cancel on deadline. fal keeps no searchable list of requests.
 */
export class FalProvider implements Provider {
  readonly name = 'fal' as const;
  // fal endpoints take images inline as data URIs; the model's own 10 MB limit is the bound.
  readonly maxInlineImageBytes = IMAGE_LIMITS.maxBytes;

  constructor(private readonly options: FalOptions) {}

  async submit(input: KlingV3Input, _metadata: RunMetadata, signal: AbortSignal, waitSignal?: AbortSignal): Promise<RunRef> {
    const url = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_ENDPOINT}`;
    const body = await this.call('POST', url, input, signal, waitSignal);
    const requestId = isRecord(body) ? str(body.request_id) : undefined;
    if (!requestId || !isRecord(body)) throw new ApiError('row', 'BAD_RESPONSE', 'fal answered the submit without a request_id');
    const base = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_REQUESTS_PATH}/${encodeURIComponent(requestId)}`;
    return {
      runId: requestId,
      urls: { status: str(body.status_url) ?? `${base}/status`, result: str(body.response_url) ?? base, cancel: str(body.cancel_url) ?? `${base}/cancel` },
    };
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

  async cancel(run: RunRef, signal: AbortSignal): Promise<void> {
    await this.call('PUT', (run.urls ?? this.urlsFor(run.runId)).cancel, undefined, signal).catch((error: unknown) => {
      // A request that already finished cannot be cancelled: nothing to do.
      if (!(error instanceof ApiError && (error.status === 400 || error.status === 404 || error.status === 409))) throw error;
    });
  }

  async findRuns(): Promise<RunSnapshot[]> {
    throw new ApiError(
      'row',
      'NO_RUN_LIST',
      'fal keeps no list of requests to look a lost submission up in: check the fal dashboard, then rerun with --resubmit-unknown if it is not there',
    );
  }

  private urlsFor(requestId: string): NonNullable<RunRef['urls']> {
    const base = `${this.options.baseUrl.replace(/\/$/, '')}/${FAL_REQUESTS_PATH}/${encodeURIComponent(requestId)}`;
    return { status: `${base}/status`, result: base, cancel: `${base}/cancel` };
  }

  /** The result of a COMPLETED request: the video, or the model's error (the run failed; fal does not bill it). */
  private async result(runId: string, url: string, runMs: number | undefined, signal: AbortSignal): Promise<RunSnapshot> {
    const response = await apiRequest(this.options, { method: 'GET', url, headers: this.headers() }, signal);
    if (response.status >= 200 && response.status < 300) {
      const body = isRecord(response.body) ? response.body : {};
      const videoUrl = isRecord(body.video) ? str(body.video.url) : undefined;
      if (!videoUrl) return { runId, state: 'failed', failure: { code: 'NO_OUTPUT', message: 'fal returned a result without video.url' } };
      return { runId, state: 'succeeded', videoUrl, ...(runMs !== undefined && { runMs }) };
    }
    const { code, message, hasDetail } = falErrorText(response);
    if (response.status === 404) return { runId, state: 'failed', failure: { code: 'RESULT_GONE', message: `fal no longer has the result (${message}); results are kept for an hour at most` } };
    // Without fal's `detail` the answer came from something in between: ask again later.
    if (!hasDetail) throw new ApiError(kindOfStatus(response.status) === 'row' ? 'transient' : kindOfStatus(response.status), code, `GET ${redactUrl(url)}: fal ${response.status} ${message}`);
    return { runId, state: 'failed', failure: { code, message } };
  }

  private headers(): Record<string, string> {
    return { authorization: `Key ${this.options.apiKey}`, accept: 'application/json' };
  }

  private async call(method: 'GET' | 'POST' | 'PUT', url: string, body: unknown, signal: AbortSignal, waitSignal?: AbortSignal): Promise<unknown> {
    const response = await apiRequest(
      this.options,
      { method, url, headers: { ...this.headers(), ...(body !== undefined && { 'content-type': 'application/json' }) }, ...(body !== undefined && { body: JSON.stringify(body) }) },
      signal,
      waitSignal,
    );
    if (response.status >= 200 && response.status < 300) return response.body;
    const { code, message } = falErrorText(response);
    const hint = response.status === 401 || response.status === 403 ? ' — check FAL_KEY' : '';
    const retryAfterMs = retryAfterOf(response.headers, this.options.retry.maxDelayMs);
    // fal refuses an account without balance with a 403 whose type says so: that is out of credit, not a bad key.
    const kind = /balance|credit/i.test(code) ? 'credit' : kindOfStatus(response.status);
    throw new ApiError(kind, code, `${method} ${redactUrl(url)}: fal ${response.status} ${code}: ${message}${kind === 'credit' ? ' — top up the fal balance' : hint}`, {
      status: response.status,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
    });
  }
}
