import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KlingV3Input } from '../model/kling-v3.js';
import type { Aspect } from './clips.js';

/** The two APIs the simulator speaks; their runs and files are kept apart, as two providers would. */
export type Protocol = 'runflow' | 'fal';

export type RunStatus = 'queued' | 'dispatching' | 'running' | 'succeeded' | 'failed' | 'canceled';

export interface LedgerEntry {
  id: string;
  metadata: unknown;
  seconds: number;
  usd: number;
  /** The model input as received (created runs only), so tests can check the wire body. */
  input?: KlingV3Input;
}

export interface FieldError {
  field: string;
  message: string;
}

export interface SimRun {
  id: string;
  protocol: Protocol;
  status: RunStatus;
  /** How a canceled run's status is spelled (both spellings are documented). */
  canceledSpelling?: 'canceled' | 'cancelled';
  input: KlingV3Input;
  clientRef?: string;
  metadata: unknown;
  seconds: number;
  audio: boolean;
  /** The start image's shape: the video has the same aspect ratio. */
  aspect: Aspect;
  costMicros: number;
  createdAt: number;
  startedAt?: number;
  completedAt?: number;
  failure?: { code: string; message: string };
  /** Field errors of an input that failed validation (fal reports them in the result). */
  errors?: FieldError[];
  /** Log lines, as fal's status shows them with `?logs=1`. */
  logs: { message: string; level: string; source: string; timestamp: string }[];
}

/** Why a create made no run, in protocol-neutral terms; each API words it its own way. */
export interface Rejection {
  status: number;
  code: string;
  message: string;
  errors?: FieldError[];
}

/** An uploaded file: Runflow's asset (declared, PUT, confirmed once) or a fal storage file (initiated, PUT). */
export interface SimAsset {
  protocol: Protocol;
  name: string;
  mime: string;
  /** Declared size (Runflow): the PUT must match it. */
  size?: number;
  bytes?: Buffer;
  confirmed?: boolean;
  createdAt: number;
}

/** A request's answer, before faults and transport: what each protocol's routes return. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** One entry of a route table: the first whose method and path pattern match answers. */
export interface Route<Handler> {
  /** An HTTP method, or `*` for a route that checks the method itself (storage answers any). */
  method: string;
  pattern: RegExp;
  handler: Handler;
}

/** An API request that passed the key check and the fault draw, with its body read. */
export interface ApiRequest {
  method: string;
  url: URL;
  body: Buffer;
  /** Where the client reached us (fal's answer URLs point there). */
  origin: string;
  /** For answers that stream (fal's status stream); the handler then returns undefined. */
  res: ServerResponse;
}

/** An API request a route matched, with the route pattern's captures. */
export interface ApiCall extends ApiRequest {
  match: RegExpExecArray;
}

/** A storage or admin request: answered by the handler itself, before any key check. */
export interface RawCall {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  match: RegExpExecArray;
}

/** What the simulator counted, for tests and the benchmark (`GET /__simulator/stats`). */
export interface SimulatorStats {
  rateLimitedRandom: number;
  rateLimitedOverLimit: number;
  errors: number;
  resets: number;
  /** Creates that made a run and then failed to answer (5xx or reset): a client must reconcile them. */
  lostCreateAnswers: number;
  truncatedDownloads: number;
  slowDownloads: number;
  downloads: number;
  creates: number;
  polls: number;
  lists: number;
  /** List requests refused because their query is not a documented form (400/422). */
  refusedLists: number;
  /** Filtered list pages that held a match after the first page (a client that stops at page 1 misses these). */
  listHitsAfterFirstPage: number;
  /** Bytes PUT to upload URLs, and Runflow confirmations made. */
  uploads: number;
  confirmations: number;
  /** Fresh asset URLs minted by `GET /v1/assets/{id}`. */
  assetReads: number;
}

export function emptyStats(): SimulatorStats {
  return {
    rateLimitedRandom: 0,
    rateLimitedOverLimit: 0,
    errors: 0,
    resets: 0,
    lostCreateAnswers: 0,
    truncatedDownloads: 0,
    slowDownloads: 0,
    downloads: 0,
    creates: 0,
    polls: 0,
    lists: 0,
    refusedLists: 0,
    listHitsAfterFirstPage: 0,
    uploads: 0,
    confirmations: 0,
    assetReads: 0,
  };
}
