import type { ExitName } from './exit.js';

/**
 * What happens next after a failed call, as DESIGN.md sorts errors:
 * - `transient`: try again later (429, 5xx, network, timeouts);
 * - `row`: this row failed for good (422, model failure), the run goes on;
 * - `fatal`: the run must stop (401/403, misconfiguration);
 * - `credit`: out of credit or budget, stop submitting (exit 3).
 */
export type ErrorKind = 'transient' | 'row' | 'fatal' | 'credit';

/**
 * The base of every error clipmill throws on purpose: its message is written for the user, and it
 * says how the CLI exits when it reaches the top. Anything else reaching the top is a bug (exit 4).
 */
export abstract class ClipmillError extends Error {
  /** The `EXIT` code the CLI ends with when this error is not handled below it. */
  abstract readonly exit: ExitName;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
  }
}

export interface ApiErrorDetails {
  status?: number;
  /** Milliseconds the server asked us to wait (Retry-After), already capped. */
  retryAfterMs?: number;
  /** False only when the request certainly never reached the server (connection refused). */
  mayHaveReachedServer?: boolean;
  /** The error this one classifies (a network error, a refused request), kept for --debug. */
  cause?: unknown;
}

/** An error from a provider or the network, already classified. Its message never holds a secret. */
export class ApiError extends ClipmillError {
  // A provider's refusal that reaches the top (an audit, a look-up) ends the command as a failure, as before.
  readonly exit = 'rowsFailed';
  readonly kind: ErrorKind;
  readonly code: string;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;
  readonly mayHaveReachedServer: boolean;

  constructor(kind: ErrorKind, code: string, message: string, details: ApiErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.name = 'ApiError';
    this.kind = kind;
    this.code = code;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
    this.mayHaveReachedServer = details.mayHaveReachedServer ?? true;
  }
}

export function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || (error as { code?: string }).code === 'ABORT_ERR');
}

/** The kind of failure an HTTP status means; the row or run decides what to do with it. */
export function kindOfStatus(status: number): ErrorKind {
  if (status === 429 || status === 408 || status >= 500) return 'transient';
  if (status === 401 || status === 403) return 'fatal';
  if (status === 402) return 'credit';
  return 'row';
}
