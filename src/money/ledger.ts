import { audioModeOf, type AudioMode } from './cost.js';
import type { JournalEvent } from '../lifecycle/events.js';
import { TIMEOUT_CODES } from '../lifecycle/timeouts.js';

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
  /** Not finished as far as the journal knows (in flight, or past our deadline): it may still be billed. */
  open?: boolean;
  /** Left unfinished when its row moved to another request: polled by no one again, so it counts at its estimate for good. */
  abandoned?: boolean;
}

/** What a plan said of a row's request, all the ledger needs of it (not the whole row). */
interface PlannedFacts {
  estimateMicros: number;
  seconds: number;
  audioMode: AudioMode;
}

/**
 * Every billed run in a journal, once each, including runs of rows edited since (superseded) and of earlier
 * nights, folded one event at a time (a 100,000-row journal is never held whole). A succeeded run is billed
 * at the provider's cost, or at the plan's estimate when it reported none; a failed run only when it was
 * recorded billed.
 */
export class LedgerFold {
  private readonly runs = new Map<string, RunFacts>();
  private readonly latestRequest = new Map<string, string>();
  /** Each row's last run, to mark it abandoned when the row moves on while it is unfinished. */
  private readonly lastRun = new Map<string, string>();
  private readonly planned = new Map<string, PlannedFacts>();

  apply(event: JournalEvent): void {
    if (event.type === 'planned') {
      for (const item of event.items) {
        this.planned.set(`${item.key}\u0000${item.request}`, {
          estimateMicros: item.estimateMicros,
          seconds: item.row.request.durationSeconds,
          audioMode: audioModeOf(item.row.request),
        });
      }
      return;
    }
    if (event.type === 'uploaded') return;
    if (event.type === 'run') {
      this.runFact(event);
      return;
    }
    this.latestRequest.set(event.key, event.request);
    this.abandonOnMove(event.key, event.request);
    const runId = 'runId' in event ? event.runId : undefined;
    if (runId === undefined) return;
    const facts = this.runs.get(runId) ?? { key: event.key, request: event.request, createdAt: event.at, night: event.session };
    this.runs.set(runId, facts);
    this.lastRun.set(event.key, runId);
    if (event.type === 'submitted') facts.open = true;
    if (event.type === 'succeeded' || event.type === 'downloaded') delete facts.open;
    if (event.type === 'failed' && !TIMEOUT_CODES.has(event.code)) delete facts.open;
    if (event.type === 'succeeded') facts.billed = { costMicros: event.costMicros ?? facts.billed?.costMicros };
    if (event.type === 'downloaded' && !facts.billed) facts.billed = { costMicros: undefined };
    if (event.type === 'failed') {
      if (event.billed) facts.billed = { costMicros: event.costMicros };
      else delete facts.billed;
    }
  }

  /** A row's event for another request than its last run's, while that run is unfinished: the run is abandoned (an edit back does not revive it). */
  private abandonOnMove(key: string, request: string): void {
    const runId = this.lastRun.get(key);
    const facts = runId === undefined ? undefined : this.runs.get(runId);
    if (facts?.open === true && facts.request !== request) facts.abandoned = true;
  }

  /** A compacted journal's run: the facts as they were, and what its plan said of it. */
  private runFact(event: Extract<JournalEvent, { type: 'run' }>): void {
    const facts: RunFacts = { key: event.key, request: event.request, createdAt: event.at, night: event.session };
    if (event.billed) facts.billed = { costMicros: event.billed.costMicros };
    if (event.open === true) facts.open = true;
    if (event.abandoned === true) facts.abandoned = true;
    this.runs.set(event.runId, facts);
    this.lastRun.set(event.key, event.runId);
    const planned = `${event.key}\u0000${event.request}`;
    if (event.planned && !this.planned.has(planned)) this.planned.set(planned, event.planned);
  }

  /** How many runs are known, billed or not. */
  get runCount(): number {
    return this.runs.size;
  }

  /** Every run known, billed or not, with its plan's facts when known: what a compacted journal writes down. */
  *runFacts(): Generator<Extract<JournalEvent, { type: 'run' }>> {
    for (const [runId, facts] of this.runs) {
      const planned = this.planned.get(`${facts.key}\u0000${facts.request}`);
      yield {
        type: 'run',
        at: facts.createdAt,
        key: facts.key,
        request: facts.request,
        ...(facts.night !== undefined && { session: facts.night }),
        runId,
        ...(facts.billed && { billed: facts.billed.costMicros === undefined ? {} : { costMicros: facts.billed.costMicros } }),
        ...(facts.open === true && { open: true }),
        ...(facts.abandoned === true && { abandoned: true }),
        ...(planned && { planned }),
      };
    }
  }

  /** The billed runs so far; a run whose plan was lost (a repaired journal) counts at `fallbackEstimates` (by key and request). */
  billedRuns(fallbackEstimates: ReadonlyMap<string, number> = new Map()): BilledRun[] {
    const out: BilledRun[] = [];
    for (const [runId, facts] of this.runs) {
      const superseded = this.latestRequest.get(facts.key) !== facts.request;
      // A run left unfinished when its row was edited is polled by no one: the provider may still bill it, so it counts at its estimate.
      if (!facts.billed && facts.abandoned !== true) continue;
      const item = this.planned.get(`${facts.key}\u0000${facts.request}`);
      const estimate = item?.estimateMicros ?? fallbackEstimates.get(`${facts.key}\u0000${facts.request}`);
      out.push({
        runId,
        key: facts.key,
        request: facts.request,
        createdAt: facts.createdAt,
        night: facts.night,
        seconds: item?.seconds,
        audioMode: item?.audioMode,
        costMicros: facts.billed?.costMicros ?? estimate ?? 0,
        costSource: facts.billed?.costMicros !== undefined ? 'provider' : 'estimate',
        superseded,
        estimateMicros: estimate,
      });
    }
    return out;
  }
}

/** Pure: the billed runs of a list of events (see LedgerFold). */
export function billedRuns(events: readonly JournalEvent[], fallbackEstimates: ReadonlyMap<string, number> = new Map()): BilledRun[] {
  const fold = new LedgerFold();
  for (const event of events) fold.apply(event);
  return fold.billedRuns(fallbackEstimates);
}
