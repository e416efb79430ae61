import assert from 'node:assert/strict';
import test from 'node:test';
import { step, type Effect, type Failure, type Input, type Phase, type Step, type View } from '../src/lifecycle/machine.js';
import type { RowState } from '../src/lifecycle/events.js';
import type { RunSnapshot } from '../src/providers/provider.js';

// The row machine's money transitions as tables: each case is a row's situation, what the world answered, and
// what must follow (the bookkeeping in order, and the next command). No server: the rules are pure.

const NOW = Date.parse('2026-11-24T03:00:00Z');
const ESTIMATE = 700_000;
const RULES = {
  requestTimeoutMs: 30_000,
  jobTimeoutMs: 600_000,
  queueTimeoutMs: 900_000,
  lostAfterMs: 3_600_000,
  pollFloorMs: 1_000,
  pollCeilingMs: 60_000,
  costAlertFactor: 1.5,
  retry: { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 30_000 },
  canCancel: true,
  random: () => 0.5,
};

function row(status: RowState['status'], more: Partial<RowState> = {}): RowState {
  return { key: 'm/a', request: 'r1', status, attempts: 1, ...more };
}

function view(o: {
  phase?: Phase;
  row?: RowState;
  action?: View['facts']['action'];
  fal?: boolean;
  nowMs?: number;
  canCancel?: boolean;
  learned?: Pick<View, 'expectedRunMs' | 'expectedQueueMs'>;
}): View {
  return {
    ...o.learned,
    facts: { key: 'm/a', request: 'r1', action: o.action ?? 'submit', estimateMicros: ESTIMATE, durationSeconds: 5, lostRunMayBeBilled: o.fal ?? false },
    row: o.row,
    phase: o.phase ?? { at: 'start' },
    nowMs: o.nowMs ?? NOW,
    rules: { ...RULES, canCancel: o.canCancel ?? true },
    aborted: false,
  };
}

function failure(o: Partial<Failure> & Pick<Failure, 'kind' | 'code'>): Failure {
  return { message: `${o.code} happened`, mayHaveReachedServer: true, aborted: false, ...o };
}

/** Effects as short words a reader can check at a glance: `record:failed(billed,CODE,a<attempt>)`, `settle:0`, `log:row_failed`, `stop:credit`. */
function words(effects: Effect[]): string[] {
  return effects.flatMap((e) => {
    switch (e.do) {
      case 'record':
        return [`record:${e.event.type}${e.event.type === 'failed' ? `(${e.event.billed ? 'billed' : 'unbilled'},${e.event.code},a${e.event.attempt})` : ''}`];
      case 'log':
        return [`log:${e.event}`];
      case 'settle':
        return [`settle:${e.billedMicros}`];
      case 'stop':
        return [e.reason === 'refused' ? `stop:${e.failure.kind}` : `stop:${e.reason}`];
      case 'price_seen':
        return [`price:${e.billedMicros}`];
      default:
        return [];
    }
  });
}

const waiting: Phase = { at: 'waiting', runId: 'run-1', sinceMs: NOW - 10_000, lastState: 'running', lastSeenQueuedAtMs: NOW - 9_000 };
const snapshot = (o: Partial<RunSnapshot>): RunSnapshot => ({ runId: 'run-1', state: 'succeeded', videoUrl: 'https://cdn.example/v.mp4', ...o });

interface Case {
  name: string;
  view: View;
  input: Input;
  effects: string[];
  command: Step['command']['do'];
  check?: (s: Step) => void;
}

