import type { NewEvent, RowState, UploadRecord } from '../lifecycle/events.js';

/**
 * Where a folder's row states live: the facts every command folds into state. The append-only local
 * journal (`journal.ts`) is the default; a shared store for a fleet of workers implements the same.
 * An event is durable once `append` resolves: the caller takes its next side effect only then.
 */
export interface StateStore {
  /** Which invocation writes (its start time): tells tonight's spending from earlier. */
  readonly session: string;
  /** A row's state, folded from its events. */
  row(key: string): RowState | undefined;
  /** Every row's state. */
  rows(): ReadonlyMap<string, RowState>;
  /** A local image's upload, by `uploadKey(provider, content hash)`. */
  upload(key: string): UploadRecord | undefined;
  append(event: NewEvent): Promise<RowState | undefined>;
  close(): Promise<void>;
}
