import { audioModeOf, type AudioMode } from './cost.js';
import type { JournalEvent, PlannedItem } from '../lifecycle/events.js';

/** One run the provider billed (or may have), as the journal knows it: what finance matches against the invoice. */
export interface BilledRun {
  runId: string;
  key: string;
  request: string;
  /** When the run was created, as far as the journal knows (the event that recorded its id). */
  createdAt: string;
  /** The `clipmill run` (its start time) whose create made the run. */
  night: string | undefined;
  seconds: number | undefined;
  audioMode: AudioMode | undefined;
  costMicros: number;
  costSource: 'provider' | 'estimate';
  /** The row was edited since: this run's video is an earlier version, but it was paid for. */
  superseded: boolean;
  estimateMicros: number | undefined;
}

interface RunFacts {
  key: string;
  request: string;
  createdAt: string;
  night: string | undefined;
  billed?: { costMicros: number | undefined };
}

/**
 * Pure: every billed run in a journal, once each, including runs of rows edited since (superseded) and of
 * earlier nights. A succeeded run is billed at the provider's cost, or at the plan's estimate when it
 * reported none; a failed run only when it was recorded billed.
 */
export function billedRuns(events: readonly JournalEvent[], fallbackEstimates: ReadonlyMap<string, number> = new Map()): BilledRun[] {
  const runs = new Map<string, RunFacts>();
  const latestRequest = new Map<string, string>();
  const planned = new Map<string, PlannedItem>();
  for (const event of events) {
    if (event.type === 'planned') {
      for (const item of event.items) planned.set(`${item.key}\u0000${item.request}`, item);
      continue;
    }
    if (event.type === 'uploaded') continue;
    latestRequest.set(event.key, event.request);
    const runId = 'runId' in event ? event.runId : undefined;
    if (runId === undefined) continue;
    const facts = runs.get(runId) ?? { key: event.key, request: event.request, createdAt: event.at, night: event.session };
    runs.set(runId, facts);
    if (event.type === 'succeeded') facts.billed = { costMicros: event.costMicros ?? facts.billed?.costMicros };
    if (event.type === 'downloaded' && !facts.billed) facts.billed = { costMicros: undefined };
    if (event.type === 'failed') {
      if (event.billed) facts.billed = { costMicros: event.costMicros };
      else delete facts.billed;
    }
  }
  const out: BilledRun[] = [];
  for (const [runId, facts] of runs) {
    if (!facts.billed) continue;
    const item = planned.get(`${facts.key}\u0000${facts.request}`);
    const estimate = item?.estimateMicros ?? fallbackEstimates.get(`${facts.key}\u0000${facts.request}`);
    const cost = facts.billed.costMicros ?? estimate ?? 0;
    out.push({
      runId,
      key: facts.key,
      request: facts.request,
      createdAt: facts.createdAt,
      night: facts.night,
      seconds: item?.row.request.durationSeconds,
      audioMode: item ? audioModeOf(item.row.request) : undefined,
      costMicros: cost,
      costSource: facts.billed.costMicros !== undefined ? 'provider' : 'estimate',
      superseded: latestRequest.get(facts.key) !== facts.request,
      estimateMicros: estimate,
    });
  }
  return out;
}
