import { lookUpTimes, lookUpVerdict, type LookUpAnswer } from './lost-create.js';
import { rowErrorEffects } from './row-error.js';
import { asPending, create, end, giveUp, record, reserve, say, settle } from './steps.js';
import type { Effect, Input, Phase, Step, View } from './types.js';
import { waitFor } from './wait.js';

type LookingUp = Extract<Phase, { at: 'looking_up' }>;

/** Starts a look-up of the row's unanswered creates, at the times the rule allows, counted from `sinceMs`. */
export function lookUp(view: View, sinceMs: number, after: LookingUp['after'], effects: Effect[] = []): Step {
  const times = lookUpTimes(sinceMs, view.nowMs, view.rules.requestTimeoutMs);
  const clientRefs = [...(view.row?.clientRefs ?? [])].reverse();
  const [atMs, ...rest] = times;
  return { phase: { at: 'looking_up', sinceMs, times: rest, clientRefs, after }, effects, command: { do: 'look_up', atMs: atMs ?? view.nowMs, clientRefs } };
}

/** One read of the run list: attach to a listed run, look again later, submit again, or leave the row unresolved. */
export function onLookingUp(view: View, input: Input, phase: LookingUp): Step {
  if (input.on === 'failed') return giveUp(view, input.failure);
  if (input.on !== 'looked_up') return end();
  const { answer } = input;
  const verdict = lookUpVerdict(answer, phase.sinceMs, input.readAtMs, view.rules.requestTimeoutMs);
  const [atMs, ...times] = phase.times;
  if (verdict === 'look_again' && atMs !== undefined)
    return { phase: { ...phase, times }, effects: [], command: { do: 'look_up', atMs, clientRefs: phase.clientRefs } };
  if (verdict === 'attach' && answer.kind === 'found') return attach(view, answer);
  if (verdict === 'not_created') return notCreated(view, phase);
  const reason = answer.kind === 'cannot_tell' ? answer.reason : '';
  const shown = phase.clientRefs[0] ?? '';
  return end([say('error', 'reconcile_failed', `could not look up the lost create ${shown} (${reason}); it stays unresolved and is not resubmitted`)]);
}

/** A listed run is this row's: re-attached, never paid for again (the first one, when several carry its client_refs). */
function attach(view: View, answer: Extract<LookUpAnswer, { kind: 'found' }>): Step {
  const runIds = [...answer.latest, ...answer.earlier];
  const runId = runIds[0]!;
  const effects: Effect[] = [];
  if (runIds.length > 1) {
    effects.push(
      say(
        'warn',
        'reconcile_many',
        `${runIds.length} runs carry this row's client_refs (${runIds.join(', ')}); following ${runId}, the others may be billed too`,
      ),
    );
  }
  effects.push(
    record({ type: 'submitted', runId }),
    say('info', 'reconciled', `found run ${runId} by client_ref for a create whose answer was lost; re-attached, not resubmitted`, { run_id: runId }),
  );
  return waitFor(view, runId, true, effects);
}

/** Complete, empty lists a request timeout after the create was given up: it made no run, so the row may be sent again. */
function notCreated(view: View, phase: LookingUp): Step {
  const shown = phase.clientRefs[0] ?? '';
  const effects: Effect[] = [
    record({
      type: 'not_submitted',
      code: 'NOT_CREATED',
      message: `every page of the provider's run list has no run with client_ref ${phase.clientRefs.join(' or ')}`,
    }),
    say('info', 'reconciled', `the provider lists no run for the lost create ${shown}, a request timeout after it was given up; submitting again`),
  ];
  const { after } = phase;
  if (after.then === 'reserve') return reserve(effects);
  if (after.tries >= view.rules.retry.maxAttempts)
    return end([...effects, settle(0), ...rowErrorEffects(view.facts, asPending(view), after.failure, view.nowMs, view.rules)]);
  return create(view, after.tries + 1, effects);
}
