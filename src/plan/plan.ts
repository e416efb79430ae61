import { createHash } from 'node:crypto';
import path from 'node:path';
import { estimateMicros, type Pricing } from '../money/cost.js';
import type { RowState } from '../lifecycle/events.js';
import type { ImageInfo } from '../load/images.js';
import type { Manifest } from '../load/load.js';
import type { Row } from '../load/row.js';
import { buildKlingInput } from '../model/kling-v3.js';
import { standingOf } from '../lifecycle/standing.js';

/**
 * What a run does with a row:
 * - `done`: downloaded for this exact request; nothing to do;
 * - `reattach`: a run exists at the provider: poll it, never submit again;
 * - `download`: the run succeeded but its video is not here yet;
 * - `submit`: new work (or a changed row, or a retried failure);
 * - `failed`: failed for good last time, left alone unless asked to retry;
 * - `unknown`: a create was sent but its answer was lost; it must be looked up before any resubmit;
 * - `over_budget`: would be submitted, but does not fit the budget (`--partial`);
 * - `not_selected`: had work tonight, but is outside `--only` (or `clipmill retry` left it): left as it is.
 */
export type Action = 'done' | 'reattach' | 'download' | 'submit' | 'failed' | 'unknown' | 'over_budget' | 'not_selected';

export interface WorkItem {
  row: Row;
  key: string;
  request: string;
  action: Action;
  estimateMicros: number;
  /** The state for this exact request, when the journal has one. */
  state?: RowState;
  /** True when the journal knows this row with a different request (the manifest row was edited). */
  changed: boolean;
  /** A `not_selected` row's action had it been selected: a lost create left alone may still be a run, and money. */
  wanted?: 'submit' | 'unknown';
}

/** A create was sent for this row and its answer lost: a run may exist and be billed, whether or not tonight looks it up. */
export function mayHaveRun(item: Pick<WorkItem, 'action' | 'wanted'>): boolean {
  return item.action === 'unknown' || (item.action === 'not_selected' && item.wanted === 'unknown');
}

export interface Plan {
  items: WorkItem[];
  counts: Record<Action, number>;
  /** Estimated cost of the work still to pay for: rows to submit, and lost creates that may be resubmitted. */
  submitMicros: number;
}

/** Pure: the same plan with the rows in `over` set aside as over budget. */
export function withoutRowsOverBudget(plan: Plan, over: readonly WorkItem[]): Plan {
  const excluded = new Set(over.map((item) => item.key));
  const items = plan.items.map((item) => (excluded.has(item.key) ? { ...item, action: 'over_budget' as const } : item));
  return summarise(items);
}

/** Pure: a plan from its items: counts per action, and what the new submissions should cost. */
export function summarise(items: WorkItem[]): Plan {
  const counts: Record<Action, number> = { done: 0, reattach: 0, download: 0, submit: 0, failed: 0, unknown: 0, over_budget: 0, not_selected: 0 };
  let submitMicros = 0;
  for (const item of items) {
    counts[item.action]++;
    if (item.action === 'submit' || item.action === 'unknown') submitMicros += item.estimateMicros;
  }
  return { items, counts, submitMicros };
}

export function videoPathFor(outDir: string, row: Pick<Row, 'manifest' | 'id'>): string {
  return path.join(outDir, row.manifest, `${row.id}.mp4`);
}

/** Where the video of an earlier version of a row is kept once the row has changed. */
export function archivedVideoPath(outDir: string, row: Pick<Row, 'manifest' | 'id'>, previousRequest: string): string {
  return path.join(outDir, row.manifest, `${row.id}.${previousRequest.slice(0, 8)}.mp4`);
}

export function rowKey(row: Pick<Row, 'manifest' | 'id'>): string {
  return `${row.manifest}/${row.id}`;
}

/** Hash of the wire request with local images by content: editing a prompt or replacing an image is new work. */
export function requestHash(row: Row, images: ReadonlyMap<string, ImageInfo>): string {
  const input = buildKlingInput(row.request, (ref) => (ref.kind === 'url' ? ref.url : `sha256:${images.get(ref.path)?.sha256 ?? ref.path}`));
  // The builder writes keys in a fixed order, so the JSON text is canonical.
  return createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 16);
}

export function actionFor(state: RowState | undefined, retryFailed: boolean, outputIntact: boolean, resubmitUnknown: boolean): Action {
  switch (standingOf(state, outputIntact)) {
    case 'new':
      return 'submit';
    case 'unanswered':
      return resubmitUnknown ? 'submit' : 'unknown';
    // A timed-out run may have finished since (and been billed): look at it before anything else.
    case 'in_flight':
    case 'timed_out':
      return 'reattach';
    // A video deleted or damaged since is fetched again from the same run: never paid twice.
    case 'paid':
    case 'damaged':
      return 'download';
    case 'done':
      return 'done';
    case 'failed':
      return retryFailed ? 'submit' : 'failed';
  }
}

/** Pure: manifest rows + journal → what to do with each row, and what the new submissions should cost. */
export function planRun(
  manifests: readonly Manifest[],
  states: ReadonlyMap<string, RowState>,
  images: ReadonlyMap<string, ImageInfo>,
  options: { pricing: Pricing; retryFailed: boolean; damagedOutputs?: ReadonlySet<string>; resubmitUnknown?: boolean },
): Plan {
  const items: WorkItem[] = [];
  for (const manifest of manifests) {
    for (const row of manifest.rows) {
      const key = rowKey(row);
      const request = requestHash(row, images);
      const known = states.get(key);
      const state = known?.request === request ? known : undefined;
      const action = actionFor(state, options.retryFailed, !options.damagedOutputs?.has(key), options.resubmitUnknown ?? false);
      const estimate = estimateMicros(row.request, options.pricing);
      items.push({ row, key, request, action, estimateMicros: estimate, ...(state && { state }), changed: known !== undefined && state === undefined });
    }
  }
  return summarise(items);
}
