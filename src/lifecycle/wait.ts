import { formatDurationMs } from '../config/pipeline.js';
import { formatUsd } from '../money/cost.js';
import { backoffMs } from '../infra/retry.js';
import { redactJson } from '../infra/http.js';
import { nextPollDelayMs } from '../execute/polling.js';
import type { RunSnapshot } from '../providers/provider.js';
import { rowErrorEffects } from './row-error.js';
import type { Effect, Failure, Input, Phase, Step, TimeoutCode, View } from './types.js';
import { end, record, say, settle } from './steps.js';

type Waiting = Extract<Phase, { at: 'waiting' }>;

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);
const expected = (view: View) => (view.expectedRunMs === undefined ? {} : { expectedRunMs: view.expectedRunMs });
const queue = (view: View) => (view.expectedQueueMs === undefined ? {} : { expectedQueueMs: view.expectedQueueMs });
const bounds = (view: View) => ({ floorMs: view.rules.pollFloorMs, ceilingMs: view.rules.pollCeilingMs });

/**
 * Starts waiting for a run: a run just created is polled when it can first be done; one re-attached
 * or to be downloaded is read at once.
 */
export function waitFor(view: View, runId: string, justSubmitted: boolean, effects: Effect[] = []): Step {
  const sinceMs = view.nowMs;
  if (!justSubmitted) return { phase: { at: 'waiting', runId, sinceMs }, effects, command: { do: 'poll', runId } };
  // Just created: it must wait for its start, then run; the wait is learned too, or the first poll lands just before the end.
  const delayMs = nextPollDelayMs({ now: sinceMs, state: 'queued', justCreated: true, ...expected(view), ...queue(view) }, bounds(view));
  return {
    phase: { at: 'waiting', runId, sinceMs, lastSeenQueuedAtMs: sinceMs, lastState: 'queued', delayMs },
    effects,
    command: { do: 'poll', runId, delayMs },
  };
}

/**
 * One poll's answer. Polls are timed from what is known instead of blindly; queue time and running time
 * have their own deadlines; a poll that fails is not the run failing: it is tried again until the deadline.
 */
export function onWaiting(view: View, input: Input, phase: Waiting): Step {
  const { rules, nowMs } = view;
  if (input.on === 'failed') {
    if (input.failure.kind !== 'transient' || input.failure.aborted) return end(rowErrorEffects(view.facts, view.row, input.failure, nowMs, rules));
    const delayMs = Math.max(rules.pollFloorMs, backoffMs(rules.retry.maxAttempts, rules.retry, rules.random));
    const effects: Effect[] = [say('warn', 'poll_retry', `${input.failure.message}; polling again in ${delayMs} ms`, { run_id: phase.runId })];
    const limitMs = rules.jobTimeoutMs + rules.queueTimeoutMs;
    if (nowMs - phase.sinceMs > limitMs) return timeOut(view, phase.runId, 'JOB_TIMEOUT', limitMs, effects);
    return { phase: { ...phase, delayMs }, effects, command: { do: 'poll', runId: phase.runId, delayMs } };
  }
  if (input.on !== 'polled') return end();
  const { snapshot } = input;
  if (snapshot.state === 'succeeded') return onSucceeded(view, phase, snapshot);
  if (TERMINAL.has(snapshot.state)) return onEndedUnpaid(view, phase, snapshot);
  const state: 'queued' | 'running' = snapshot.state === 'queued' ? 'queued' : 'running';
  const effects: Effect[] = [];
  if (state !== phase.lastState) effects.push(say('info', 'run_state', `run ${phase.runId} ${state}`, { run_id: phase.runId, state }));
  const lastSeenQueuedAtMs = state === 'queued' ? nowMs : phase.lastSeenQueuedAtMs;
  if (state === 'queued' && nowMs - phase.sinceMs > rules.queueTimeoutMs) return timeOut(view, phase.runId, 'QUEUE_TIMEOUT', rules.queueTimeoutMs, effects);
  // Without the provider's start time, the last time it was seen queued is the earliest it can have started.
  const startedAtMs = snapshot.startedAtMs ?? lastSeenQueuedAtMs ?? (view.expectedRunMs !== undefined ? nowMs - view.expectedRunMs : nowMs);
  if (state === 'running' && nowMs - startedAtMs > rules.jobTimeoutMs) return timeOut(view, phase.runId, 'JOB_TIMEOUT', rules.jobTimeoutMs, effects);
  const situation = { now: nowMs, state, startedAtMs, ...expected(view), ...(phase.delayMs !== undefined && { previousDelayMs: phase.delayMs }) };
  const delayMs = nextPollDelayMs(situation, bounds(view));
  const next: Waiting = { ...phase, lastState: state, delayMs, ...(lastSeenQueuedAtMs !== undefined && { lastSeenQueuedAtMs }) };
  return { phase: next, effects, command: { do: 'poll', runId: phase.runId, delayMs } };
}

