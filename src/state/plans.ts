import type { JournalEvent, PlannedItem, PlannedManifest } from '../lifecycle/events.js';

type PlannedEvent = Extract<JournalEvent, { type: 'planned' }>;

/** A night's plan as recorded: what `clipmill report` rebuilds the reports from. */
export interface RecordedPlan {
  session: string;
  provider: string;
  manifests: PlannedManifest[];
  /** Every row of the plan, in manifest order. */
  items: PlannedItem[];
  /** Differences recorded since the last whole plan. */
  differences: number;
  /** A difference whose base plan is not in the journal (a repaired journal lost it): rows may be missing or stale. */
  incomplete: boolean;
}

/** What a `planned` event holds, before the journal stamps it. */
export type PlanRecord = Omit<PlannedEvent, 'at' | 'session'>;

/** A whole plan is written again after this many differences, so a lost line costs at most that many nights of plan. */
export const MAX_PLAN_DIFFERENCES = 30;

const same = (a: PlannedItem, b: PlannedItem | undefined) => b !== undefined && JSON.stringify(a) === JSON.stringify(b);

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
  const before = new Map(previous.items.map((item) => [item.key, item]));
  const items = plan.items.filter((item) => !same(item, before.get(item.key)));
  const keys = plan.items.map((item) => item.key);
  const sameOrder = keys.length === previous.items.length && keys.every((key, i) => previous.items[i]?.key === key);
  return { ...record, base: previous.session, items, ...(!sameOrder && { keys }) };
}

/** Pure: the last plan recorded in a journal, rebuilt from its `planned` events (a whole one, then differences). */
export function lastPlan(events: Iterable<JournalEvent>): RecordedPlan | undefined {
  let plan: RecordedPlan | undefined;
  for (const event of events) if (event.type === 'planned') plan = applyPlanned(plan, event);
  return plan;
}

export function applyPlanned(previous: RecordedPlan | undefined, event: PlannedEvent): RecordedPlan {
  const base = { session: event.request, provider: event.provider, manifests: event.manifests };
  if (event.base === undefined) return { ...base, items: event.items, differences: 0, incomplete: false };
  // A difference is read against the plan it names; if that plan is not the one before it, what is known is kept, and said to be incomplete.
  const byKey = new Map((previous?.items ?? []).map((item) => [item.key, item]));
  for (const item of event.items) byKey.set(item.key, item);
  const keys = event.keys ?? [...byKey.keys()];
  const items = keys.map((key) => byKey.get(key)).filter((item): item is PlannedItem => item !== undefined);
  return {
    ...base,
    items,
    differences: (previous?.differences ?? 0) + 1,
    incomplete: previous?.session !== event.base || previous.incomplete || items.length < keys.length,
  };
}
