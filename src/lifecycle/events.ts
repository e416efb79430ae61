import type { Row } from '../load/row.js';
import type { AudioMode } from '../money/cost.js';
import type { RunUrls } from '../providers/provider.js';

/** The journal's vocabulary: one line per state change of a row, appended before the next side effect. */
interface EventBase {
  /** ISO time the event was recorded. */
  at: string;
  /** `<manifest>/<row id>`: the row's identity across runs. */
  key: string;
  /** Hash of the request as sent (local images by content); a changed row is new work. */
  request: string;
  /** Which invocation of `clipmill run` wrote the event (its start time), to tell tonight's spending from earlier. */
  session?: string;
}

export type JournalEvent =
  /** Written before the create is sent; `clientRef` is the token the run can be found again by. */
  | (EventBase & { type: 'submitting'; attempt: number; clientRef?: string })
  | (EventBase & { type: 'submitted'; runId: string; urls?: RunUrls })
  /** The create certainly made no run (refused before reaching the provider, or rejected by it). */
  | (EventBase & { type: 'not_submitted'; code: string; message: string })
  /** Generated and paid; the video URL is not kept (it is presigned): it is fetched again from the run. */
  | (EventBase & { type: 'succeeded'; runId: string; costMicros?: number })
  /** The provider answered 404 for the run (the first time since it was last seen): lost only once 404s span `lost_after`. */
  | (EventBase & { type: 'not_found'; runId: string })
  /** `mtimeMs`: the file's modification time once in place; with its size it says the file is unchanged without reading it. */
  | (EventBase & { type: 'downloaded'; runId: string; path: string; bytes: number; sha256: string; seconds: number; mtimeMs?: number })
  | (EventBase & { type: 'failed'; runId?: string; code: string; message: string; attempt: number; billed: boolean; costMicros?: number })
  /** A local image was uploaded (key `upload:<provider>:<sha256>`, request = the sha256): its asset id, never its signed URL. */
  | (EventBase & { type: 'uploaded'; assetId: string; provider?: string })
  /**
   * What a run set out to do (key `plan:<session>`): lets `clipmill report` rebuild the reports from the journal alone.
   * With `base`, only the rows that differ from that session's plan, and `keys` (the row order) only when it changed.
   * `reviews` (a compacted journal): the review notes every earlier plan recorded, by row key, rows outside this plan too.
   */
  | (EventBase & {
      type: 'planned';
      provider: string;
      manifests: PlannedManifest[];
      items: PlannedItem[];
      base?: string;
      keys?: string[];
      reviews?: Record<string, NonNullable<Row['review']>>;
    })
  /** A compacted journal (`clipmill compact`): a row's whole state, in place of the events that made it. */
  | (EventBase & { type: 'row_state'; state: RowState; submits?: string[] })
  /**
   * A compacted journal: a run the ledger knows, billed or not, in place of the events that recorded it; `at` is
   * when its id was first recorded, `session` the night whose create made it, with what its plan said of it.
   */
  | (EventBase & {
      type: 'run';
      runId: string;
      billed?: { costMicros?: number };
      /** Not finished as far as the journal knows (still open when compacted). */
      open?: true;
      /** Left unfinished when its row was edited: no one polls it, so it counts at its estimate for good. */
      abandoned?: true;
      planned?: { estimateMicros: number; seconds: number; audioMode: AudioMode };
    });

export interface PlannedManifest {
  name: string;
  file: string;
  shown: string;
  /** A manifest read from a URL: the sha256 of the rows it was read as, so a sheet changed between nights is seen. */
  sha256?: string;
}

/** A plan item as recorded: the row as validated, and what the run decided for it. */
export interface PlannedItem {
  key: string;
  request: string;
  /** Recorded only when the budget (`over_budget`) or `--only` (`not_selected`) left the row out: every other action follows from the row's state. */
  action?: string;
  estimateMicros: number;
  changed: boolean;
  /** The row as validated; its `file` (shown relative to where clipmill ran) is left out of newer records: the manifest's is kept once. */
  row: Omit<Row, 'file'> & { file?: string };
}

/** Events about a row's state (a `run` fact is the ledger's alone). */
export type RowEvent = Exclude<JournalEvent, { type: 'uploaded' | 'planned' | 'run' }>;

/** An event before the journal stamps its time. */
export type NewEvent = JournalEvent extends infer E ? (E extends JournalEvent ? Omit<E, 'at'> : never) : never;

export interface UploadRecord {
  assetId: string;
  provider: string;
}

/** Uploads are per provider (an asset id means nothing to the other one); journals from before providers were recorded hold Runflow's. */
export function uploadKey(provider: string, sha256: string): string {
  return `upload:${provider}:${sha256}`;
}

/** Where a row stands after replaying its events. */
export interface RowState {
  key: string;
  request: string;
  status: 'submitting' | 'submitted' | 'pending' | 'succeeded' | 'downloaded' | 'failed';
  /** Submissions attempted for this request (each `submitting`). */
  attempts: number;
  runId?: string;
  /** When the provider first answered 404 for this run (it is recorded lost once 404s have lasted `lost_after`). */
  notFoundSinceMs?: number;
  /** The client_ref of the last create attempt, and when it was sent: a lost create is looked up by it. */
  clientRef?: string;
  /** The client_refs of attempts since the row last had a known run whose creates may still have made one, oldest first: a late run of an earlier attempt is ours too. */
  clientRefs?: string[];
  submittingAtMs?: number;
  /** The session whose create made the run: the money is this session's. */
  submittedIn?: string;
  /** The provider's own addresses for the run (fal), kept for resume. */
  runUrls?: RunUrls;
  costMicros?: number;
  output?: { path: string; bytes: number; sha256: string; seconds: number; mtimeMs?: number };
  failure?: { code: string; message: string; billed: boolean };
  /** The last video downloaded for an earlier version of this row (the manifest row was edited since). */
  previous?: { request: string; output: NonNullable<RowState['output']> };
}

