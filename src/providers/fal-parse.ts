/** Reading fal's queue answers (statuses, results, errors) as pure functions: what each means for the row and the money. */
import { ApiError, kindOfStatus } from '../infra/errors.js';
import { redactText, redactUrl, type HttpResponse } from '../infra/http.js';
import { isRecord, retryAfterOf, str, text } from './api.js';
import type { RunSnapshot, RunState } from './provider.js';

/** fal's locked account (`{"detail": "User is locked. Reason: …"}`): stop creating, keep polling what is paid for. */
export function lockedAccountMessage(status: number, detail: unknown): string | undefined {
  if (status !== 403 || typeof detail !== 'string' || !/user is locked/i.test(detail)) return undefined;
  if (/balance|top.?up/i.test(detail))
    return `${detail.trim()} — the fal balance is exhausted: top it up at fal.ai/dashboard/billing, then run again (runs already submitted are still fetched)`;
  return `${detail.trim()} — fal has locked the account: contact fal support, then run again (runs already submitted are still fetched)`;
}

const STATES: Record<string, RunState> = { IN_QUEUE: 'queued', IN_PROGRESS: 'running', COMPLETED: 'succeeded' };

/** A status answer's state; an unknown status is an error, never "still running". */
export function falRunState(runId: string, status: unknown): RunState {
  const name = isRecord(status) ? text(status.status) : '';
  const state = STATES[name];
  if (!state) throw new ApiError('row', 'UNKNOWN_STATUS', `fal request ${runId} has status "${name}", which clipmill does not know`);
  return state;
}

/** The model's inference time a COMPLETED status reports, in ms. */
export function inferenceMs(status: unknown): number | undefined {
  return isRecord(status) && isRecord(status.metrics) && typeof status.metrics.inference_time === 'number' ? status.metrics.inference_time * 1000 : undefined;
}

/** fal's errors: `{detail}` (a string, or a 422 list of `{loc, msg, type}`), `error_type` and `X-Fal-Error-Type`. */
export function falErrorText(response: Pick<HttpResponse, 'status' | 'body' | 'headers'>): { code: string; message: string; hasDetail: boolean } {
  const body = isRecord(response.body) ? response.body : {};
  const header = response.headers['x-fal-error-type'];
  const code =
    str(body.error_type) ?? (Array.isArray(header) ? header[0] : header) ?? (response.status === 422 ? 'VALIDATION_ERROR' : `HTTP_${response.status}`);
  const detail = body.detail;
  let message: string;
  if (Array.isArray(detail)) {
    message = detail
      .map((d) =>
        isRecord(d) ? `${Array.isArray(d.loc) ? d.loc.filter((l) => l !== 'body').join('.') : ''}: ${str(d.msg) ?? ''}`.replace(/^: /, '') : String(d),
      )
      .join('; ');
  } else {
    message = str(detail) ?? (typeof response.body === 'string' && response.body.trim() ? response.body.trim().slice(0, 200) : `HTTP ${response.status}`);
  }
  return { code, message: redactText(message), hasDetail: detail !== undefined };
}

/** A refusal, classified: the locked account (a 403 with only `detail`) is out of credit, not a bad key. */
export function falErrorOf(method: string, url: string, response: HttpResponse, maxRetryAfterMs: number): ApiError {
  const { code, message } = falErrorText(response);
  const retryAfterMs = retryAfterOf(response.headers, maxRetryAfterMs);
  const locked = lockedAccountMessage(response.status, isRecord(response.body) ? response.body.detail : undefined);
  if (locked) return new ApiError('credit', 'ACCOUNT_LOCKED', `${method} ${redactUrl(url)}: fal 403: ${locked}`, { status: 403 });
  const hint = response.status === 401 || response.status === 403 ? ' — check FAL_KEY' : '';
  return new ApiError(kindOfStatus(response.status), code, `${method} ${redactUrl(url)}: fal ${response.status} ${code}: ${message}${hint}`, {
    status: response.status,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/**
 * The result of a COMPLETED request. Only the model's own verdict fails a row (fal does not bill it): a
 * 4xx with fal's `detail` (e.g. 422). A key, lock or rate answer is the account's, not the run's; a 2xx
 * without a video is paid and owed; a 5xx, whatever it carries, is asked again later (the run may well
 * have succeeded: writing it off would pay for it again).
 */
export function resultSnapshot(runId: string, url: string, response: HttpResponse, runMs: number | undefined, maxRetryAfterMs: number): RunSnapshot {
  const timing = runMs !== undefined ? { runMs } : {};
  if (response.status >= 200 && response.status < 300) {
    const body = isRecord(response.body) ? response.body : {};
    const videoUrl = isRecord(body.video) ? str(body.video.url) : undefined;
    return { runId, state: 'succeeded', rawOutput: response.body, ...(videoUrl !== undefined && { videoUrl }), ...timing };
  }
  const { code, message, hasDetail } = falErrorText(response);
  if ([401, 403, 408, 429].includes(response.status)) throw falErrorOf('GET', url, response, maxRetryAfterMs);
  if (response.status === 404) {
    // Past fal's retention: whether the run succeeded (and was billed) can no longer be read.
    return {
      runId,
      state: 'failed',
      mayBeBilled: true,
      failure: {
        code: 'RESULT_GONE',
        message: `fal no longer keeps the result (${message}): results are kept 1 hour, 6 minutes when large; the video cannot be fetched and may have been billed`,
      },
    };
  }
  if (response.status < 500 && hasDetail) return { runId, state: 'failed', failure: { code, message } };
  throw new ApiError('transient', code, `GET ${redactUrl(url)}: fal ${response.status} ${message}; asking again later`, { status: response.status });
}
