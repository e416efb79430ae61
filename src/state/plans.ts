import { createHash } from 'node:crypto';
import type { JournalEvent, PlannedItem, PlannedManifest } from '../lifecycle/events.js';

type PlannedEvent = Extract<JournalEvent, { type: 'planned' }>;

/** A night's plan as recorded: what `clipmill report` rebuilds the reports from. */
export interface RecordedPlan {
  session: string;
  provider: string;
  manifests: PlannedManifest[];
  /** Every row of the plan, in manifest order; empty when read only to record the next plan against (`keepItems` false). */
  items: PlannedItem[];
  /** Every row's key, in manifest order, with a fingerprint of its record: what tonight's plan is compared with. */
  prints: Map<string, string>;
  /** Differences recorded since the last whole plan. */
  differences: number;
  /** A difference whose base plan is not in the journal (a repaired journal lost it): rows may be missing or stale. */
  incomplete: boolean;
}

/** What a `planned` event holds, before the journal stamps it. */
export type PlanRecord = Omit<PlannedEvent, 'at' | 'session'>;

/** A whole plan is written again after this many differences, so a lost line costs at most that many nights of plan. */
export const MAX_PLAN_DIFFERENCES = 30;

/** A row's record in a few bytes: a run compares tonight's plan with the last one without holding its rows. */
export function printOf(item: PlannedItem): string {
  return createHash('sha1').update(JSON.stringify(item)).digest('base64');
}

type Plan = Pick<RecordedPlan, 'provider' | 'manifests' | 'items'>;

/**
 * Pure: tonight's plan as a `planned` event. Against an earlier, whole recorded plan it holds only the rows
 * that differ (`base` names that plan), and the row order only when it changed: a night with nothing new adds
 * a line of a few hundred bytes, not the whole manifest again. A whole plan is written when there is none to
 * build on, when the last one is incomplete, and every MAX_PLAN_DIFFERENCES nights.
 */
export function planRecord(session: string, plan: Plan, previous: RecordedPlan | undefined): PlanRecord {
  const record = { type: 'planned', key: `plan:${session}`, request: session, provider: plan.provider, manifests: plan.manifests } as const;
  if (previous === undefined || previous.incomplete || previous.differences >= MAX_PLAN_DIFFERENCES) return { ...record, items: plan.items };
  const items = plan.items.filter((item) => printOf(item) !== previous.prints.get(item.key));
  const keys = plan.items.map((item) => item.key);
  const order = previous.prints.keys();
  const sameOrder = keys.length === previous.prints.size && keys.every((key) => order.next().value === key);
  return { ...record, base: previous.session, items, ...(!sameOrder && { keys }) };
}

/** Pure: the last plan recorded in a journal, rebuilt from its `planned` events (a whole one, then differences). */
export function lastPlan(events: Iterable<JournalEvent>, keepItems = true): RecordedPlan | undefined {
  let plan: RecordedPlan | undefined;
  for (const event of events) if (event.type === 'planned') plan = applyPlanned(plan, event, keepItems);
  return plan;
}

/** Pure: a recorded plan with one more `planned` event; `keepItems` false keeps only keys and fingerprints (a run needs no more). */
export function applyPlanned(previous: RecordedPlan | undefined, event: PlannedEvent, keepItems: boolean): RecordedPlan {
  const base = { session: event.request, provider: event.provider, manifests: event.manifests };
  if (event.base === undefined) {
    const prints = new Map(event.items.map((item) => [item.key, printOf(item)]));
    return { ...base, items: keepItems ? event.items : [], prints, differences: 0, incomplete: false };
  }
  // A difference is read against the plan it names; if that plan is not the one before it, what is known is kept, and said to be incomplete.
  const known = new Map(previous?.prints ?? []);
  for (const item of event.items) known.set(item.key, printOf(item));
  const keys = event.keys ?? [...known.keys()];
  const prints = new Map<string, string>();
  for (const key of keys) {
    const print = known.get(key);
    if (print !== undefined) prints.set(key, print);
  }
  return {
    ...base,
    items: keepItems ? itemsOf(previous?.items ?? [], event.items, keys) : [],
    prints,
    differences: (previous?.differences ?? 0) + 1,
    incomplete: previous?.session !== event.base || previous.incomplete || prints.size < keys.length,
  };
}

function itemsOf(before: readonly PlannedItem[], changed: readonly PlannedItem[], keys: readonly string[]): PlannedItem[] {
  const byKey = new Map(before.map((item) => [item.key, item]));
  for (const item of changed) byKey.set(item.key, item);
  return keys.map((key) => byKey.get(key)).filter((item): item is PlannedItem => item !== undefined);
}
