import type { Sidecar } from '../../execute/download.js';
import type { JournalEvent, RowState } from '../../lifecycle/events.js';
import type { RebuiltFrom, RebuiltRow } from './rebuilt-row.js';

/** The time the sidecar's events are given: when the video was downloaded (or now, when that is unreadable). */
export function eventTime(sidecar: Sidecar, now: Date): string {
  const at = typeof sidecar.downloaded_at === 'string' ? Date.parse(sidecar.downloaded_at) : NaN;
  return Number.isNaN(at) ? now.toISOString() : new Date(at).toISOString();
}

/**
 * The events missing for a row the sidecar proves was paid (and, with `rel`, downloaded): `submitted`,
 * `succeeded`, `downloaded`, leaving out those the journal already holds for this request and run.
 */
export function missingEvents(sidecar: Sidecar, state: RowState | undefined, rel: string | undefined, at: string): JournalEvent[] {
  const base = { at, key: sidecar.key, request: sidecar.request };
  const sameRun = state?.request === sidecar.request && state.runId === sidecar.run_id;
  const events: JournalEvent[] = [];
  if (!(sameRun && ['submitted', 'succeeded', 'downloaded'].includes(state.status))) events.push({ ...base, type: 'submitted', runId: sidecar.run_id });
  if (!(sameRun && (state.status === 'succeeded' || state.status === 'downloaded'))) {
    events.push({ ...base, type: 'succeeded', runId: sidecar.run_id, ...(sidecar.cost_micros !== undefined && { costMicros: sidecar.cost_micros }) });
  }
  if (rel !== undefined)
    events.push({
      ...base,
      type: 'downloaded',
      runId: sidecar.run_id,
      path: rel,
      bytes: sidecar.bytes,
      sha256: sidecar.sha256,
      seconds: sidecar.seconds,
      ...(sidecar.mtime_ms !== undefined && { mtimeMs: sidecar.mtime_ms }),
    });
  return events;
}

/** The row a sidecar rebuilds: its missing events (with `downloaded` when its video is there), timed by the sidecar. */
export function rowFromSidecar(sidecar: Sidecar, state: RowState | undefined, from: RebuiltFrom, now: Date): RebuiltRow {
  const at = eventTime(sidecar, now);
  const events = missingEvents(sidecar, state, from.kind === 'video' ? from.rel : undefined, at);
  return { key: sidecar.key, request: sidecar.request, at, events, from };
}
