import { backoffMs } from '../infra/retry.js';
import { lookUpTimes, lookUpVerdict } from './lost-create.js';
import { rowErrorEffects } from './row-error.js';
import { waitFor } from './wait.js';
import type { RowState } from '../state/events.js';
import type { Effect, Failure, Input, Phase, Step, View } from './types.js';

/** The row as it stands once a `not_submitted` just recorded is applied: its create certainly made no run. */
const asPending = (view: View): RowState => ({ key: view.facts.key, request: view.facts.request, attempts: 0, ...view.row, status: 'pending' });

const end = (effects: Effect[] = []): Step => ({ phase: { at: 'ended' }, effects, command: { do: 'end' } });

/** A failure that ends the row's work tonight; a create that was never sent gives its reservation back first. */
export function giveUp(view: View, failure: Failure, settleFirst = false): Step {
  return end([...(settleFirst ? [{ do: 'settle', billedMicros: 0 } as const] : []), ...rowErrorEffects(view.facts, view.row, failure, view.nowMs, view.rules)]);
}

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
        return end([{ do: 'log', level: 'error', event: 'reconcile_failed', message }]);
      }
      // That run may have given up on its create as late as one request timeout after sending: the patience counts from there.
      return lookUp(view, row.submittingAtMs + rules.requestTimeoutMs, { then: 'reserve' });
    case 'submit':
      // A retried row whose lost create was forgotten by hand: its client_refs are looked up before paying again.
      if (row?.failure?.code === 'FORGOTTEN' && (row.clientRefs?.length ?? 0) > 0 && row.submittingAtMs !== undefined) {
        return lookUp(view, row.submittingAtMs + rules.requestTimeoutMs, { then: 'reserve' });
      }
      return { phase: { at: 'reserving' }, effects: [], command: { do: 'reserve' } };
    default:
      return end();
  }
}

/** Starts a look-up of the row's unanswered creates, at the times the rule allows, counted from `sinceMs`. */
export function lookUp(view: View, sinceMs: number, after: Extract<Phase, { at: 'looking_up' }>['after'], effects: Effect[] = []): Step {
  const times = lookUpTimes(sinceMs, view.nowMs, view.rules.requestTimeoutMs);
  const clientRefs = [...(view.row?.clientRefs ?? [])].reverse();
  const [atMs, ...rest] = times;
  return { phase: { at: 'looking_up', sinceMs, times: rest, clientRefs, after }, effects, command: { do: 'look_up', atMs: atMs ?? view.nowMs, clientRefs } };
}

/** The next create attempt (its number follows the journal's attempts). */
export function create(view: View, tries: number, effects: Effect[] = [], delayMs?: number): Step {
  const attempt = (view.row?.attempts ?? 0) + 1;
  return { phase: { at: 'creating', tries }, effects, command: { do: 'create', attempt, ...(delayMs !== undefined && { delayMs }) } };
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
  if (input.on === 'submits_stopped') return end([{ do: 'settle', billedMicros: 0 }]); // nothing is in flight for this row
  if (input.on === 'created') {
    const urls = input.urls;
    const effects: Effect[] = [
      { do: 'record', event: { type: 'submitted', runId: input.runId, ...(urls && { urls }) } },
      { do: 'log', level: 'info', event: 'submitted', message: `submitted as ${input.runId}`, fields: { run_id: input.runId } },
    ];
    return waitFor(view, input.runId, true, effects);
  }
  if (input.on !== 'create_failed') return end();
  const { failure } = input;
  // Stopped while waiting for a rate slot, or the journal refused the intent: nothing was sent.
  if (!input.sent) return giveUp(view, failure, true);
  if (failure.kind === 'internal' || failure.kind === 'io') return giveUp(view, failure);
  const answered = failure.status !== undefined && failure.status < 500;
  if (failure.kind === 'row' && answered) {
    return end([
      { do: 'settle', billedMicros: 0 },
      { do: 'record', event: { type: 'failed', code: failure.code, message: failure.message, attempt: view.row?.attempts ?? 0, billed: false } },
      { do: 'log', level: 'error', event: 'row_failed', message: failure.message },
    ]);
  }
  if (answered || !failure.mayHaveReachedServer) {
    const notMade: Effect = { do: 'record', event: { type: 'not_submitted', code: failure.code, message: failure.message } };
    if (failure.kind !== 'transient' || tries >= view.rules.retry.maxAttempts) return end([notMade, { do: 'settle', billedMicros: 0 }, ...rowErrorEffects(view.facts, asPending(view), failure, view.nowMs, view.rules)]);
    const delayMs = failure.retryAfterMs ?? backoffMs(tries, view.rules.retry, view.rules.random);
    return create(view, tries + 1, [notMade, { do: 'log', level: 'warn', event: 'submit_retry', message: `${failure.message}; nothing was created, retrying in ${delayMs} ms` }], delayMs);
  }
  // The run may exist: ask the provider before deciding, counting its patience from when we gave up, not from when we sent.
  const warn: Effect = { do: 'log', level: 'warn', event: 'submit_unknown', message: `${failure.message}; looking the run up by client_ref ${view.row?.clientRef ?? ''} before deciding` };
  return lookUp(view, view.nowMs, { then: 'give_up', tries, failure }, [warn]);
}

