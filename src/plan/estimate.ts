import { audioModeOf, formatUsd, MICROS_PER_USD, type AudioMode } from '../money/cost.js';
import type { Plan, WorkItem } from './plan.js';

const MODES: AudioMode[] = ['silent', 'audio', 'voice'];

export interface ModeFigures {
  rows: number;
  seconds: number;
  micros: number;
}

/** What a manifest (or the night) will cost: only rows still to pay for are counted. */
export interface EstimateFigures {
  name: string;
  rows: number;
  done: number;
  inFlight: number;
  failed: number;
  overBudget: number;
  /** Rows with work left alone tonight: outside `--only`. */
  notSelected: number;
  toPay: ModeFigures;
  byMode: Record<AudioMode, ModeFigures>;
}

const TO_PAY = new Set(['submit', 'unknown']);

function figures(name: string, items: readonly WorkItem[]): EstimateFigures {
  const empty = (): ModeFigures => ({ rows: 0, seconds: 0, micros: 0 });
  const byMode: Record<AudioMode, ModeFigures> = { silent: empty(), audio: empty(), voice: empty() };
  const toPay = empty();
  for (const item of items.filter((i) => TO_PAY.has(i.action))) {
    for (const f of [toPay, byMode[audioModeOf(item.row.request)]]) {
      f.rows++;
      f.seconds += item.row.request.durationSeconds;
      f.micros += item.estimateMicros;
    }
  }
  const count = (...actions: string[]) => items.filter((i) => actions.includes(i.action)).length;
  return {
    name,
    rows: items.length,
    done: count('done'),
    inFlight: count('reattach', 'download'),
    failed: count('failed'),
    overBudget: count('over_budget'),
    notSelected: count('not_selected'),
    toPay,
    byMode,
  };
}

/** Pure: per manifest and in total, from a plan (rows done or in flight cost nothing more). */
export function summariseEstimate(plan: Plan): { manifests: EstimateFigures[]; total: EstimateFigures } {
  const names = [...new Set(plan.items.map((i) => i.row.manifest))];
  return {
    manifests: names.map((n) =>
      figures(
        n,
        plan.items.filter((i) => i.row.manifest === n),
      ),
    ),
    total: figures('total', plan.items),
  };
}

function modeText(f: EstimateFigures): string {
  const parts = MODES.filter((m) => f.byMode[m].rows > 0).map((m) => `${m} ${f.byMode[m].rows} rows/${f.byMode[m].seconds} s/${formatUsd(f.byMode[m].micros)}`);
  return parts.length > 0 ? parts.join(', ') : '-';
}

/** A budget as the night sees it: its limit, and what is already spent or committed within its period. */
export interface BudgetView {
  limitMicros: number;
  committedMicros: number;
}

export function renderEstimate(summary: ReturnType<typeof summariseEstimate>, budget: BudgetView | undefined): string {
  const line = (f: EstimateFigures) => {
    const state = [
      `${f.rows} rows`,
      `${f.done} done`,
      ...(f.inFlight ? [`${f.inFlight} in flight`] : []),
      ...(f.failed ? [`${f.failed} failed`] : []),
      ...(f.overBudget ? [`${f.overBudget} over budget`] : []),
      ...(f.notSelected ? [`${f.notSelected} not selected`] : []),
    ].join(', ');
    return `${f.name.padEnd(24)} ${state}; to pay: ${f.toPay.rows} rows, ${f.toPay.seconds} s, ${formatUsd(f.toPay.micros)} (${modeText(f)})`;
  };
  const lines = [...summary.manifests.map(line), line(summary.total)];
  if (budget !== undefined) {
    const left = budget.limitMicros - budget.committedMicros;
    const committed =
      budget.committedMicros > 0 ? `, ${formatUsd(budget.committedMicros)} already spent or committed in its period, ${formatUsd(Math.max(0, left))} left` : '';
    lines.push(
      `budget ${formatUsd(budget.limitMicros)}${committed}: ${summary.total.toPay.micros <= left ? 'the estimate fits' : `the estimate is ${formatUsd(summary.total.toPay.micros - left)} over`}`,
    );
  }
  return lines.join('\n');
}

export function estimateJson(summary: ReturnType<typeof summariseEstimate>, budget: BudgetView | undefined): unknown {
  const money = (micros: number) => ({ usd: micros / MICROS_PER_USD, micros });
  const json = (f: EstimateFigures) => ({
    name: f.name,
    rows: f.rows,
    done: f.done,
    in_flight: f.inFlight,
    failed: f.failed,
    over_budget: f.overBudget,
    not_selected: f.notSelected,
    to_pay: { rows: f.toPay.rows, seconds: f.toPay.seconds, ...money(f.toPay.micros) },
    by_audio_mode: Object.fromEntries(MODES.map((m) => [m, { rows: f.byMode[m].rows, seconds: f.byMode[m].seconds, ...money(f.byMode[m].micros) }])),
  });
  return {
    manifests: summary.manifests.map(json),
    total: json(summary.total),
    budget:
      budget === undefined
        ? null
        : { ...money(budget.limitMicros), committed: money(budget.committedMicros), left: money(Math.max(0, budget.limitMicros - budget.committedMicros)) },
  };
}
