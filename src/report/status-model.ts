import { redactText } from '../infra/http.js';
import type { RowState } from '../lifecycle/events.js';
import { standingOf, type Standing } from '../lifecycle/standing.js';
import { MICROS_PER_USD } from '../money/cost.js';
import type { BilledRun } from '../money/ledger.js';
import type { KlingRequest } from '../model/kling-v3.js';
import { actualCost, type CostSource } from './build.js';
import { isActive, type StatusLock } from './status-lock.js';
import { statusMoney, type MoneyInput, type StatusMoney } from './status-money.js';

export type { StatusLock } from './status-lock.js';
export type { StatusBudget, StatusHold, StatusMoney, StatusPlan, StatusTonight } from './status-money.js';

/** Where the rows come from: the manifests named (planned against the folder's or the fleet's journal), the last plan the journal recorded, the journal alone (no plan), or a fleet's last plan. */
export type StatusSource = 'manifests' | 'last_plan' | 'journal' | 'fleet';

/** A row as a plan knows it (a run's plan item, or one the journal recorded): all status needs of it. */
export interface StatusItem {
  key: string;
  request: string;
  estimateMicros: number;
  row: { manifest: string; id: string; line: number; request: Pick<KlingRequest, 'durationSeconds' | 'generateAudio' | 'voiceIds' | 'elements'> };
}

export interface StatusInput extends MoneyInput {
  outDir: string;
  source: StatusSource;
  items: readonly StatusItem[];
  /** Journaled rows outside `items` are listed too (after them) only when this is set. */
  withOtherRows: boolean;
  states: ReadonlyMap<string, RowState>;
  /** Each row's last event time (ISO). */
  lastEventAt: ReadonlyMap<string, string>;
  /** Rows whose downloaded video is missing or changed on disk. */
  damaged: ReadonlySet<string>;
  nowMs: number;
}

/** One row of `clipmill status --json` (money in dollars). */
export interface StatusRow {
  manifest: string;
  id: string;
  key: string;
  line: number | null;
  state: Standing;
  label: string;
  run_id: string | null;
  last_event_at: string | null;
  age_seconds: number | null;
  estimated_usd: number | null;
  estimated_micros: number | null;
  cost_usd: number | null;
  cost_micros: number | null;
  cost_source: CostSource;
  /** What the budget holds for the row: a run that exists at its reservation (its estimate, or the provider's last price when higher), an unanswered create at its estimate. */
  reserved_usd: number | null;
  reserved_micros: number | null;
  attempts: number;
  /** Why it needs attention, or what happens to it next; null for rows done or pending. */
  detail: string | null;
}

/** `clipmill status --json`: one document; field names are stable (README). */
export interface Status {
  out: string;
  source: StatusSource;
  /** The fleet's name (its queue) when its journal in Redis was read; null for a folder. */
  fleet: string | null;
  session: string | null;
  generated_at: string;
  /** Who holds the folder's lock; null for a fleet (its workers hold rows by leases in Redis). */
  lock: StatusLock | null;
  money: StatusMoney;
  manifests: { name: string; rows: number; counts: Record<Standing, number> }[];
  rows: StatusRow[];
}

export const LABELS: Record<Standing, string> = {
  done: 'done',
  damaged: 'video missing',
  paid: 'to download',
  in_flight: 'in flight',
  unanswered: 'unanswered create',
  new: 'pending',
  timed_out: 'failed',
  failed: 'failed',
};

const STANDINGS: Standing[] = ['done', 'damaged', 'paid', 'in_flight', 'unanswered', 'new', 'timed_out', 'failed'];

function usd(micros: number): number {
  return micros / MICROS_PER_USD;
}

/** Who takes a row's next step: the run holding the folder, the next run, or a fleet's workers. */
type Actor = 'run' | 'next' | 'fleet';

const NEXT_RUN = { recheck: 'the next run looks at', redownload: 'the next run downloads it again from' };

const NEXT_STEP: Record<Actor, { lookUp: string; download: string; wait: string; recheck: string; redownload: string }> = {
  run: { lookUp: 'the run looks it up', download: 'the run downloads it', wait: 'the run holding the folder is waiting for it', ...NEXT_RUN },
  next: { lookUp: 'the next run looks it up', download: 'the next run downloads it', wait: 'the next run re-attaches to it', ...NEXT_RUN },
  fleet: {
    lookUp: 'the fleet worker that takes its job looks it up',
    download: "the fleet's workers download it",
    wait: "the fleet's workers wait for it (a job a worker drops is re-attached by the worker that takes it)",
    recheck: "the next enqueue's workers look at",
    redownload: "the next enqueue's workers download it again from",
  },
};

