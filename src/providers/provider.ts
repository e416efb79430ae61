import type { ProviderName } from '../config/pipeline.js';
import type { ImageInfo } from '../load/images.js';
import type { KlingV3Input } from '../model/kling-v3.js';
import type { SendControl } from './api.js';

/** Where a run is, in the words every provider maps to. */
export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

/** A local image stored at the provider: its id is kept in the journal, its URL only for this run. */
export interface UploadedAsset {
  assetId: string;
  /** What the model fetches the image from; on Runflow presigned and short-lived. */
  url: string;
}

/** Where a provider answers about a run, when it gives addresses of its own (fal's queue does). */
export interface RunUrls {
  status: string;
  result: string;
  cancel: string;
}

/** What identifies a run to its provider; recorded in the journal as soon as the create answers. */
export interface RunRef {
  runId: string;
  urls?: RunUrls;
}

export interface RunSnapshot {
  runId: string;
  state: RunState;
  /** Presigned, short-lived: download at once, never journal it. */
  videoUrl?: string;
  /** The run's output as the provider sent it (for the log when its shape surprises us; redact before printing). */
  rawOutput?: unknown;
  /** What the provider says it billed, when it says. */
  costMicros?: number;
  /** A run that ended without a readable outcome (fal's result past retention): count it as billed at the estimate. */
  mayBeBilled?: boolean;
  failure?: { code: string; message: string };
  /** When it started running, by the provider's clock. */
  startedAtMs?: number;
  /** How long it ran, once it has ended. */
  runMs?: number;
  /** How long it waited between its create and its start, by the provider's clock. */
  queueMs?: number;
}

/** Carried on the run for the provider's own dashboards and for tests. */
export interface RunMetadata {
  clipmill_manifest: string;
  clipmill_row: string;
  clipmill_request: string;
  /** The submission's client_ref, repeated: one attempt's token. */
  clipmill_submit: string;
}

/** One create attempt: the token it can be found again by (`client_ref`), and metadata. */
export interface Submission {
  clientRef: string;
  metadata: RunMetadata;
}

/** A run as the provider's list shows it (`clipmill audit`). */
export interface ListedRun {
  runId: string;
  clientRef: string | undefined;
  status: string;
  costMicros: number | undefined;
  createdAt: string | undefined;
}

/** What a free, read-only check of the account found (`clipmill doctor`). */
export interface AccountCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

export interface Provider {
  readonly name: ProviderName;
  /** Where its local images go: an asset upload flow (Runflow's, fal's storage), or inline data: URIs. */
  readonly maxInlineImageBytes: number;
  /** Uploads a local image and returns its asset id and the URL the model fetches it from. */
  uploadImage(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset>;
  /** A fresh URL for an asset uploaded earlier, without sending its bytes again; undefined when the provider no longer has it. */
  refreshImage(assetId: string, signal: AbortSignal): Promise<UploadedAsset | undefined>;
  /** Creates a run. Not idempotent: callers record intent (and the client_ref) in `control.beforeSend`; `signal` ends the request. */
  submit(input: KlingV3Input, submission: Submission, signal: AbortSignal, control: SendControl): Promise<RunRef>;
  getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot>;
  /** Asks the provider to stop a run (on a deadline): false when it had already finished. Absent where the provider documents no way. */
  cancel?(run: RunRef, signal: AbortSignal): Promise<boolean>;
  /**
   * The ids of runs created with this client_ref, from every page of the provider's own filtered list.
   * An empty list is the provider's word that no such run is listed; it throws when it cannot tell.
   */
  findRuns(clientRef: string, signal: AbortSignal): Promise<string[]>;
  /** Every run created since `sinceMs`, newest first, from the provider's own list; throws where the provider keeps none (fal). */
  listRunsSince(sinceMs: number, signal: AbortSignal): Promise<ListedRun[]>;
  /** The account's balance, when the provider says (free). */
  balance(signal: AbortSignal): Promise<number | undefined>;
  /** Free, read-only checks before a paid night: reachable, key accepted, balance, list shape, clock. */
  checkAccount(signal: AbortSignal, estimateMicros: number): Promise<AccountCheck[]>;
}