const cases: Case[] = [
  // the start of a night
  { name: 'new work reserves its price before anything is sent', view: view({}), input: { on: 'start' }, effects: [], command: 'reserve' },
  {
    name: 'a run already made is read at once, never created again',
    view: view({ action: 'reattach', row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'start' },
    effects: [],
    command: 'poll',
    check: (s) => assert.equal(s.command.do === 'poll' && s.command.delayMs, undefined),
  },
  {
    name: 'a lost create is looked up before anything else',
    view: view({ action: 'unknown', row: row('submitting', { clientRef: 'c1', clientRefs: ['c1'], submittingAtMs: NOW - 60_000 }) }),
    input: { on: 'start' },
    effects: [],
    command: 'look_up',
  },
  {
    name: 'a lost create with no client_ref is left unresolved, never resubmitted',
    view: view({ action: 'unknown', row: row('submitting') }),
    input: { on: 'start' },
    effects: ['log:reconcile_failed'],
    command: 'end',
  },
  {
    name: 'a forgotten lost create is looked up before paying again',
    view: view({ row: row('failed', { failure: { code: 'FORGOTTEN', message: '', billed: false }, clientRefs: ['c1'], submittingAtMs: NOW - 60_000 }) }),
    input: { on: 'start' },
    effects: [],
    command: 'look_up',
  },
  // the budget
  {
    name: 'a reservation that fits sends the next attempt',
    view: view({ phase: { at: 'reserving' }, row: row('pending', { attempts: 2 }) }),
    input: { on: 'reserved', ok: true },
    effects: [],
    command: 'create',
    check: (s) => assert.equal(s.command.do === 'create' && s.command.attempt, 3),
  },
  {
    name: 'a reservation that does not fit stops new creates',
    view: view({ phase: { at: 'reserving' } }),
    input: { on: 'reserved', ok: false },
    effects: ['stop:budget_full'],
    command: 'end',
  },
  {
    name: 'creates stopped (Ctrl-C, budget, 402) give the reservation back',
    view: view({ phase: { at: 'creating', tries: 1 } }),
    input: { on: 'submits_stopped' },
    effects: ['settle:0'],
    command: 'end',
  },
  // a create's answer
  {
    name: 'a created run is journaled at once, then polled',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'created', runId: 'run-1' },
    effects: ['record:submitted', 'log:submitted'],
    command: 'poll',
  },
  {
    name: 'a created run is first polled once it should have waited for its start and run (both learned), just after',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting'), learned: { expectedRunMs: 90_000, expectedQueueMs: 2_000 } }),
    input: { on: 'created', runId: 'run-1' },
    effects: ['record:submitted', 'log:submitted'],
    command: 'poll',
    check: (s) => assert.equal(s.command.do === 'poll' && s.command.delayMs, 92_920, 'past the 60 s ceiling: the end is learned, not guessed'),
  },
  {
    name: 'a 422 is the row failing for good, not billed',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'row', code: 'VALIDATION', status: 422 }) },
    effects: ['settle:0', 'record:failed(unbilled,VALIDATION,a1)', 'log:row_failed'],
    command: 'end',
  },
  {
    name: 'a 429 made nothing: recorded so, then retried after Retry-After',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'transient', code: 'RATE_LIMITED', status: 429, retryAfterMs: 2_500 }) },
    effects: ['record:not_submitted', 'log:submit_retry'],
    command: 'create',
    check: (s) => assert.equal(s.command.do === 'create' && s.command.delayMs, 2_500),
  },
  {
    name: 'a refused connection made nothing: retried',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'transient', code: 'NETWORK', mayHaveReachedServer: false }) },
    effects: ['record:not_submitted', 'log:submit_retry'],
    command: 'create',
  },
  {
    name: 'a 429 on the last attempt gives the money back and leaves the row for the next run',
    view: view({ phase: { at: 'creating', tries: 3 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'transient', code: 'RATE_LIMITED', status: 429 }) },
    effects: ['record:not_submitted', 'settle:0', 'log:row_deferred'],
    command: 'end',
  },
  {
    name: 'a 5xx after the body was sent may have made a run: it is looked up, never resent blindly',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting', { clientRef: 'c1', clientRefs: ['c1'] }) }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'transient', code: 'HTTP_503', status: 503 }) },
    effects: ['log:submit_unknown'],
    command: 'look_up',
  },
  {
    name: 'a timeout after the body was sent is looked up too',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting', { clientRef: 'c1', clientRefs: ['c1'] }) }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'transient', code: 'TIMEOUT' }) },
    effects: ['log:submit_unknown'],
    command: 'look_up',
  },
  {
    name: 'a create never sent (the journal refused the intent) gives the money back and stops the run',
    view: view({ phase: { at: 'creating', tries: 1 } }),
    input: { on: 'create_failed', sent: false, failure: failure({ kind: 'io', code: 'JOURNAL' }) },
    effects: ['settle:0', 'stop:io'],
    command: 'end',
  },
  {
    name: 'a 401 made nothing and stops the run',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'fatal', code: 'UNAUTHORIZED', status: 401 }) },
    effects: ['record:not_submitted', 'settle:0', 'stop:fatal'],
    command: 'end',
  },
  {
    name: 'a 402 made nothing and stops the run (runs in flight finish)',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting') }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'credit', code: 'INSUFFICIENT_CREDIT', status: 402 }) },
    effects: ['record:not_submitted', 'settle:0', 'stop:credit'],
    command: 'end',
  },
  {
    name: 'creates stopped before a reservation: nothing was reserved, nothing to give back',
    view: view({ phase: { at: 'reserving' } }),
    input: { on: 'submits_stopped' },
    effects: [],
    command: 'end',
  },
  {
    name: 'a create that failed in our own code after sending may have made a run: never concluded, the next run looks it up',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting', { attempts: 2 }) }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'internal', code: 'INTERNAL' }) },
    effects: ['log:submit_unknown'],
    command: 'end',
  },
  {
    name: 'a 422 on the third attempt is recorded with that attempt',
    view: view({ phase: { at: 'creating', tries: 1 }, row: row('submitting', { attempts: 3 }) }),
    input: { on: 'create_failed', sent: true, failure: failure({ kind: 'row', code: 'VALIDATION', status: 422 }) },
    effects: ['settle:0', 'record:failed(unbilled,VALIDATION,a3)', 'log:row_failed'],
    command: 'end',
  },
];

