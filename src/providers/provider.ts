import type { ProviderName } from '../config.js';
import type { ImageInfo } from '../manifest/images.js';
import type { KlingV3Input } from '../model/kling-v3.js';

/** Where a run is, in the words every provider maps to. */
export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'canceled';

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
  /** The largest local image this provider accepts inline; larger ones need an upload. */
  readonly maxInlineImageBytes: number;
  /** The URL the model fetches a local image from. */
  imageUrl(image: ImageInfo, bytes: Uint8Array): string;
  /** Creates a run; resolves to its id. Not idempotent: callers record intent first. */
  submit(input: KlingV3Input, metadata: RunMetadata, signal: AbortSignal): Promise<string>;
  getRun(runId: string, signal: AbortSignal): Promise<RunSnapshot>;
  /**
   * Runs created with this submit token, from the provider's own records. An empty list is the
   * provider's word that the create never made a run; it throws when it cannot tell.
   */
  findRuns(submitToken: string, signal: AbortSignal): Promise<RunSnapshot[]>;
}
