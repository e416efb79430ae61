/** A manifest named by URL (a published Google Sheet, any https CSV or .xlsx): fetched once, capped, tried again on a network hiccup. */
import { HttpClient } from '../infra/http.js';
import { ApiError, ClipmillError } from '../infra/errors.js';
import { parseRetryAfterMs, withRetry, type RetryPolicy } from '../infra/retry.js';

/** A manifest of 100,000 rows is about 11 MB as CSV; anything larger is not a sheet a person edits. */
export const MANIFEST_MAX_BYTES = 20_000_000;
export const MANIFEST_TIMEOUT_MS = 60_000;
/** Google's published links answer with one redirect to googleusercontent.com; a chain longer than this is a loop. */
export const MANIFEST_MAX_REDIRECTS = 5;

/** A download tried again on a refused or cut connection, a timeout or a 5xx: three attempts within a few seconds. */
export const MANIFEST_RETRY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 4000 };

export interface DownloadOptions {
  maxBytes?: number;
  /** Per attempt, for the whole transfer. */
  timeoutMs?: number;
  maxRedirects?: number;
  retry?: RetryPolicy;
  /** The command's signal (Ctrl-C, SIGTERM): the download stops at once, as DownloadInterrupted. */
  signal?: AbortSignal;
}

export interface Downloaded {
  bytes: Buffer;
  /** Where the bytes came from, after redirects. */
  url: URL;
  contentType: string | undefined;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);
const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '');
const tooBig = (maxBytes: number) => `is larger than ${maxBytes / 1e6} MB (the most a manifest may be): split the sheet, or download it and name the file`;

/** Reads a body up to `maxBytes`, stopping (and closing the connection) as soon as it is over. */
async function readCapped(body: AsyncIterable<Buffer> & { destroy(): unknown }, maxBytes: number): Promise<Buffer | { problem: string }> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (total > maxBytes) {
      body.destroy();
      return { problem: tooBig(maxBytes) };
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

function statusProblem(status: number): string {
  const hint =
    status === 401 || status === 403
      ? ': the file is not public (publish a Google Sheet with File → Share → Publish to web)'
      : status === 404
        ? ': check the link (a Google Sheet must be published: File → Share → Publish to web)'
        : '';
  return `cannot be downloaded: the server answered ${status}${hint}`;
}

/** Network failures in words, from their codes: an error's own message can name the URL it failed on (a redirect's path and query). */
const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was cut',
  UND_ERR_SOCKET: 'the connection was cut',
  UND_ERR_CLOSED: 'the connection was cut',
  EPIPE: 'the connection was cut',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be looked up',
  ETIMEDOUT: 'the connection timed out',
  TIMEOUT: 'no answer in time',
  UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
  UND_ERR_BODY_TIMEOUT: 'no answer in time',
  URL_NOT_ALLOWED: 'the address is not a public https one (only the host named may be private or plain http)',
};

/** Pure: why a download failed, by the error's code only (never its message, which may hold the URL). */
export function networkReason(error: unknown): string {
  const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
  const known = typeof code === 'string' ? NETWORK_REASONS[code] : undefined;
  return known ?? (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code) ? `a network error (${code})` : 'a network error');
}

/** Where a redirect may lead: https, or plain http on this machine (where tests and local servers are). */
function redirectProblem(next: URL): string | undefined {
  if (next.protocol === 'https:' || (next.protocol === 'http:' && LOOPBACK.has(hostOf(next)))) return undefined;
  return `cannot be downloaded: it redirects to a ${next.protocol}// address (only https is followed)`;
}

/** Ctrl-C (or SIGTERM) while a manifest downloads: the command ends as interrupted (exit 130), nothing sent. */
export class DownloadInterrupted extends ClipmillError {
  readonly exit = 'interrupted';
  constructor(cause: unknown) {
    super('interrupted while downloading a manifest; nothing was sent', { cause });
    this.name = 'DownloadInterrupted';
  }
}

/** One attempt's failure worth another try (a refused or cut connection, a timeout, a 5xx): `withRetry` tries again. */
const hiccup = (reason: string, retryAfterMs?: number) =>
  new ApiError('transient', 'MANIFEST_DOWNLOAD', reason, retryAfterMs === undefined ? {} : { retryAfterMs });

const RETRIED_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'TIMEOUT']);

interface Attempt {
  client: HttpClient;
  first: URL;
  auth: string | undefined;
  maxBytes: number;
  maxRedirects: number;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  /** Where the last request went: a failure names its host. */
  at: URL;
}

