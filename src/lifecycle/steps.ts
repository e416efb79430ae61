import type { LogEventName, LogLevel } from '../infra/log-events.js';
import type { RowState } from './events.js';
import { rowErrorEffects } from './row-error.js';
import type { Effect, EventDraft, Failure, Step, View } from './types.js';

/** The row's night is over: the effects are its last bookkeeping. */
export const end = (effects: Effect[] = []): Step => ({ phase: { at: 'ended' }, effects, command: { do: 'end' } });

/** A log line about the row (the runner adds which row). */
export const say = (level: LogLevel, event: LogEventName, message: string, fields?: Record<string, unknown>): Effect => ({
  do: 'log',
  level,
  event,
  message,
  ...(fields && { fields }),
});

/** A fact about the row, journaled before the next side effect. */
export const record = (event: EventDraft): Effect => ({ do: 'record', event });

/** Gives the row's reservation back, or settles it at what was billed. */
export const settle = (billedMicros: number): Effect => ({ do: 'settle', billedMicros });

/** The row as it stands once a `not_submitted` just recorded is applied: its create certainly made no run. */
export const asPending = (view: View): RowState => ({ key: view.facts.key, request: view.facts.request, attempts: 0, ...view.row, status: 'pending' });

/** A failure that ends the row's work tonight; a create that was never sent gives its reservation back first. */
export function giveUp(view: View, failure: Failure, settleFirst = false): Step {
  return end([...(settleFirst ? [settle(0)] : []), ...rowErrorEffects(view.facts, view.row, failure, view.nowMs, view.rules)]);
}

export const reserve = (effects: Effect[] = []): Step => ({ phase: { at: 'reserving' }, effects, command: { do: 'reserve' } });

/** The next create attempt (its number follows the journal's attempts). */
export function create(view: View, tries: number, effects: Effect[] = [], delayMs?: number): Step {
  const attempt = (view.row?.attempts ?? 0) + 1;
  return { phase: { at: 'creating', tries }, effects, command: { do: 'create', attempt, ...(delayMs !== undefined && { delayMs }) } };
}