/** A row's state when its request changes: new work, remembering the last video of the old version. */
function fresh(previous: RowState | undefined, event: RowEvent): RowState {
  const state: RowState = { key: event.key, request: event.request, status: 'pending', attempts: 0 };
  const kept = previous?.output ? { request: previous.request, output: previous.output } : previous?.previous;
  if (kept) state.previous = kept;
  return state;
}

/** A new create attempt: the earlier run and failure are forgotten, the attempt's client_ref remembered until it is resolved. */
function submitting(base: RowState, event: Extract<RowEvent, { type: 'submitting' }>): RowState {
  const { runId: _run, failure: _failure, submittedIn: _in, runUrls: _urls, clientRef: _ref, ...kept } = base;
  return {
    ...kept,
    status: 'submitting',
    attempts: Math.max(base.attempts + 1, event.attempt),
    submittingAtMs: Date.parse(event.at),
    ...(event.clientRef !== undefined && { clientRef: event.clientRef, clientRefs: [...(base.clientRefs ?? []), event.clientRef] }),
  };
}

/** Folds one event into a row's state (pure). An event for another request starts the row afresh. */
export function applyEvent(previous: RowState | undefined, event: RowEvent): RowState {
  return shaped(nextState(previous, event));
}

/**
 * The state rebuilt with its fields in one fixed order. Rest spreads and deletes gave every row's state a
 * hidden class of its own: 21 MB of V8 shapes at 60,000 rows, where one order shares a handful.
 */
function shaped(s: RowState): RowState {
  const out: Record<string, unknown> = {};
  for (const field of STATE_FIELDS) if (s[field] !== undefined) out[field] = s[field];
  return out as unknown as RowState;
}

const STATE_FIELDS = [
  'key',
  'request',
  'status',
  'attempts',
  'runId',
  'notFoundSinceMs',
  'clientRef',
  'clientRefs',
  'submittingAtMs',
  'submittedIn',
  'runUrls',
  'costMicros',
  'output',
  'failure',
  'previous',
] as const satisfies readonly (keyof RowState)[];
// A field added to RowState but not listed would be dropped from every state: this fails to compile instead.
const EVERY_STATE_FIELD: Exclude<keyof RowState, (typeof STATE_FIELDS)[number]> extends never ? true : never = true;
void EVERY_STATE_FIELD;

function nextState(previous: RowState | undefined, event: RowEvent): RowState {
  if (event.type === 'row_state') return event.state;
  const base: RowState = previous?.request === event.request ? { ...previous } : fresh(previous, event);
  switch (event.type) {
    case 'submitting':
      return submitting(base, event);
    case 'submitted': {
      // The row has its run: earlier lost attempts were each concluded "not made" before a new one was sent.
      delete base.clientRefs;
      const next: RowState = { ...base, status: 'submitted', runId: event.runId };
      if (event.session !== undefined) next.submittedIn = event.session;
      if (event.urls !== undefined) next.runUrls = event.urls;
      return next;
    }
    case 'not_found':
      return base.notFoundSinceMs === undefined ? { ...base, notFoundSinceMs: Date.parse(event.at) } : base;
    case 'not_submitted': {
      // Certainly not made (refused, answered): that attempt's client_ref cannot turn up. "Not listed" (NOT_CREATED) still might, late.
      const clientRefs = event.code === 'NOT_CREATED' ? base.clientRefs : base.clientRefs?.slice(0, -1);
      const next: RowState = { ...base, status: 'pending' };
      if (clientRefs && clientRefs.length > 0) next.clientRefs = clientRefs;
      else delete next.clientRefs;
      return next;
    }
    case 'succeeded': {
      delete base.notFoundSinceMs;
      const next: RowState = { ...base, status: 'succeeded', runId: event.runId };
      if (event.costMicros !== undefined) next.costMicros = event.costMicros;
      return next;
    }
    case 'downloaded':
      return {
        ...base,
        status: 'downloaded',
        runId: event.runId,
        output: {
          path: event.path,
          bytes: event.bytes,
          sha256: event.sha256,
          seconds: event.seconds,
          ...(event.mtimeMs !== undefined && { mtimeMs: event.mtimeMs }),
        },
      };
    case 'failed': {
      // A forgotten lost create keeps its client_refs: a later --retry-failed looks them up before paying again.
      if (event.code !== 'FORGOTTEN') delete base.clientRefs;
      const next: RowState = { ...base, status: 'failed', failure: { code: event.code, message: event.message, billed: event.billed } };
      if (event.runId !== undefined) next.runId = event.runId;
      if (event.costMicros !== undefined) next.costMicros = event.costMicros;
      return next;
    }
  }
}

export function foldEvents(events: Iterable<JournalEvent>): Map<string, RowState> {
  const states = new Map<string, RowState>();
  for (const event of events) if (isRowEvent(event)) states.set(event.key, applyEvent(states.get(event.key), event));
  return states;
}

export function isRowEvent(event: JournalEvent): event is RowEvent {
  return event.type !== 'uploaded' && event.type !== 'planned' && event.type !== 'run';
}

/** The hashes of the videos an event says were downloaded (a compacted row's, and its earlier version's). */
export function downloadedSha256s(event: JournalEvent): string[] {
  if (event.type === 'downloaded') return [event.sha256];
  if (event.type !== 'row_state') return [];
  return [event.state.output?.sha256, event.state.previous?.output.sha256].filter((sha): sha is string => sha !== undefined);
}