/** Generated and paid: the money is settled at the provider's bill (or the estimate), then the video is fetched. */
function onSucceeded(view: View, phase: Waiting, snapshot: RunSnapshot): Step {
  const { facts, row, nowMs } = view;
  const { runId } = phase;
  const effects: Effect[] = [];
  const startedAt = snapshot.startedAtMs ?? phase.lastSeenQueuedAtMs;
  const runMs = snapshot.runMs ?? (startedAt !== undefined ? nowMs - startedAt : undefined);
  if (runMs !== undefined) effects.push({ do: 'run_time_seen', runMs, ...(snapshot.queueMs !== undefined && { queueMs: snapshot.queueMs }) });
  if (snapshot.costMicros !== undefined) effects.push(...costEffects(view, snapshot.costMicros));
  const cost = snapshot.costMicros ?? facts.estimateMicros;
  effects.push(settle(cost));
  const wasPaid = row?.status === 'succeeded' || row?.status === 'downloaded';
  if (!wasPaid) {
    effects.push(
      record({ type: 'succeeded', runId, ...(snapshot.costMicros !== undefined && { costMicros: snapshot.costMicros }) }),
      say('info', 'succeeded', `run ${runId} succeeded (${formatUsd(cost)}${snapshot.costMicros === undefined ? ', estimated' : ''})`, {
        run_id: runId,
        cost_micros: cost,
      }),
    );
  }
  effects.push({ do: 'raw_output_seen', snapshot });
  if (snapshot.videoUrl === undefined) {
    // Paid for but no video in the answer: never a silent loss. The row stays owed and the next run reads the run again.
    const output = JSON.stringify(redactJson(snapshot.rawOutput ?? null));
    const message = `run ${runId} succeeded but its output holds no video; the row stays owed and the next run reads the run again. Output as received: ${output}`;
    return end([...effects, say('error', 'no_video_output', message, { run_id: runId })]);
  }
  return { phase: { at: 'downloading', runId, tries: 1, snapshot }, effects, command: { do: 'download', snapshot, keepPrevious: true } };
}

/** A bill far above its estimate is flagged (a price change, a mistake); later reservations use the price seen. */
function costEffects(view: View, billedMicros: number): Effect[] {
  const { facts, rules } = view;
  const effects: Effect[] = [{ do: 'price_seen', billedMicros }];
  if (billedMicros > facts.estimateMicros * rules.costAlertFactor) {
    const message = `billed ${formatUsd(billedMicros)}, more than ${rules.costAlertFactor}× its estimate of ${formatUsd(facts.estimateMicros)}: check the provider's prices and the pipeline's pricing`;
    effects.push(say('warn', 'cost_alert', message));
  }
  return effects;
}

/** Failed or canceled: not billed (PROVIDERS.md), unless a cost above zero is reported or the outcome can no longer be read. */
function onEndedUnpaid(view: View, phase: Waiting, snapshot: RunSnapshot): Step {
  const { facts, row } = view;
  const { runId } = phase;
  const failure = snapshot.failure ?? { code: snapshot.state.toUpperCase(), message: `the run ended as ${snapshot.state}` };
  const costMicros = snapshot.costMicros ?? (snapshot.mayBeBilled ? row?.costMicros : undefined);
  const billed = (costMicros ?? 0) > 0 || snapshot.mayBeBilled === true;
  const event = {
    type: 'failed',
    runId,
    code: failure.code,
    message: `run ${runId} ${snapshot.state}: ${failure.message}`,
    attempt: row?.attempts ?? 1,
    billed,
    ...(costMicros !== undefined && { costMicros }),
  } as const;
  return end([
    settle(costMicros ?? (billed ? facts.estimateMicros : 0)),
    record(event),
    say('error', 'row_failed', `run ${runId} ${snapshot.state}: ${failure.code}: ${failure.message}`),
  ]);
}

/** A run past its deadline: cancelled where the provider allows it, then reported as timed out. */
function timeOut(view: View, runId: string, code: TimeoutCode, limitMs: number, effects: Effect[]): Step {
  if (view.rules.canCancel) return { phase: { at: 'cancelling', runId, code, limitMs }, effects, command: { do: 'cancel', runId } };
  return end([...effects, ...rowErrorEffects(view.facts, view.row, timeoutFailure(runId, code, limitMs, false, view.aborted), view.nowMs, view.rules)]);
}

export function onCancelling(view: View, input: Input, phase: Extract<Phase, { at: 'cancelling' }>): Step {
  const effects: Effect[] = [];
  const cancelled = input.on === 'cancelled' && input.ok;
  if (input.on === 'cancelled' && !input.ok)
    effects.push(say('warn', 'cancel_failed', `run ${phase.runId} could not be cancelled: the provider says it already finished`));
  if (input.on === 'failed') effects.push(say('warn', 'cancel_failed', `could not cancel run ${phase.runId}: ${input.failure.message}`));
  return end([
    ...effects,
    ...rowErrorEffects(view.facts, view.row, timeoutFailure(phase.runId, phase.code, phase.limitMs, cancelled, view.aborted), view.nowMs, view.rules),
  ]);
}

function timeoutFailure(runId: string, code: TimeoutCode, limitMs: number, cancelled: boolean, aborted: boolean): Failure {
  const what = code === 'JOB_TIMEOUT' ? 'did not finish running' : "did not leave the provider's queue";
  const setting = code === 'JOB_TIMEOUT' ? 'job_timeout' : 'queue_timeout';
  // Without a cancel the run may still finish (and be billed): the next run checks it again before resubmitting.
  const tail = cancelled ? 'and was cancelled' : '; it may still finish, and the next run checks it again before resubmitting';
  const message = `run ${runId} ${what} within ${formatDurationMs(limitMs)} (${setting})${cancelled ? ' ' : ''}${tail}`;
  return { kind: 'row', code, message, mayHaveReachedServer: true, aborted };
}