/** Pure: the wait the server asked for before another try (a 503's Retry-After), within the policy's longest wait. */
function retryAfterOf(value: unknown, capMs: number): number | undefined {
  return parseRetryAfterMs(typeof value === 'string' ? value : undefined, Date.now(), capMs);
}

/** One download, following redirects: the bytes, a final problem, or a Hiccup thrown for another try. */
async function attemptDownload(a: Attempt, capMs: number): Promise<Downloaded | { problem: string }> {
  const timeout = AbortSignal.timeout(a.timeoutMs);
  const signal = a.signal ? AbortSignal.any([a.signal, timeout]) : timeout;
  a.at = a.first;
  try {
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { accept: 'text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, */*;q=0.5' };
      if (a.auth !== undefined && a.at.origin === a.first.origin) headers.authorization = a.auth;
      const response = await a.client.open({ method: 'GET', url: a.at.href, headers, timeoutMs: a.timeoutMs, signal });
      const { statusCode: status, headers: answer } = response;
      if ([301, 302, 303, 307, 308].includes(status) && typeof answer.location === 'string') {
        await response.body.dump();
        if (hop >= a.maxRedirects) return { problem: `cannot be downloaded: more than ${a.maxRedirects} redirects` };
        a.at = new URL(answer.location, a.at);
        const refused = redirectProblem(a.at);
        if (refused) return { problem: refused };
        continue;
      }
      if (status < 200 || status > 299) {
        await response.body.dump();
        if (status >= 500) throw hiccup(`the server answered ${status}`, retryAfterOf(answer['retry-after'], capMs));
        return { problem: statusProblem(status) };
      }
      if (Number(answer['content-length']) > a.maxBytes) {
        response.body.destroy();
        return { problem: tooBig(a.maxBytes) };
      }
      const bytes = await readCapped(response.body, a.maxBytes);
      if ('problem' in bytes) return bytes;
      const type = answer['content-type'];
      return { bytes, url: a.at, contentType: typeof type === 'string' ? type : undefined };
    }
  } catch (error) {
    if ((error instanceof ApiError && error.code === 'MANIFEST_DOWNLOAD') || a.signal?.aborted) throw error;
    if (timeout.aborted) throw hiccup(`no complete answer within ${a.timeoutMs / 1000} s`);
    const code = (error as { code?: unknown }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
    if (typeof code === 'string' && RETRIED_CODES.has(code)) throw hiccup(networkReason(error));
    return { problem: `cannot be downloaded from ${hostOf(a.at)}: ${networkReason(error)}` };
  }
}

/**
 * Downloads a manifest URL, following redirects, within a size cap and a timeout per attempt. A refused or cut
 * connection, a timeout or a 5xx is tried again with backoff (nothing is paid for a download); the command's signal
 * (Ctrl-C) stops it at once (DownloadInterrupted). Credentials written in the URL go as basic auth to its own origin only.
 * Every problem is text without the path, the query or the credentials.
 */
export async function downloadManifest(href: string, options: DownloadOptions = {}): Promise<Downloaded | { problem: string }> {
  const { retry = MANIFEST_RETRY, signal } = options;
  const first = new URL(href);
  const auth = first.username
    ? `Basic ${Buffer.from(`${decodeURIComponent(first.username)}:${decodeURIComponent(first.password)}`).toString('base64')}`
    : undefined;
  first.username = '';
  first.password = '';
  // The host the user named may be on a private network; hosts it redirects to must be public (the transport's guard).
  const client = new HttpClient({ connections: 1, allowedHosts: new Set([hostOf(first)]) });
  const attempt: Attempt = {
    client,
    first,
    auth,
    maxBytes: options.maxBytes ?? MANIFEST_MAX_BYTES,
    maxRedirects: options.maxRedirects ?? MANIFEST_MAX_REDIRECTS,
    timeoutMs: options.timeoutMs ?? MANIFEST_TIMEOUT_MS,
    signal,
    at: first,
  };
  let attempts = 0;
  try {
    const download = (n: number) => {
      attempts = n;
      return attemptDownload(attempt, retry.maxDelayMs);
    };
    return await withRetry(download, retry, signal ?? new AbortController().signal);
  } catch (error) {
    if (signal?.aborted) throw new DownloadInterrupted(signal.reason ?? error);
    if (!(error instanceof ApiError)) throw error;
    const tries = attempts === 1 ? '' : ` after ${attempts} attempts`;
    return { problem: `could not download from ${hostOf(attempt.at)}${tries}: ${error.message}` };
  } finally {
    await client.close();
  }
}
