/**
 * Every event clipmill logs, with the fields it carries: one map for the log lines, the live block and
 * the JSON log a shipper reads. Renaming an event here is a compile error wherever it is used.
 */

/** The row an event is about, as it reads in the manifest. */
export interface RowFields {
  manifest: string;
  row: string;
  line: number;
}

type OfRow<T = object> = RowFields & T;
type Free = Record<string, unknown>;

export interface LogEvents {
  // the night: start, plan, stops
  start: Free;
  worker_start: Free;
  worker_end: Free;
  redis_unchecked: Free;
  plan: Free;
  cleanup: Free;
  compacted: { before_bytes: number; after_bytes: number; archive: string };
  compact_failed: Free;
  invalid_manifest: { file: string; line: number };
  skipped_manifests: Free;
  output_damaged: Free;
  not_retried: Free;
  manifest_changed: Free;
  edited_unfinished: Free;
  review_held: Free;
  lock_taken_over: Free;
  lock_lost: Free;
  heartbeat: Free;
  budget_reached: Partial<RowFields>;
  run_stopped: { code: string };
  reports_not_written: Free;
  row_final: Free;
  raw_output: OfRow<{ run_id: string }>;
  // images
  uploaded: Free;
  upload_gone: Free;
  // a row's life
  submitted: OfRow<{ run_id: string }>;
  submit_retry: OfRow;
  submit_unknown: OfRow;
  reconciled: OfRow<{ run_id?: string }>;
  reconcile_many: OfRow;
  reconcile_failed: OfRow;
  run_state: OfRow<{ run_id: string; state: 'queued' | 'running' }>;
  poll_retry: OfRow<{ run_id: string }>;
  poll_failed: OfRow;
  cancel_failed: OfRow;
  cost_alert: OfRow;
  succeeded: OfRow<{ run_id: string; cost_micros: number }>;
  no_video_output: OfRow<{ run_id: string }>;
  kept_previous: OfRow;
  url_refresh: OfRow;
  download_retry: OfRow;
  downloaded: OfRow;
  download_failed: OfRow;
  row_deferred: OfRow;
  row_failed: OfRow;
  // the end-of-run notice
  notified: Free;
  notify_failed: Free;
}

export type LogEventName = keyof LogEvents;
export type LogLevel = 'info' | 'warn' | 'error';

/** One logged event as the live block folds it. */
export type LoggedEvent = { [E in LogEventName]: { event: E; fields: LogEvents[E] } }[LogEventName];
