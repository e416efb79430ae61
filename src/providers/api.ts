import { ApiError } from '../infra/errors.js';
import { redactText, redactUrl, type HttpClient, type HttpRequest, type HttpResponse } from '../infra/http.js';
import type { ImageInfo } from '../load/images.js';
import { parseRetryAfterMs, type RetryPolicy } from '../infra/retry.js';
import type { RequestGate } from '../execute/rate-gate.js';

/** What every provider needs to talk to its API: the one transport, the shared rate gate, limits. */
export interface ApiOptions {
  http: HttpClient;
  gate: RequestGate;
  requestTimeoutMs: number;
  /** Retry-After is honoured up to `maxDelayMs`; a 429 without one holds everybody off for `baseDelayMs`. Steps of a flow retry on their own with it. */
  retry: RetryPolicy;
}

export function retryAfterOf(headers: HttpResponse['headers'], capMs: number): number | undefined {
  const value = headers['retry-after'];
  return parseRetryAfterMs(Array.isArray(value) ? value[0] : value, Date.now(), capMs);
}

/** How a create is sent: `waitSignal` ends the wait for a rate slot (nothing sent yet, so Ctrl-C may stop it); `beforeSend` runs once the slot is ours, just before the bytes leave (the journal's intent, timed to the real send). */
export interface SendControl {
  waitSignal?: AbortSignal;
  beforeSend?: () => Promise<void>;
}

/**
 * Sends one API request through the requests-per-minute gate. The caller reads the status; a 429 has
 * already slowed every caller down. `signal` ends the request itself.
 */
export async function apiRequest(
  options: ApiOptions,
  req: Omit<HttpRequest, 'timeoutMs' | 'signal'>,
  signal: AbortSignal,
  control: SendControl = {},
): Promise<HttpResponse> {
  await options.gate.take(control.waitSignal ?? signal);
  await control.beforeSend?.();
  const response = await options.http.send({ ...req, timeoutMs: options.requestTimeoutMs, signal });
  if (response.status === 429) options.gate.rateLimitedFor(retryAfterOf(response.headers, options.retry.maxDelayMs) ?? options.retry.baseDelayMs);
  return response;
}

/**
 * PUTs bytes to a presigned storage URL: no Authorization header (the URL is the credential) and no rate
 * slot (storage, not the API). A 403 there means the URL expired: worth a new upload, so transient.
 */
export async function putPresigned(
  options: Pick<ApiOptions, 'http' | 'requestTimeoutMs'>,
  uploadUrl: string,
  mime: string,
  bytes: Uint8Array,
  signal: AbortSignal,
): Promise<void> {
  const put = await options.http.send({
    method: 'PUT',
    url: uploadUrl,
    headers: { 'content-type': mime },
    body: bytes,
    timeoutMs: options.requestTimeoutMs * 4,
    signal,
  });
  if (put.status >= 200 && put.status < 300) return;
  // Storage error bodies may echo the signed request.
  const text = redactText(typeof put.body === 'string' ? put.body.slice(0, 200) : JSON.stringify(put.body).slice(0, 200));
  const expired = put.status === 403 ? ' (the upload URL expired; uploading again)' : '';
  throw new ApiError(
    put.status >= 500 || put.status === 429 || put.status === 403 ? 'transient' : 'row',
    `UPLOAD_${put.status}`,
    `PUT ${redactUrl(uploadUrl)}: HTTP ${put.status} ${text}${expired}`,
    { status: put.status },
  );
}

export function dataUri(image: ImageInfo, bytes: Uint8Array): string {
  return `data:${image.mime};base64,${Buffer.from(bytes).toString('base64')}`;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A field as text: a string as is, a number or boolean written out, an object as JSON, absent as ''. */
export function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return v == null ? '' : JSON.stringify(v);
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
