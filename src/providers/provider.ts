import type { ProviderName } from '../config.js';
import type { ImageInfo } from '../manifest/images.js';
import type { KlingV3Input } from '../model/kling-v3.js';

/** Where a run is, in the words every provider maps to. */
export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

export interface UploadedAsset {
  assetId: string;
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
  /** Presigned, short-lived: download at once. */
  videoUrl?: string;
  /** What the provider says it billed, when it says. */
  costMicros?: number;
  failure?: { code: string; message: string };
  /** When it started running, by the provider's clock. */
  startedAtMs?: number;
  /** How long it ran, once it has ended. */
  runMs?: number;
}

/** Carried on the run so a lost create can be found again (and for the provider's own dashboards). */
export interface RunMetadata {
  clipmill_manifest: string;
  clipmill_row: string;
  clipmill_request: string;
  /** Unique per submission attempt (`<request>.<attempt>`): the token a lost create is looked up by. */
  clipmill_submit: string;
}

export interface Provider {
  readonly name: ProviderName;
  /** The largest local image this provider takes inline as a data: URI; larger ones are uploaded. */
  readonly maxInlineImageBytes: number;
  /** Uploads a local image and returns the (signed, short-lived) URL the model fetches it from. */
  uploadImage?(image: ImageInfo, bytes: Uint8Array, signal: AbortSignal): Promise<UploadedAsset>;
  /** A fresh URL for an asset uploaded earlier, without sending its bytes again. */
  refreshImage?(assetId: string, signal: AbortSignal): Promise<UploadedAsset>;
  /** Creates a run. Not idempotent: callers record intent first. `waitSignal` may end the wait for a rate slot; `signal` ends the request. */
  submit(input: KlingV3Input, metadata: RunMetadata, signal: AbortSignal, waitSignal?: AbortSignal): Promise<RunRef>;
  getRun(run: RunRef, signal: AbortSignal): Promise<RunSnapshot>;
  /** Asks the provider to stop a run (on a deadline); absent where the provider documents no way. */
  cancel?(run: RunRef, signal: AbortSignal): Promise<void>;
  /**
   * Runs created with this submit token, from the provider's own records. An empty list is the
   * provider's word that the create never made a run; it throws when it cannot tell.
   */
  findRuns(submitToken: string, signal: AbortSignal): Promise<RunSnapshot[]>;
}
