/**
 * A row's life in one night, as data: `step(view, input)` takes where the row stands (the journal's
 * state, tonight's phase) and what the world just answered, and returns the bookkeeping to do and the
 * one command to perform next. Pure: every money rule is decided here and tested as a table; the
 * runner (`src/execute/runner.ts`) only performs commands and feeds their answers back.
 */
import { onCreating, onReserving, startRow } from './create.js';
import { onLookingUp } from './look-up.js';
import { onDownloading } from './download.js';
import type { Input, Step, View } from './types.js';
import { onCancelling, onWaiting } from './wait.js';

export function step(view: View, input: Input): Step {
  const { phase } = view;
  switch (phase.at) {
    case 'start':
      return startRow(view);
    case 'reserving':
      return onReserving(view, input);
    case 'creating':
      return onCreating(view, input, phase.tries);
    case 'looking_up':
      return onLookingUp(view, input, phase);
    case 'waiting':
      return onWaiting(view, input, phase);
    case 'cancelling':
      return onCancelling(view, input, phase);
    case 'downloading':
      return onDownloading(view, input, phase);
    case 'ended':
      return { phase, effects: [], command: { do: 'end' } };
  }
}

export type { Command, Effect, EventDraft, Failure, Input, Phase, RowFacts, Rules, Step, View } from './types.js';
