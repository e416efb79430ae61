import {
  applyEvent,
  isRowEvent,
  type PlannedItem,
  type RowEvent,
  uploadKey,
  type JournalEvent,
  type RowState,
  type UploadRecord,
} from '../lifecycle/events.js';
import { LedgerFold, type BilledRun } from '../money/ledger.js';
import { applyPlanned, type RecordedPlan } from './plans.js';

export interface ReplayOptions {
  /** Keep the last plan's rows (a report is rebuilt from them); otherwise only keys and fingerprints. */
  planItems?: boolean;
  /** Keep every client_ref each row's creates carried (compaction). */
  submits?: boolean;
}

/**
 * What a folder's events add up to, folded one event at a time: every row's state, the uploaded images,
 * the billing ledger and the last recorded plan. Nothing else of the events is kept, so memory follows the
 * rows, not the nights.
 */
export class Replay {
  readonly states = new Map<string, RowState>();
  readonly uploads = new Map<string, UploadRecord>();
  private readonly ledger = new LedgerFold();
  private plan: RecordedPlan | undefined;
  /** Each night's session string once (every event of a night carries one). */
  private readonly sessions = new Map<string, string>();
  /** Events folded so far. */
  applied = 0;

  /**
   * The review notes plans recorded (`row.review`), by row key: only rows that had any, the last recorded for each.
   * A lost review.json then takes no row back to a version the journal has moved past.
   */
  readonly reviews = new Map<string, NonNullable<PlannedItem['row']['review']>>();

  /** With `submits`: every client_ref each row's creates carried (compaction keeps them for `clipmill audit`). */
  readonly submits = new Map<string, string[]>();

  constructor(private readonly options: ReplayOptions = {}) {}

  /** Folds one event; returns the row's new state when the event was about a row. */
  apply(event: JournalEvent): RowState | undefined {
    this.applied++;
    this.share(event);
    this.ledger.apply(event);
    if (event.type === 'uploaded') {
      const provider = event.provider ?? 'runflow';
      this.uploads.set(uploadKey(provider, event.request), { assetId: event.assetId, provider });
      return undefined;
    }
    if (event.type === 'planned') {
      this.plan = applyPlanned(this.plan, event, this.options.planItems ?? false);
      for (const [key, review] of Object.entries(event.reviews ?? {})) this.reviews.set(key, review);
      for (const item of event.items) if (item.row.review !== undefined) this.reviews.set(item.key, item.row.review);
      return undefined;
    }
    if (!isRowEvent(event)) return undefined;
    if (this.options.submits === true) this.noteSubmits(event);
    const state = applyEvent(this.states.get(event.key), event);
    this.states.set(event.key, state);
    return state;
  }

  private noteSubmits(event: RowEvent): void {
    const refs =
      event.type === 'submitting' ? (event.clientRef === undefined ? [] : [event.clientRef]) : event.type === 'row_state' ? (event.submits ?? []) : [];
    if (refs.length > 0) this.submits.set(event.key, [...(this.submits.get(event.key) ?? []), ...refs]);
  }

  /**
   * Points an event's repeated strings (its row's key, request and run id, its night) at the copies the fold
   * already holds: each parsed line brings its own, and 100,000 rows would keep several of each.
   */
  private share(event: JournalEvent): void {
    if (event.session !== undefined) {
      const session = this.sessions.get(event.session) ?? event.session;
      this.sessions.set(session, session);
      event.session = session;
    }
    const known = this.states.get(event.key);
    if (known === undefined) return;
    event.key = known.key;
    if (event.request === known.request) event.request = known.request;
    if ('runId' in event && typeof known.runId === 'string' && event.runId === known.runId) event.runId = known.runId;
  }

  /** The last plan recorded, rebuilt from its whole record and the differences since. */
  get lastPlan(): RecordedPlan | undefined {
    return this.plan;
  }

  /** How many runs the ledger knows. */
  get runCount(): number {
    return this.ledger.runCount;
  }

  /** Every run the ledger knows, as a compacted journal writes it down. */
  runFacts(): Iterable<Extract<JournalEvent, { type: 'run' }>> {
    return this.ledger.runFacts();
  }

  /** Every billed run; a run whose plan was lost counts at `fallbackEstimates` (by key and request). */
  billedRuns(fallbackEstimates?: ReadonlyMap<string, number>): BilledRun[] {
    return this.ledger.billedRuns(fallbackEstimates);
  }

  static of(events: Iterable<JournalEvent>, options: ReplayOptions = {}): Replay {
    const replay = new Replay(options);
    for (const event of events) replay.apply(event);
    return replay;
  }
}