/** What status says of a row needing attention, and what happens to it next. */
function detailOf(s: RowState, standing: Standing, actor: Actor): string | null {
  const next = NEXT_STEP[actor];
  switch (standing) {
    case 'failed':
      return redactText(`${s.failure?.code}: ${s.failure?.message}`);
    case 'timed_out':
      return redactText(`${s.failure?.code}: ${s.failure?.message}; ${next.recheck} run ${s.runId} again first (it may still finish, and be billed)`);
    case 'unanswered':
      return `the create got no answer; ${next.lookUp} by client_ref ${s.clientRef ?? '(none: sent by an older clipmill)'} before any resubmit`;
    case 'paid':
      return `run ${s.runId} succeeded; ${next.download}`;
    case 'in_flight':
      return `run ${s.runId}; ${next.wait}`;
    case 'damaged':
      return `${s.output?.path ?? 'its video'} is missing or changed on disk; ${next.redownload} run ${s.runId}`;
    default:
      return null;
  }
}

function rowOf(
  key: string,
  place: { manifest: string; id: string; line: number | null },
  state: RowState | undefined,
  cost: ReturnType<typeof actualCost>,
  input: StatusInput,
): StatusRow {
  const standing = standingOf(state, !input.damaged.has(key));
  const at = state ? input.lastEventAt.get(key) : undefined;
  const hold = input.holds.get(key);
  return {
    ...place,
    key,
    state: standing,
    label: LABELS[standing],
    run_id: state?.runId ?? null,
    last_event_at: at ?? null,
    age_seconds: at === undefined ? null : Math.max(0, Math.round((input.nowMs - Date.parse(at)) / 1000)),
    estimated_usd: null,
    estimated_micros: null,
    cost_usd: cost.micros === undefined ? null : usd(cost.micros),
    cost_micros: cost.micros ?? null,
    cost_source: cost.source,
    reserved_usd: hold === undefined ? null : usd(hold.micros),
    reserved_micros: hold?.micros ?? null,
    attempts: state?.attempts ?? 0,
    detail: state ? detailOf(state, standing, input.fleet !== null ? 'fleet' : isActive(input.lock) ? 'run' : 'next') : null,
  };
}

/** A planned row: its journal state only when it is for this version of the row (an edited row is new work). */
function plannedRow(item: StatusItem, input: StatusInput): StatusRow {
  const known = input.states.get(item.key);
  const state = known?.request === item.request ? known : undefined;
  const place = { manifest: item.row.manifest, id: item.row.id, line: item.row.line };
  const row = rowOf(item.key, place, state, actualCost(state, item.estimateMicros), input);
  row.estimated_usd = usd(item.estimateMicros);
  row.estimated_micros = item.estimateMicros;
  return row;
}

/** A journaled row no plan names: its cost as the ledger has it. */
function journalRow(state: RowState, input: StatusInput, byRun: ReadonlyMap<string, BilledRun>): StatusRow {
  const slash = state.key.indexOf('/');
  const place = { manifest: state.key.slice(0, slash), id: state.key.slice(slash + 1), line: null };
  const billed = state.runId === undefined ? undefined : byRun.get(state.runId);
  const fromState = actualCost(state, 0);
  const cost = billed
    ? { micros: billed.costMicros, source: billed.costSource }
    : fromState.source === 'estimate'
      ? { micros: undefined, source: 'none' as const }
      : fromState;
  const row = rowOf(state.key, place, state, cost, input);
  if (billed?.estimateMicros !== undefined) {
    row.estimated_usd = usd(billed.estimateMicros);
    row.estimated_micros = billed.estimateMicros;
  }
  return row;
}

function countsOf(rows: readonly StatusRow[]): Record<Standing, number> {
  const counts = Object.fromEntries(STANDINGS.map((s) => [s, 0])) as Record<Standing, number>;
  for (const row of rows) counts[row.state]++;
  return counts;
}

/** Pure: every row with its state, run id, age and cost; the money; the lock. */
export function buildStatus(input: StatusInput): Status {
  const rows = input.items.map((item) => plannedRow(item, input));
  if (input.withOtherRows) {
    const planned = new Set(input.items.map((item) => item.key));
    const byRun = new Map(input.billed.map((run) => [run.runId, run]));
    const others = [...input.states.values()].filter((s) => !planned.has(s.key)).sort((a, b) => a.key.localeCompare(b.key));
    for (const state of others) rows.push(journalRow(state, input, byRun));
  }
  const byManifest = new Map<string, StatusRow[]>();
  for (const row of rows) {
    const mine = byManifest.get(row.manifest);
    if (mine) mine.push(row);
    else byManifest.set(row.manifest, [row]);
  }
  return {
    out: input.outDir,
    source: input.source,
    fleet: input.fleet,
    session: input.plan?.session ?? null,
    generated_at: new Date(input.nowMs).toISOString(),
    lock: input.lock,
    money: statusMoney(input),
    manifests: [...byManifest].map(([name, mine]) => ({ name, rows: mine.length, counts: countsOf(mine) })),
    rows,
  };
}
