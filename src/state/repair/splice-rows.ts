import type { JournalEvent } from '../../lifecycle/events.js';
import type { ReadJournal } from '../journal.js';
import type { RebuiltRow } from './rebuilt-row.js';

/**
 * Where a row's rebuilt events go in the journal (after the line at the returned index; -1 = first):
 * after the row's last event for the same request, else in time order among the row's events, else at the end.
 */
export function insertionPoint(events: readonly JournalEvent[], key: string, request: string, at: string): number {
  let lastSameRequest = -1;
  let lastBefore = -1;
  let first = -1;
  const atMs = Date.parse(at);
  events.forEach((event, i) => {
    if (event.key !== key) return;
    if (first === -1) first = i;
    if (event.request === request) lastSameRequest = i;
    if (Date.parse(event.at) <= atMs) lastBefore = i;
  });
  if (lastSameRequest !== -1) return lastSameRequest;
  if (first === -1) return events.length - 1;
  return lastBefore !== -1 ? lastBefore : first - 1;
}

/**
 * The repaired journal: its readable lines in their order, each rebuilt row's events placed where they
 * belong in that row's history (rows placed at the same point in time order).
 */
export function spliceRebuiltRows(read: Pick<ReadJournal, 'events' | 'lines'>, rows: readonly RebuiltRow[]): { lines: string[]; events: JournalEvent[] } {
  const inserts = new Map<number, RebuiltRow[]>();
  for (const row of rows) {
    const at = insertionPoint(read.events, row.key, row.request, row.at);
    inserts.set(
      at,
      [...(inserts.get(at) ?? []), row].sort((a, b) => a.at.localeCompare(b.at)),
    );
  }
  const lines: string[] = [];
  const events: JournalEvent[] = [];
  const place = (i: number) => {
    for (const row of inserts.get(i) ?? []) {
      for (const event of row.events) {
        lines.push(JSON.stringify(event));
        events.push(event);
      }
    }
  };
  place(-1);
  read.lines.forEach((line, i) => {
    lines.push(line);
    events.push(read.events[i]!);
    place(i);
  });
  return { lines, events };
}
