import { formatUsd } from '../money/cost.js';
import type { LoggedEvent, RowFields } from '../infra/log-events.js';

/** What the live block shows, folded from the run's events (pure). */
export interface ProgressState {
  startedAtMs: number;
  /** Rows with work tonight (submit, re-attach, download). */
  rowsToDo: number;
  /** Rows done before tonight's run started. */
  doneBefore: number;
  done: number;
  failed: number;
  submitted: number;
  /** Runs seen waiting in the provider's queue, and seen running. */
  queued: Set<string>;
  running: Set<string>;
  /** Generated, being downloaded. */
  downloading: number;
  spentMicros: number;
  estimatedMicros: number;
}

export function newProgress(o: { startedAtMs: number; rowsToDo: number; doneBefore: number; estimatedMicros: number }): ProgressState {
  return { ...o, done: 0, failed: 0, submitted: 0, queued: new Set(), running: new Set(), downloading: 0, spentMicros: 0 };
}

/** Folds one log event into the progress (pure); events it does not know change nothing. */
export function applyProgress(state: ProgressState, logged: LoggedEvent): void {
  switch (logged.event) {
    case 'submitted':
      state.submitted++;
      state.queued.add(keyOf(logged.fields));
      break;
    case 'run_state': {
      const key = keyOf(logged.fields);
      if (logged.fields.state === 'running') {
        state.queued.delete(key);
        state.running.add(key);
      } else state.queued.add(key);
      break;
    }
    case 'succeeded':
      state.queued.delete(keyOf(logged.fields));
      state.running.delete(keyOf(logged.fields));
      state.downloading++;
      state.spentMicros += logged.fields.cost_micros;
      break;
    case 'downloaded':
      state.downloading = Math.max(0, state.downloading - 1);
      state.done++;
      break;
    case 'row_failed':
      state.queued.delete(keyOf(logged.fields));
      state.running.delete(keyOf(logged.fields));
      state.failed++;
      break;
    default:
      break;
  }
}

const keyOf = (fields: RowFields): string => `${fields.manifest}/${fields.row}`;

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** Time left at tonight's pace so far; unknown until something has finished. */
export function etaMs(state: ProgressState, nowMs: number): number | undefined {
  const finished = state.done + state.failed;
  const left = state.rowsToDo - finished;
  if (finished === 0 || left <= 0) return left <= 0 ? 0 : undefined;
  return ((nowMs - state.startedAtMs) / finished) * left;
}

/** The live block, a few lines (pure). */
export function renderProgress(state: ProgressState, nowMs: number): string[] {
  const finished = state.done + state.failed;
  const width = 30;
  const filled = state.rowsToDo === 0 ? width : Math.round((finished / state.rowsToDo) * width);
  const eta = etaMs(state, nowMs);
  return [
    `clipmill  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${finished}/${state.rowsToDo} rows${state.doneBefore ? ` (+${state.doneBefore} done before)` : ''}`,
    `  done ${state.done}  in flight ${state.queued.size + state.running.size} (queued ${state.queued.size}, running ${state.running.size})  downloading ${state.downloading}  failed ${state.failed}`,
    `  spent ${formatUsd(state.spentMicros)} of ${formatUsd(state.estimatedMicros)} estimated  elapsed ${clock(nowMs - state.startedAtMs)}  ETA ${eta === undefined ? '--' : clock(eta)}`,
  ];
}

/** One line for logs that are not a terminal (the heartbeat). */
export function progressLine(state: ProgressState, nowMs: number): string {
  const eta = etaMs(state, nowMs);
  return `alive: ${state.done + state.failed}/${state.rowsToDo} rows (${state.done} done, ${state.failed} failed, ${state.queued.size} queued, ${state.running.size} running, ${state.downloading} downloading); spent ${formatUsd(state.spentMicros)} of ${formatUsd(state.estimatedMicros)}; elapsed ${clock(nowMs - state.startedAtMs)}, ETA ${eta === undefined ? '--' : clock(eta)}`;
}
