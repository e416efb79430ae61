import type { JournalEvent } from '../../lifecycle/events.js';

/** Where a rebuilt row's events came from, to say so in the report. */
export type RebuiltFrom =
  /** A video on disk and its matching sidecar. */
  | { kind: 'video'; rel: string; runId: string }
  /** A sidecar whose video is gone: the run was paid, the next run downloads it again. */
  | { kind: 'paid-run'; videoRel: string; runId: string }
  /** A damaged journal line whose create intent could still be read. */
  | { kind: 'damaged-intent'; line: number; clientRef: string };

/** One row's events that repair writes back into the journal, and what proves them. */
export interface RebuiltRow {
  key: string;
  request: string;
  /** When the events happened, to place them in the row's history. */
  at: string;
  events: JournalEvent[];
  from: RebuiltFrom;
}
