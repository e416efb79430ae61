import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { resolvePipeline, type Pipeline, type PipelineSources } from '../config/pipeline.js';
import { readFleetBudget, type FleetBudgetState } from '../fleet/budget.js';
import type { FleetRef } from '../fleet/journal.js';
import { connectRedis, fleetKeys } from '../fleet/redis.js';
import { fleetEvents } from '../fleet/store.js';
import { isBucketUrl } from '../infra/bucket.js';
import { isRowEvent, type JournalEvent } from '../lifecycle/events.js';
import { audioModeOf } from '../money/cost.js';
import { actionFor } from '../plan/plan.js';
import { buildStatus, type Status, type StatusItem, type StatusPlan, type StatusSource } from '../report/status-model.js';
import { lockView, NO_LOCK, type StatusLock } from '../report/status-lock.js';
import { foldJournalFile } from '../state/journal-file.js';
import { Journal, JOURNAL_FILE, STATE_DIR } from '../state/journal.js';
import { readSeen } from '../state/lock/files.js';
import { localState } from '../state/lock/judge.js';
import { isLocal } from '../state/lock/liveness.js';
import { resolveSettings } from '../state/lock/options.js';
import { readOwnIdentity } from '../state/lock/proc.js';
import { LOCK_FILE } from '../state/lock/record.js';
import { findDamagedOutputs } from '../state/outputs.js';
import type { RecordedPlan } from '../state/plans.js';
import { Replay } from '../state/replay.js';
import { moneyOf, outDirOf, planFor, prepare, type Money } from './prepare.js';
import { budgetOf, fleetHolds, holdsOf, type PlannedFacts, type Work } from './status-money.js';

export interface StatusOptions extends PipelineSources {
  /** Manifests whose rows to show (loaded and validated as `run` does); none: the rows of the last plan recorded. */
  manifests: string[];
  /** A fleet's journal in Redis instead of the folder's. */
  fleet?: FleetRef | undefined;
  env?: NodeJS.ProcessEnv;
  /** How another host's lock is watched. */
  lockRead?: Omit<LockReadOptions, 'nowMs'>;
}

/** A journal folded as a Replay, with each row's last event time beside it (its age) and its last planned estimate; a fleet's budget in Redis. */
interface Folded {
  replay: Replay;
  lastEventAt: Map<string, string>;
  planned: Map<string, PlannedFacts>;
  apply: (event: JournalEvent) => void;
  fleetBudget?: FleetBudgetState;
}

function newFold(): Folded {
  const replay = new Replay({ planItems: true });
  const lastEventAt = new Map<string, string>();
  const planned = new Map<string, PlannedFacts>();
  const apply = (event: JournalEvent): void => {
    replay.apply(event);
    if (isRowEvent(event)) lastEventAt.set(event.key, event.at);
    if (event.type === 'planned')
      for (const { key, request, estimateMicros, row } of event.items)
        planned.set(key, { request, estimateMicros, seconds: row.request.durationSeconds, audioMode: audioModeOf(row.request) });
  };
  return { replay, lastEventAt, planned, apply };
}

/** The folder's journal, read-only while a run may append to it: streamed (an unfinished last line left out), else read whole to refuse a damaged line with its advice. */
async function foldFolder(outDir: string): Promise<Folded> {
  const clean = newFold();
  if (await foldJournalFile(path.join(outDir, STATE_DIR, JOURNAL_FILE), clean.apply, { appending: true })) return clean;
  const whole = newFold();
  for (const event of await Journal.events(outDir)) whole.apply(event);
  return whole;
}

async function foldFleet(fleet: FleetRef): Promise<Folded> {
  const folded = newFold();
  const redis = await connectRedis(fleet.redisUrl);
  try {
    const keys = fleetKeys(fleet.queue);
    for await (const event of fleetEvents(redis, keys)) folded.apply(event);
    // Read after the journal: a reservation made meanwhile is counted, a bill settled meanwhile is in both.
    folded.fleetBudget = await readFleetBudget(redis, keys);
    return folded;
  } finally {
    redis.disconnect();
  }
}

const LOCK = resolveSettings({});
/** Another host's lock is watched this long: one heartbeat and a margin, so a live holder refreshes it at least once meanwhile. */
export const LOCK_WATCH_MS = LOCK.heartbeatMs + 2_000;

export interface LockReadOptions {
  nowMs?: number;
  /** How long another host's lock is watched (default LOCK_WATCH_MS). */
  watchMs?: number;
  /** Waits that long (a test passes one that refreshes the lock meanwhile). */
  pause?: (ms: number) => Promise<void>;
  /** Told before status watches another host's lock (the CLI says it on stderr). */
  onWatch?: (line: string) => void;
}

/**
 * Who holds the folder's lock (read, never taken), and whether it still runs: on this host by its process; another
 * host's is read again after a heartbeat and a margin, and judged by whether it moved, never by comparing its mtime
 * with our clock (as lock/liveness.ts judges it).
 */
