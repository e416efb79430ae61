import { backoffMs } from '../infra/retry.js';
import { lookUp } from './look-up.js';
import { rowErrorEffects } from './row-error.js';
import { asPending, create, end, giveUp, record, reserve, say, settle } from './steps.js';
import type { Failure, Input, Step, View } from './types.js';
import { waitFor } from './wait.js';

/** The first step of a row: what the plan decided, and for a create whose answer was lost, a look-up first. */
export function startRow(view: View): Step {
  const { facts, row, rules } = view;
  switch (facts.action) {
    case 'reattach':
    case 'download':
      return waitFor(view, row?.runId ?? '', false);
    case 'unknown':
      if (row?.clientRef === undefined || row.submittingAtMs === undefined) {
        const message =
          "this create was sent by an older clipmill without a client_ref, so it cannot be looked up: check the provider's dashboard for a run with this row's metadata, then rerun with --resubmit-unknown only if there is none";
        return end([say('error', 'reconcile_failed', message)]);
      }
      // That run may have given up on its create as late as one request timeout after sending: the patience counts from there.
      return lookUp(view, row.submittingAtMs + rules.requestTimeoutMs, { then: 'reserve' });
    case 'submit':
      // A retried row whose lost create was forgotten by hand: its client_refs are looked up before paying again.
      if (row?.failure?.code === 'FORGOTTEN' && (row.clientRefs?.length ?? 0) > 0 && row.submittingAtMs !== undefined) {
        return lookUp(view, row.submittingAtMs + rules.requestTimeoutMs, { then: 'reserve' });
      }
      return reserve();
    default:
      return end();
  }
}

export function onReserving(view: View, input: Input): Step {
  if (input.on === 'reserved' && input.ok) return create(view, 1);
  if (input.on === 'reserved') return end([{ do: 'stop', reason: 'budget_full' }]);
  return end();
}

/**
 * A create's answer. Repeated blindly only when the provider certainly did not act (429, refused
 * connection); after a 5xx, timeout or reset once the body was sent, the provider's run list decides.
 */
export function onCreating(view: View, input: Input, tries: number): Step {
  if (input.on === 'submits_stopped') return end([settle(0)]); // nothing is in flight for this row
  if (input.on === 'created') {
    const { runId, urls } = input;
    return waitFor(view, runId, true, [
      record({ type: 'submitted', runId, ...(urls && { urls }) }),
      say('info', 'submitted', `submitted as ${runId}`, { run_id: runId }),
    ]);
  }
  if (input.on !== 'create_failed') return end();
  const { failure } = input;
  // Stopped while waiting for a rate slot, or the journal refused the intent: nothing was sent.
  if (!input.sent) return giveUp(view, failure, true);
  if (failure.kind === 'internal' || failure.kind === 'io') return giveUp(view, failure);
  const answered = failure.status !== undefined && failure.status < 500;
  if (failure.kind === 'row' && answered) {
    const failed = record({ type: 'failed', code: failure.code, message: failure.message, attempt: view.row?.attempts ?? 0, billed: false });
    return end([settle(0), failed, say('error', 'row_failed', failure.message)]);
  }
  if (answered || !failure.mayHaveReachedServer) return onNotMade(view, failure, tries);
  // The run may exist: ask the provider before deciding, counting its patience from when we gave up, not from when we sent.
  const warn = say('warn', 'submit_unknown', `${failure.message}; looking the run up by client_ref ${view.row?.clientRef ?? ''} before deciding`);
  return lookUp(view, view.nowMs, { then: 'give_up', tries, failure }, [warn]);
}

/** The provider certainly made no run: recorded so; tried again after Retry-After or backoff, or, past the attempts, left for the next run. */
function onNotMade(view: View, failure: Failure, tries: number): Step {
  const notMade = record({ type: 'not_submitted', code: failure.code, message: failure.message });
  if (failure.kind !== 'transient' || tries >= view.rules.retry.maxAttempts) {
    return end([notMade, settle(0), ...rowErrorEffects(view.facts, asPending(view), failure, view.nowMs, view.rules)]);
  }
  const delayMs = failure.retryAfterMs ?? backoffMs(tries, view.rules.retry, view.rules.random);
  return create(view, tries + 1, [notMade, say('warn', 'submit_retry', `${failure.message}; nothing was created, retrying in ${delayMs} ms`)], delayMs);
}
