import type { ErrorKind } from '../infra/errors.js';
import type { RetryPolicy } from '../infra/retry.js';
import type { RowEvent, RowState } from './events.js';
import type { RunSnapshot, RunUrls } from '../providers/provider.js';
import type { Action } from '../plan/plan.js';
import type { LookUpAnswer } from './lost-create.js';
import type { LogEventName, LogLevel } from '../infra/log-events.js';

/** The fixed facts of one row for the night: what the plan decided and what it should cost. */
export interface RowFacts {
  key: string;
  request: string;
  action: Action;
  estimateMicros: number;
  durationSeconds: number;
  /** fal forgets requests past retention, billed ones too: a lost fal run is counted as billed. */
  lostRunMayBeBilled: boolean;
}

/** The settings the rules read, all in milliseconds. */
export interface Rules {
  requestTimeoutMs: number;
  jobTimeoutMs: number;
  queueTimeoutMs: number;
  lostAfterMs: number;
  pollFloorMs: number;
  pollCeilingMs: number;
  costAlertFactor: number;
  retry: RetryPolicy;
  /** Whether the provider can cancel a run past its deadline. */
  canCancel: boolean;
  /** Jitter for backoff: `Math.random` at night, a fixed value in tests. */
  random: () => number;
}

/** A failed call as the rules see it: already classified, never a secret in `message`. */
export interface Failure {
  kind: ErrorKind | 'io' | 'internal';
  code: string;
  message: string;
  status?: number;
  retryAfterMs?: number;
  /** False only when the request certainly never reached the server. */
  mayHaveReachedServer: boolean;
  /** Ctrl-C or a stop: the journal already says where the row stands. */
  aborted: boolean;
}

/** Where the row is within tonight's run (the journal's RowState says where it is across nights). */
export type Phase =
  | { at: 'start' }
  | { at: 'reserving' }
  | { at: 'creating'; tries: number }
  | {
      at: 'looking_up';
      sinceMs: number;
      times: number[];
      clientRefs: string[];
      after: { then: 'reserve' } | { then: 'give_up'; tries: number; failure: Failure };
    }
  | { at: 'waiting'; runId: string; sinceMs: number; lastSeenQueuedAtMs?: number; lastState?: 'queued' | 'running'; delayMs?: number }
  | { at: 'cancelling'; runId: string; code: TimeoutCode; limitMs: number }
  | { at: 'downloading'; runId: string; tries: number; snapshot: RunSnapshot; refreshing?: 'URL_REFUSED' | 'NO_OUTPUT' }
  | { at: 'ended' };

export type TimeoutCode = 'JOB_TIMEOUT' | 'QUEUE_TIMEOUT';

/** What the world answered to the last command, fed back into the machine. */
export type Input =
  | { on: 'start' }
  | { on: 'submits_stopped' }
  | { on: 'reserved'; ok: boolean }
  | { on: 'created'; runId: string; urls?: RunUrls }
  | { on: 'create_failed'; sent: boolean; failure: Failure }
  | { on: 'looked_up'; answer: LookUpAnswer; readAtMs: number }
  | { on: 'polled'; snapshot: RunSnapshot }
  | { on: 'cancelled'; ok: boolean }
  | { on: 'downloaded'; runId: string; path: string; bytes: number; sha256: string; seconds: number; mtimeMs: number }
  | { on: 'failed'; failure: Failure };

/** A row event before the journal stamps it with its time and session. */
export type EventDraft = RowEvent extends infer E ? (E extends RowEvent ? Omit<E, 'at' | 'key' | 'request' | 'session'> : never) : never;

/** Bookkeeping done at once, in order, before the next command. */
export type Effect =
  | { do: 'record'; event: EventDraft }
  | { do: 'log'; level: LogLevel; event: LogEventName; message: string; fields?: Record<string, unknown> }
  /** Settle the row's budget reservation with what was billed (0 when nothing was). */
  | { do: 'settle'; billedMicros: number }
  /** The provider's price, seen on a bill: later reservations, and those in flight, use it. */
  | { do: 'price_seen'; billedMicros: number }
  | { do: 'run_time_seen'; runMs: number; queueMs?: number }
  | { do: 'raw_output_seen'; snapshot: RunSnapshot }
  /** Stop the run: the budget is full (no more creates), or the provider refuses us / the journal cannot be written. */
  | { do: 'stop'; reason: 'budget_full' }
  | { do: 'stop'; reason: 'refused'; failure: Failure };

/** The one thing the row waits for next. */
export type Command =
  | { do: 'reserve' }
  /** Sends a create; the intent (`submitting` with a fresh client_ref) is journaled just before the bytes leave. */
  | { do: 'create'; attempt: number; delayMs?: number }
  | { do: 'look_up'; atMs: number; clientRefs: string[] }
  | { do: 'poll'; runId: string; delayMs?: number }
  | { do: 'cancel'; runId: string }
  /** Downloads the run's video; the first time, a changed row's earlier video is moved aside first. */
  | { do: 'download'; snapshot: RunSnapshot; keepPrevious: boolean; delayMs?: number }
  | { do: 'refresh'; runId: string }
  | { do: 'end' };

export interface Step {
  phase: Phase;
  effects: Effect[];
  command: Command;
}

/** What a step reads: the row's facts, the journal's state for this request, tonight's phase, the time. */
export interface View {
  facts: RowFacts;
  row: RowState | undefined;
  phase: Phase;
  nowMs: number;
  rules: Rules;
  /** Ctrl-C or a stop has begun: a failure then decides nothing about the row. */
  aborted: boolean;
  /** Tonight's learned running time for a row of this length, once runs have taught one. */
  expectedRunMs?: number;
  /** Tonight's learned wait between a create and its run starting, when the provider tells both times. */
  expectedQueueMs?: number;
}