/** One read of the run list: attach to a listed run, look again later, submit again, or leave the row unresolved. */
export function onLookingUp(view: View, input: Input, phase: Extract<Phase, { at: 'looking_up' }>): Step {
  if (input.on === 'failed') return giveUp(view, input.failure);
  if (input.on !== 'looked_up') return end();
  const { answer } = input;
  const shown = phase.clientRefs[0] ?? '';
  const verdict = lookUpVerdict(answer, phase.sinceMs, input.readAtMs, view.rules.requestTimeoutMs);
  if (verdict === 'look_again' && phase.times.length > 0) {
    const [atMs, ...times] = phase.times;
    return { phase: { ...phase, times }, effects: [], command: { do: 'look_up', atMs: atMs!, clientRefs: phase.clientRefs } };
  }
  if (verdict === 'unknown' || verdict === 'look_again') {
    const reason = answer.kind === 'cannot_tell' ? answer.reason : '';
    return end([{ do: 'log', level: 'error', event: 'reconcile_failed', message: `could not look up the lost create ${shown} (${reason}); it stays unresolved and is not resubmitted` }]);
  }
  if (verdict === 'attach' && answer.kind === 'found') {
    const runIds = [...answer.latest, ...answer.earlier];
    const runId = runIds[0]!;
    const effects: Effect[] = [];
    if (runIds.length > 1) effects.push({ do: 'log', level: 'warn', event: 'reconcile_many', message: `${runIds.length} runs carry this row's client_refs (${runIds.join(', ')}); following ${runId}, the others may be billed too` });
    effects.push(
      { do: 'record', event: { type: 'submitted', runId } },
      { do: 'log', level: 'info', event: 'reconciled', message: `found run ${runId} by client_ref for a create whose answer was lost; re-attached, not resubmitted`, fields: { run_id: runId } },
    );
    return waitFor(view, runId, true, effects);
  }
  const effects: Effect[] = [
    { do: 'record', event: { type: 'not_submitted', code: 'NOT_CREATED', message: `every page of the provider's run list has no run with client_ref ${phase.clientRefs.join(' or ')}` } },
    { do: 'log', level: 'info', event: 'reconciled', message: `the provider lists no run for the lost create ${shown}, a request timeout after it was given up; submitting again` },
  ];
  const { after } = phase;
  if (after.then === 'reserve') return { phase: { at: 'reserving' }, effects, command: { do: 'reserve' } };
  if (after.tries >= view.rules.retry.maxAttempts) return end([...effects, { do: 'settle', billedMicros: 0 }, ...rowErrorEffects(view.facts, asPending(view), after.failure, view.nowMs, view.rules)]);
  return create(view, after.tries + 1, effects);
}