const lookingUp = (after: Extract<Phase, { at: 'looking_up' }>['after'], times: number[] = []): Phase => ({
  at: 'looking_up',
  sinceMs: NOW - 40_000,
  times,
  clientRefs: ['c2', 'c1'],
  after,
});
const given = failure({ kind: 'transient', code: 'HTTP_503', status: 503 });
cases.push(
  // a lost create's look-up
  {
    name: 'the run listed for the latest attempt is re-attached, not paid again',
    view: view({ phase: lookingUp({ then: 'reserve' }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'found', latest: ['run-9'], earlier: [] }, readAtMs: NOW },
    effects: ['record:submitted', 'log:reconciled'],
    command: 'poll',
  },
  {
    name: 'several listed runs: the first is followed, the others are named as possibly billed',
    view: view({ phase: lookingUp({ then: 'reserve' }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'found', latest: ['run-9'], earlier: ['run-8'] }, readAtMs: NOW },
    effects: ['log:reconcile_many', 'record:submitted', 'log:reconciled'],
    command: 'poll',
  },
  {
    name: 'an empty list read too early decides nothing: it is read again later',
    view: view({ phase: { ...lookingUp({ then: 'reserve' }, [NOW + 29_000]), sinceMs: NOW - 1_000 } as Phase, row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'none' }, readAtMs: NOW },
    effects: [],
    command: 'look_up',
  },
  {
    name: 'an empty complete list a request timeout later: not made, so the row may be submitted again',
    view: view({ phase: lookingUp({ then: 'reserve' }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'none' }, readAtMs: NOW },
    effects: ['record:not_submitted', 'log:reconciled'],
    command: 'reserve',
  },
  {
    name: 'not made, within the attempts: sent again at once',
    view: view({ phase: lookingUp({ then: 'give_up', tries: 1, failure: given }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'none' }, readAtMs: NOW },
    effects: ['record:not_submitted', 'log:reconciled'],
    command: 'create',
  },
  {
    name: 'not made, on the last attempt: money back, row left for the next run',
    view: view({ phase: lookingUp({ then: 'give_up', tries: 3, failure: given }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'none' }, readAtMs: NOW },
    effects: ['record:not_submitted', 'log:reconciled', 'settle:0', 'log:row_deferred'],
    command: 'end',
  },
  {
    name: 'a list that cannot be read leaves the create unresolved: never resubmitted, its money kept reserved',
    view: view({ phase: lookingUp({ then: 'reserve' }), row: row('submitting') }),
    input: { on: 'looked_up', answer: { kind: 'cannot_tell', reason: 'HTTP 400' }, readAtMs: NOW },
    effects: ['log:reconcile_failed'],
    command: 'end',
  },
  // a run's end
  {
    name: 'succeeded with a bill: the price and the run and queue times are learned, the bill settles the money, then the video is fetched',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ costMicros: 700_000, runMs: 28_000, queueMs: 1_500 }) },
    effects: ['price:700000', 'settle:700000', 'record:succeeded', 'log:succeeded'],
    command: 'download',
    check: (s) =>
      assert.deepEqual(
        s.effects.find((e) => e.do === 'run_time_seen'),
        { do: 'run_time_seen', runMs: 28_000, queueMs: 1_500 },
      ),
  },
  {
    name: 'succeeded without a bill: settled at the estimate',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({}) },
    effects: [`settle:${ESTIMATE}`, 'record:succeeded', 'log:succeeded'],
    command: 'download',
  },
  {
    name: 'a bill far above the estimate raises a cost alert',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ costMicros: 2_000_000 }) },
    effects: ['price:2000000', 'log:cost_alert', 'settle:2000000', 'record:succeeded', 'log:succeeded'],
    command: 'download',
  },
  {
    name: 'a run paid on an earlier night is not recorded again, only downloaded',
    view: view({ phase: waiting, row: row('succeeded', { runId: 'run-1', costMicros: 700_000 }) }),
    input: { on: 'polled', snapshot: snapshot({ costMicros: 700_000 }) },
    effects: ['price:700000', 'settle:700000'],
    command: 'download',
  },
  {
    name: 'paid, but no video in the answer: owed, never a silent loss',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ costMicros: 700_000, videoUrl: undefined as unknown as string }) },
    effects: ['price:700000', 'settle:700000', 'record:succeeded', 'log:succeeded', 'log:no_video_output'],
    command: 'end',
  },
  {
    name: 'failed: not billed, money back',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ state: 'failed', failure: { code: 'MODEL_ERROR', message: 'x' } }) },
    effects: ['settle:0', 'record:failed(unbilled,MODEL_ERROR,a1)', 'log:row_failed'],
    command: 'end',
  },
  {
    name: 'failed with a cost above zero: billed as reported',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ state: 'failed', costMicros: 100_000 }) },
    effects: ['settle:100000', 'record:failed(billed,FAILED,a1)', 'log:row_failed'],
    command: 'end',
  },
  {
    name: 'an outcome that can no longer be read: billed at the estimate',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ state: 'failed', mayBeBilled: true }) },
    effects: [`settle:${ESTIMATE}`, 'record:failed(billed,FAILED,a1)', 'log:row_failed'],
    command: 'end',
  },
);