export async function readLockStatus(outDir: string, o: LockReadOptions = {}): Promise<StatusLock> {
  const file = path.join(outDir, STATE_DIR, LOCK_FILE);
  const seen = await readSeen(file);
  if (!seen?.record) return lockView(seen, undefined, LOCK.staleMs, o.nowMs ?? Date.now());
  const me = { pid: process.pid, host: hostname(), started_at: '', token: '', ...(await readOwnIdentity()) };
  if (isLocal(seen.record, me)) return lockView(seen, { local: await localState(seen.record, me) }, LOCK.staleMs, o.nowMs ?? Date.now());
  const watchMs = o.watchMs ?? LOCK_WATCH_MS;
  o.onWatch?.(`the lock is held on another host (${seen.record.host}): watching its heartbeat for ${watchMs / 1000} s`);
  const from = performance.now();
  await (o.pause ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))))(watchMs);
  const again = await readSeen(file);
  const watch = { ms: performance.now() - from, moved: again !== undefined && (again.identity !== seen.identity || again.mtimeMs !== seen.mtimeMs) };
  // A lock written anew meanwhile on this host is judged by its process.
  if (again?.record && again.identity !== seen.identity && isLocal(again.record, me))
    return lockView(again, { local: await localState(again.record, me) }, LOCK.staleMs, Date.now());
  return lockView(again, { watch }, LOCK.staleMs, Date.now());
}

interface Rows {
  source: StatusSource;
  items: readonly StatusItem[];
  /** The planned rows as `run` plans them (its action for each). */
  work: readonly Work[];
  money: Money;
  damaged: ReadonlySet<string>;
  pipeline: Pipeline;
}

/** The manifests' rows planned against the journal as `run` plans them (read-only: no lock, nothing written), or the last plan's. */
async function rowsOf(options: StatusOptions, env: NodeJS.ProcessEnv, outDir: string, folded: Folded, resolved: Pipeline, nowMs: number): Promise<Rows> {
  const { replay } = folded;
  if (options.manifests.length > 0) {
    const { fleet, env: _env, ...runOptions } = options;
    // A fleet's rows are not reviewed: they are shown as enqueue plans them (review.json ignored, and said so on stderr).
    const ignoreReview = (warning: string) => void process.stderr.write(`${warning}\n`);
    const prepared = await prepare({ ...runOptions, ...(fleet && { ignoreReview }) }, env, false);
    const { plan, money } = await planFor(prepared, replay, {}, undefined, false);
    const damaged = new Set(plan.items.filter((i) => i.action === 'download' && i.state?.status === 'downloaded').map((i) => i.key));
    return { source: 'manifests', items: plan.items, work: plan.items, money, damaged, pipeline: prepared.pipeline };
  }
  const plan = replay.lastPlan;
  const source = options.fleet ? 'fleet' : plan ? 'last_plan' : 'journal';
  const local = options.fleet === undefined && !isBucketUrl(outDir);
  // Checked by size and modification time only (as a run does), never read: status stays quick on a large folder.
  const damaged = local ? await findDamagedOutputs(outDir, replay.states, replay.states.keys()) : new Set<string>();
  const items = plan?.items ?? [];
  const work = items.map((item) => {
    const known = replay.states.get(item.key);
    const state = known?.request === item.request ? known : undefined;
    return { key: item.key, action: actionFor(state, false, !damaged.has(item.key), false), estimateMicros: item.estimateMicros, row: item.row };
  });
  return { source, items, work, money: moneyOf(replay, resolved, plan, nowMs), damaged, pipeline: resolved };
}

/** The last plan: when its run started, its rows, those with an event since (ISO times of one clock compare as text), those left alone. */
function planOf(plan: RecordedPlan | undefined, lastEventAt: ReadonlyMap<string, string>): StatusPlan | undefined {
  if (plan === undefined) return undefined;
  const since = plan.session;
  const worked = plan.items.filter((item) => (lastEventAt.get(item.key) ?? '') >= since).length;
  const leftAlone = plan.items.filter((item) => item.action === 'not_selected').length;
  return { session: since, rows: plan.items.length, worked, leftAlone };
}

/** `clipmill status`: every row with its state, run id, age and cost; the money; who holds the folder. Reads only. */
export async function readStatus(options: StatusOptions): Promise<Status> {
  const env = options.env ?? process.env;
  const { manifests: _named, fleet, env: _env, ...sources } = options;
  const resolved = await resolvePipeline(sources, env);
  const outDir = outDirOf(resolved.outputDir);
  const folded = fleet ? await foldFleet(fleet) : await foldFolder(outDir);
  const nowMs = Date.now();
  const rows = await rowsOf(options, env, outDir, folded, resolved, nowMs);
  const pipeline = rows.pipeline;
  const withOtherRows = options.manifests.length === 0;
  const lock = fleet ? null : isBucketUrl(outDir) ? NO_LOCK : await readLockStatus(outDir, { nowMs, ...options.lockRead });
  return buildStatus({
    outDir,
    source: rows.source,
    items: rows.items,
    withOtherRows,
    states: folded.replay.states,
    lastEventAt: folded.lastEventAt,
    billed: rows.money.billed,
    plan: planOf(folded.replay.lastPlan, folded.lastEventAt),
    fleet: fleet?.queue ?? null,
    damaged: rows.damaged,
    holds: folded.fleetBudget
      ? fleetHolds(folded.fleetBudget)
      : holdsOf({ work: rows.work, rates: rows.money.rates, replay: folded.replay, planned: folded.planned, withOtherRows }),
    budget: budgetOf(pipeline, rows.money, folded.fleetBudget),
    lock,
    nowMs,
  });
}
