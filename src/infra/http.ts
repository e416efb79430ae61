import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import { ApiError, isAbortError } from './errors.js';
import { guardedLookup, outboundUrlProblem } from './net-guard.js';
import { linkedSignal } from './signals.js';

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  timeoutMs: number;
  signal: AbortSignal;
}

export interface HttpResponse<T = unknown> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** For error messages: a URL without its query string, which may hold a signature or token. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

/** The API keys in use: whatever a provider echoes back, they never reach a log, the journal or a report. */
const SECRETS = new Set<string>();

/** Registers a secret to be cut from every redacted text (keys shorter than 8 characters would cut ordinary words). */
export function registerSecret(secret: string): void {
  if (secret.length >= 8) SECRETS.add(secret);
}

/** For provider text that becomes a message: known secrets are cut, and every URL loses its query string (a signature, a token) and any credentials. */
export function redactText(text: string): string {
  let out = text;
  for (const secret of SECRETS) out = out.split(secret).join('[redacted]');
  return out
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@"'<>]+@/gi, '$1[redacted]@')
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s"'<>?]+)\?[^\s"'<>]*/gi, '$1?…(redacted)');
}

/** For logging a provider's raw answer: every URL loses its query (signatures), data: URIs their bytes. */
export function redactJson(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.startsWith('data:')) return `${value.slice(0, value.indexOf(',') + 1)}…(${value.length} chars)`;
    return redactText(value);
  }
  if (Array.isArray(value)) return value.map(redactJson);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactJson(v)]));
  return value;
}

const REFUSED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * The one HTTP transport (undici). Each call has its own timeout, far below undici's 300 s defaults,
 * and the run's AbortSignal; failures become ApiError with a kind, never a raw socket error.
 */
export class HttpClient {
  private readonly agent: Agent;

  private readonly allowedHosts: ReadonlySet<string>;

  /** `allowedHosts`: the hosts the user configured (a provider base URL, a simulator), the only ones plain http or a non-public address may be. */
  constructor(options: { connections?: number; allowedHosts?: ReadonlySet<string> } = {}) {
    this.allowedHosts = options.allowedHosts ?? new Set();
    // Timeouts are enforced per call with AbortSignal; the agent's own stay as a backstop.
    this.agent = new Agent({
      connections: options.connections ?? 64,
      keepAliveTimeout: 10_000,
      headersTimeout: 120_000,
      bodyTimeout: 120_000,
      connect: { lookup: guardedLookup(this.allowedHosts) },
    });
  }

  /** Refuses, before any byte is sent, a URL that is not https on a public address (unless its host was configured). */
  private checkOutbound(req: HttpRequest): void {
    const problem = outboundUrlProblem(req.url, this.allowedHosts);
    if (problem)
      throw new ApiError(
        'row',
        'URL_NOT_ALLOWED',
        `${req.method} ${redactUrl(req.url)}: ${problem}; clipmill only fetches https URLs on public addresses (or the hosts you configured)`,
        { mayHaveReachedServer: false },
      );
  }

  /** Sends a request and reads the whole body (as JSON when it parses, else text); one timeout covers both. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    this.checkOutbound(req);
    const timeout = this.timeoutSignal(req);
    let status: number;
    let headers: HttpResponse['headers'];
    let text: string;
    try {
      const response = await this.dispatch(req, timeout.signal);
      status = response.statusCode;
      headers = response.headers;
      text = await response.body.text();
    } catch (error) {
      throw this.mapError(error, req, timeout.signal);
    } finally {
      timeout.release();
    }
    let body: unknown = text;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        // Not JSON (a proxy's HTML error page): keep the text for the message.
      }
    }
    return { status, headers, body };
  }

  /** Opens a request and returns the response with its body still streaming; the timeout covers the headers only. */
  async open(req: HttpRequest): Promise<Dispatcher.ResponseData> {
    this.checkOutbound(req);
    const timeout = this.timeoutSignal(req);
    try {
      const response = await this.dispatch(req, timeout.signal);
      // The caller's abort still reaches the streaming body; the link goes when the body does.
      response.body.once('close', timeout.release);
      return response;
    } catch (error) {
      timeout.release();
      throw this.mapError(error, req, timeout.signal);
    } finally {
      timeout.clear();
    }
  }

  /** Maps an error raised while reading a streamed body, as `send` and `open` do. */
  streamError(error: unknown, req: HttpRequest): unknown {
    return this.mapError(error, req, req.signal);
  }

  private dispatch(req: HttpRequest, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    return request(req.url, {
      method: req.method,
      headers: req.headers ?? {},
      body: req.body ?? null,
      dispatcher: this.agent,
      signal,
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  /** The request's signal and its timeout; `clear` stops the timer, `release` also unlinks from the caller's signal. */
  private timeoutSignal(req: HttpRequest): { signal: AbortSignal; clear: () => void; release: () => void } {
    const link = linkedSignal(req.signal);
    const handle = setTimeout(() => link.abort(new ApiError('transient', 'TIMEOUT', `no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    handle.unref();
    const clear = () => clearTimeout(handle);
    const release = () => {
      clear();
      link.unlink();
    };
    return { signal: link.signal, clear, release };
  }

  private mapError(error: unknown, req: HttpRequest, signal: AbortSignal): unknown {
    const where = `${req.method} ${redactUrl(req.url)}`;
    if (req.signal.aborted) return req.signal.reason ?? error; // the user's abort is never retried
    if (signal.aborted && signal.reason instanceof ApiError) {
      return new ApiError('transient', 'TIMEOUT', `${where}: ${signal.reason.message}`, { cause: error });
    }
    if (isAbortError(error)) return error;
    const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code ?? 'NETWORK';
    const reached = !REFUSED.has(code);
    const detail = error instanceof undiciErrors.UndiciError || error instanceof Error ? error.message : String(error);
    return new ApiError('transient', code, `${where}: ${code} (${detail})`, { mayHaveReachedServer: reached, cause: error });
  }
}