cases.push(
  // deadlines and polls
  {
    name: 'queued past queue_timeout: cancelled where the provider can',
    view: view({ phase: { ...waiting, sinceMs: NOW - 1_000_000, lastState: 'queued' } as Phase, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'polled', snapshot: snapshot({ state: 'queued' }) },
    effects: [],
    command: 'cancel',
  },
  {
    name: 'cancelled after its deadline: failed, with its run id kept for a re-check',
    view: view({ phase: { at: 'cancelling', runId: 'run-1', code: 'QUEUE_TIMEOUT', limitMs: 900_000 }, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'cancelled', ok: true },
    effects: ['log:row_failed', 'record:failed(unbilled,QUEUE_TIMEOUT,a1)'],
    command: 'end',
    check: (s) => assert.ok(s.effects.some((e) => e.do === 'record' && e.event.type === 'failed' && e.event.runId === 'run-1')),
  },
  {
    name: 'past job_timeout where no cancel exists: failed, "it may still finish"',
    view: view({
      phase: { ...waiting, sinceMs: NOW - 700_000, lastSeenQueuedAtMs: NOW - 700_000 } as Phase,
      row: row('submitted', { runId: 'run-1' }),
      canCancel: false,
    }),
    input: { on: 'polled', snapshot: snapshot({ state: 'running' }) },
    effects: ['log:row_failed', 'record:failed(unbilled,JOB_TIMEOUT,a1)'],
    command: 'end',
    check: (s) => assert.ok(s.effects.some((e) => e.do === 'log' && e.message.includes('may still finish'))),
  },
  {
    name: 'a poll that fails for now is tried again, the run stays in flight',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'transient', code: 'HTTP_503', status: 503 }) },
    effects: ['log:poll_retry'],
    command: 'poll',
  },
  {
    name: 'a poll refused for good keeps the run recorded in flight for the next night',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'HTTP_400', status: 400 }) },
    effects: ['log:poll_failed'],
    command: 'end',
  },
  {
    name: 'polls that keep failing past job_timeout + queue_timeout end in a cancel, not polls for ever',
    view: view({ phase: { ...waiting, sinceMs: NOW - 1_600_000 } as Phase, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'transient', code: 'HTTP_503', status: 503 }) },
    effects: ['log:poll_retry'],
    command: 'cancel',
  },
  {
    name: 'a timed-out run being re-checked that cannot be read stays in flight, its failure not recorded again',
    view: view({ phase: waiting, action: 'reattach', row: row('failed', { runId: 'run-1', failure: { code: 'JOB_TIMEOUT', message: '', billed: false } }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'HTTP_400', status: 400 }) },
    effects: ['log:poll_failed'],
    command: 'end',
  },
  {
    name: 'a failed run is recorded with the attempt that made it',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1', attempts: 2 }) }),
    input: { on: 'polled', snapshot: snapshot({ state: 'failed', failure: { code: 'MODEL_ERROR', message: 'x' } }) },
    effects: ['settle:0', 'record:failed(unbilled,MODEL_ERROR,a2)', 'log:row_failed'],
    command: 'end',
  },
  // "not found"
  {
    name: 'the first 404 for a run is journaled (lost only once 404s span lost_after)',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'NOT_FOUND', status: 404 }) },
    effects: ['record:not_found', 'log:poll_failed'],
    command: 'end',
  },
  {
    name: '404s for less than lost_after: still in flight',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1', notFoundSinceMs: NOW - 60_000 }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'NOT_FOUND', status: 404 }) },
    effects: ['log:poll_failed'],
    command: 'end',
  },
  {
    name: '404s past lost_after on Runflow: recorded lost, not billed',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1', notFoundSinceMs: NOW - 3_600_000 }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'NOT_FOUND', status: 404 }) },
    effects: ['log:row_failed', 'record:failed(unbilled,RUN_LOST,a1)'],
    command: 'end',
  },
  {
    name: '404s past lost_after on fal (which forgets billed runs too): recorded lost, counted as billed',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1', notFoundSinceMs: NOW - 3_600_000 }), fal: true }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'NOT_FOUND', status: 404 }) },
    effects: ['log:row_failed', 'record:failed(billed,RUN_LOST,a1)'],
    command: 'end',
  },
  {
    name: 'Ctrl-C decides nothing about the row',
    view: view({ phase: waiting, row: row('submitted', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'internal', code: 'INTERNAL', aborted: true }) },
    effects: [],
    command: 'end',
  },
  // the video
  {
    name: 'downloaded: journaled, the row is done',
    view: view({ phase: { at: 'downloading', runId: 'run-1', tries: 1, snapshot: snapshot({}) }, row: row('succeeded', { runId: 'run-1' }) }),
    input: { on: 'downloaded', runId: 'run-1', path: 'm/a.mp4', bytes: 10, sha256: 'ab', seconds: 5, mtimeMs: 1_700_000_000_000.5 },
    effects: ['record:downloaded', 'log:downloaded'],
    command: 'end',
  },
  {
    name: 'an expired URL is replaced by reading the run again',
    view: view({ phase: { at: 'downloading', runId: 'run-1', tries: 1, snapshot: snapshot({}) }, row: row('succeeded', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'row', code: 'URL_REFUSED', status: 403 }) },
    effects: ['log:url_refresh'],
    command: 'refresh',
  },
  {
    name: 'a download cut short is retried with backoff',
    view: view({ phase: { at: 'downloading', runId: 'run-1', tries: 1, snapshot: snapshot({}) }, row: row('succeeded', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'transient', code: 'TRUNCATED' }) },
    effects: ['log:download_retry'],
    command: 'download',
  },
  {
    name: 'a paid video that cannot be fetched tonight is never written off: a rerun downloads it',
    view: view({ phase: { at: 'downloading', runId: 'run-1', tries: 3, snapshot: snapshot({}) }, row: row('succeeded', { runId: 'run-1' }) }),
    input: { on: 'failed', failure: failure({ kind: 'transient', code: 'TRUNCATED' }) },
    effects: ['log:download_failed'],
    command: 'end',
  },
);

for (const c of cases) {
  test(`row machine: ${c.name}`, () => {
    const s = step(c.view, c.input);
    assert.deepEqual(words(s.effects), c.effects);
    assert.equal(s.command.do, c.command);
    c.check?.(s);
  });
}

test('row machine: a lost create is read at 10 %, 50 % and 100 % of a request timeout after it was given up, and only then concluded', () => {
  const given = Date.parse('2026-11-24T03:00:00Z');
  let s = step(view({ action: 'unknown', nowMs: given, row: row('submitting', { clientRef: 'c1', clientRefs: ['c1'], submittingAtMs: given - 30_000 }) }), {
    on: 'start',
  });
  const reads: number[] = [];
  for (let i = 0; i < 5 && s.command.do === 'look_up'; i++) {
    reads.push(s.command.atMs - given);
    s = step(view({ phase: s.phase, nowMs: s.command.atMs, row: row('submitting', { clientRef: 'c1', clientRefs: ['c1'] }) }), {
      on: 'looked_up',
      answer: { kind: 'none' },
      readAtMs: s.command.atMs,
    });
  }
  assert.deepEqual(reads, [3_000, 15_000, 30_000]);
  assert.equal(s.command.do, 'reserve', 'not made: the row may be submitted again, within the budget');
});
