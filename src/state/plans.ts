import type { JournalEvent, PlannedItem, PlannedManifest } from '../lifecycle/events.js';

type PlannedEvent = Extract<JournalEvent, { type: 'planned' }>;

/** A night's plan as recorded: what `clipmill report` rebuilds the reports from. */
export interface RecordedPlan {
  session: string;
  provider: string;
  manifests: PlannedManifest[];
  /** Every row of the plan, in manifest order. */
  items: PlannedItem[];
}

/** What a `planned` event holds, before the journal stamps it. */
export type PlanRecord = Omit<PlannedEvent, 'at' | 'session'>;

const same = (a: PlannedItem, b: PlannedItem | undefined) => b !== undefined && JSON.stringify(a) === JSON.stringify(b);

/**
 * Pure: tonight's plan as a `planned` event. Against an earlier recorded plan it holds only the rows that
 * differ (`base` names that plan), and the row order only when it changed: a night with nothing new adds a
 * line of a few hundred bytes, not the whole manifest again.
 */
export function planRecord(session: string, plan: Omit<RecordedPlan, 'session'>, previous: RecordedPlan | undefined): PlanRecord {
  const record = { type: 'planned', key: `plan:${session}`, request: session, provider: plan.provider, manifests: plan.manifests } as const;
  if (previous === undefined) return { ...record, items: plan.items };
  const before = new Map(previous.items.map((item) => [item.key, item]));
  const items = plan.items.filter((item) => !same(item, before.get(item.key)));
  const keys = plan.items.map((item) => item.key);
  const sameOrder = keys.length === previous.items.length && keys.every((key, i) => previous.items[i]?.key === key);
  return { ...record, base: previous.session, items, ...(!sameOrder && { keys }) };
}

/** Pure: the last plan recorded in a journal, rebuilt from its `planned` events (a full one, then differences). */
export function lastPlan(events: Iterable<JournalEvent>): RecordedPlan | undefined {
  let plan: RecordedPlan | undefined;
  for (const event of events) if (event.type === 'planned') plan = applyPlanned(plan, event);
  return plan;
}

function applyPlanned(previous: RecordedPlan | undefined, event: PlannedEvent): RecordedPlan {
  const session = event.request;
  // A difference against a plan this journal no longer holds (a repaired journal) is read as it stands.
  if (event.base === undefined || previous === undefined) return { session, provider: event.provider, manifests: event.manifests, items: event.items };
  const byKey = new Map(previous.items.map((item) => [item.key, item]));
  for (const item of event.items) byKey.set(item.key, item);
  const keys = event.keys ?? previous.items.map((item) => item.key);
  const items = keys.map((key) => byKey.get(key)).filter((item): item is PlannedItem => item !== undefined);
  return { session, provider: event.provider, manifests: event.manifests, items };
}
