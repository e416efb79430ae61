import { Queue } from 'bullmq';
import { planToRecord, refuseOverBudget } from '../commands/run.js';
import { describePlan, planFor, prepare, type RunOptions } from '../commands/prepare.js';
import { ACTIVE_ACTIONS } from '../execute/runner.js';
import { fileImagesOf } from '../execute/images.js';
import type { ImageInfo } from '../load/images.js';
import type { Plan, WorkItem } from '../plan/plan.js';
import { EXIT } from '../report/summary.js';
import { planRecord } from '../state/plans.js';
import { markFleetFolder } from '../state/fleet-marker.js';
import { isBucketUrl } from '../infra/bucket.js';
import { Replay } from '../state/replay.js';
import { FleetBudget } from './budget.js';
import { addAgain, jobIdOf, queueNames, type RowJob } from './queue.js';
import { checkDurability, connectRedis, fleetKeys, redisOptionsOf, shownRedisUrl } from './redis.js';
import { fleetEvents, FleetStore } from './store.js';

export interface EnqueueOptions extends RunOptions {
  redisUrl: string;
  queue: string;
}

export interface EnqueueResult {
  exitCode: number;
  plan?: Plan;
  added: number;
}

/** Jobs are added this many at a time (one round trip each). */
const BATCH = 500;

function jobOf(item: WorkItem, images: ReadonlyMap<string, ImageInfo>, retryFailed: boolean): RowJob {
  const infos = fileImagesOf(item.row.request).flatMap((ref) => images.get(ref.path) ?? []);
  return { key: item.key, request: item.request, estimateMicros: item.estimateMicros, row: item.row, images: infos, retryFailed };
}

/** Adds one job per row with work, in batches; a row enqueued again runs again (its lease and state decide what it does). */
async function addJobs(queue: Queue, jobs: readonly RowJob[]): Promise<number> {
  for (let i = 0; i < jobs.length; i += BATCH)
    await addAgain(
      queue,
      'row',
      jobs.slice(i, i + BATCH).map((data) => ({ id: jobIdOf(data.key, 'row'), data })),
    );
  return jobs.length;
}

/**
 * `clipmill enqueue`: everything `run` checks before it sends (manifests, plan against the fleet's journal,
 * estimate, budget), then the fleet's plan, budget and account cap in Redis, and one job per row with work.
 * Nothing is sent to the provider: workers do that.
 */
export async function enqueueManifests(options: EnqueueOptions): Promise<EnqueueResult> {
  const env = options.env ?? process.env;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const prepared = await prepare({ ...options, ignoreReview: print }, env, true);
  const connection = redisOptionsOf(options.redisUrl);
  const redis = await connectRedis(options.redisUrl);
  const keys = fleetKeys(options.queue);
  const queue = new Queue(queueNames(options.queue).rows, { connection });
  try {
    await checkDurability(redis);
    if (!isBucketUrl(prepared.outDir)) await markFleetFolder(prepared.outDir, { queue: options.queue, redis: shownRedisUrl(options.redisUrl) });
    const replay = new Replay();
    const seen = { lastId: '0-0' };
    for await (const event of fleetEvents(redis, keys, seen)) replay.apply(event);
    const { plan, money } = await planFor(prepared, replay, options);
    print(`plan: ${describePlan(plan)}`);
    if (refuseOverBudget(prepared, plan, money, options, print)) return { exitCode: EXIT.stopped, plan, added: 0 };
    // Re-based on the journal as read, before this enqueue's own plan event.
    await FleetBudget.open(redis, keys, { limitMicros: prepared.budgetMicros, spentMicros: money.spentBeforeMicros, lastEventId: seen.lastId });
    const store = new FleetStore(redis, keys);
    // Two enqueuers may record at once: each records its whole plan, never a difference from one the other replaced.
    await store.append(planRecord(store.session, planToRecord(prepared, plan), undefined));
    await queue.setGlobalConcurrency(prepared.pipeline.concurrency);
    // The provider's billed prices so far: a worker's reservation never assumes less, as in a local run.
    await redis.hset(keys.limits, 'requests_per_minute', prepared.pipeline.requestsPerMinute, 'observed_rates', JSON.stringify(money.rates));
    const work = plan.items.filter((item) => ACTIVE_ACTIONS.has(item.action));
    const added = await addJobs(
      queue,
      work.map((item) => jobOf(item, prepared.loaded.images, options.retryFailed ?? false)),
    );
    print(
      `enqueued ${added} row${added === 1 ? '' : 's'} on fleet "${options.queue}" at ${shownRedisUrl(options.redisUrl)}; account cap ${prepared.pipeline.concurrency} runs at once`,
    );
    return { exitCode: EXIT.ok, plan, added };
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
