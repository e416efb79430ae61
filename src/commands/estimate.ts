import { estimateJson, renderEstimate, summariseEstimate } from '../plan/estimate.js';
import type { Plan } from '../plan/plan.js';
import { Journal } from '../state/journal.js';
import { fleetReplay, type FleetRef } from '../fleet/journal.js';
import { budgetViewOf, planFor, prepare, type RunOptions } from './prepare.js';

/** `clipmill estimate`: what the remaining work will cost, per manifest and audio mode; sends nothing, needs no key. */
export async function estimateManifests(
  options: RunOptions & { fleet?: FleetRef | undefined },
): Promise<{ plan: Plan; text: string; json: unknown; budgetMicros: number | undefined }> {
  // A fleet's rows are not reviewed: its estimate is of the rows as enqueue plans them (review.json ignored, and said so).
  const ignoreReview = options.fleet ? (options.ignoreReview ?? ((warning: string) => process.stderr.write(`${warning}\n`))) : undefined;
  const prepared = await prepare({ ...options, ...(ignoreReview && { ignoreReview }) }, options.env ?? process.env, false);
  const replay = options.fleet ? await fleetReplay(options.fleet) : await Journal.replay(prepared.outDir);
  const { plan, money } = await planFor(prepared, replay, options, undefined, false);
  const summary = summariseEstimate(plan);
  const budget = budgetViewOf(prepared, plan, money);
  return { plan, text: renderEstimate(summary, budget), json: estimateJson(summary, budget), budgetMicros: prepared.budgetMicros };
}
