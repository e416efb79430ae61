import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, Worker } from 'bullmq';
import { Bucket, isBucketUrl } from '../infra/bucket.js';
import { CappedTasks } from '../infra/pool.js';
import type { Pipeline } from '../config/pipeline.js';
import { Runner, type ExecuteContext, type StopReason } from '../execute/runner.js';
import { HttpClient } from '../infra/http.js';
import type { Logger } from '../infra/log.js';
import type { ImageInfo } from '../load/images.js';
import { configuredHosts, openProvider, type ProviderHandle } from '../providers/index.js';
import { FleetBudget } from './budget.js';
import { FleetGate } from './gate.js';
import { lockMsOf, queueNames, workerTimings, type RowJob } from './queue.js';
import { checkDurability, connectRedis, fleetKeys, redisOptionsOf, type FleetKeys } from './redis.js';
import type { Redis } from 'ioredis';
import { FleetStore } from './store.js';
import { FleetJobs } from './jobs.js';

export interface WorkerOptions {
  redisUrl: string;
  queue: string;
  pipeline: Pipeline;
  env: NodeJS.ProcessEnv;
  outDir: string;
  log: Logger;
  signal: AbortSignal;
  /** Exit once both queues have nothing waiting, delayed or active (a nightly cron job); otherwise run until stopped. */
  untilIdle: boolean;
}

/** What one worker process did. */
export interface WorkerResult {
  rows: number;
  downloads: number;
  /** Why this worker's runner stopped (a 402, a 401/403, a journal it could not write, the budget), if it did. */
  stopped?: StopReason;
}

async function idle(queues: readonly Queue[]): Promise<boolean> {
  for (const queue of queues) {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
    if (Object.values(counts).some((n) => n > 0)) return false;
  }
  return true;
}

async function untilStopped(o: WorkerOptions, queues: readonly Queue[]): Promise<void> {
  const stopped = new Promise<void>((resolve) => o.signal.addEventListener('abort', () => resolve(), { once: true }));
  if (!o.untilIdle) return stopped;
  // Twice idle in a row: a job moving between states (a download handed off) is never caught in between.
  let idleChecks = 0;
  while (!o.signal.aborted && idleChecks < 2) {
    idleChecks = (await idle(queues)) ? idleChecks + 1 : 0;
    await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 250))]);
  }
}

/** What the enqueuer set for every worker: the budget's limit, the account's requests per minute (a worker's own --rpm may only be lower), the prices seen. */
async function sharedSettings(redis: Redis, keys: FleetKeys, ownRpm: number) {
  const limit = await redis.hget(keys.budget, 'limit');
  const fleetRpm = Number(await redis.hget(keys.limits, 'requests_per_minute'));
  return {
    limitMicros: limit === null ? undefined : Number(limit),
    rpm: fleetRpm > 0 ? Math.min(fleetRpm, ownRpm) : ownRpm,
    rates: JSON.parse((await redis.hget(keys.limits, 'observed_rates')) ?? '{}') as ExecuteContext['observedRates'],
  };
}

/** `clipmill worker`: takes rows from the fleet's queues until stopped (or idle, with `--until-idle`). */
export async function runWorker(o: WorkerOptions): Promise<WorkerResult> {
  const connection = redisOptionsOf(o.redisUrl);
  const redis = await connectRedis(o.redisUrl);
  const keys = fleetKeys(o.queue);
  const names = queueNames(o.queue);
  const lockMs = lockMsOf(o.env);
  const store = new FleetStore(redis, keys, undefined, lockMs, o.pipeline.requestTimeoutMs + lockMs);
  const http = new HttpClient({ connections: Math.max(8, o.pipeline.concurrency * 2), allowedHosts: configuredHosts(o.pipeline, o.env) });
  let handle: ProviderHandle | undefined;
  let staging: string | undefined;
  const queues = [new Queue(names.rows, { connection }), new Queue(names.downloads, { connection })] as const;
  const workers: Worker[] = [];
  try {
    await checkDurability(redis, o.log);
    await store.loadUploads();
    const shared = await sharedSettings(redis, keys, o.pipeline.requestsPerMinute);
    const budget = new FleetBudget(redis, keys, shared.limitMicros, (key) => store.tokenOf(key));
    handle = await openProvider(o.pipeline, o.env, http, new FleetGate(redis, keys, shared.rpm));
    const images = new Map<string, ImageInfo>();
    // Videos for a bucket are staged in a local folder of this worker's own on their way.
    const bucket = isBucketUrl(o.outDir) ? Bucket.shared(o.outDir) : undefined;
    staging = bucket ? await mkdtemp(path.join(tmpdir(), 'clipmill-staging-')) : undefined;
    const ctx: ExecuteContext = {
      provider: handle.provider,
      http,
      store,
      log: o.log,
      pipeline: o.pipeline,
      outDir: staging ?? o.outDir,
      bucket,
      images,
      signal: o.signal,
      budget,
      observedRates: shared.rates,
    };
    // SIGTERM, or this worker's runner stopping, ends the worker: no more jobs are taken, those under way go back to the queue.
    const halt = new AbortController();
    o.signal.addEventListener('abort', () => halt.abort(), { once: true });
    const runner = new Runner(ctx);
    const jobs = new FleetJobs(images, store, runner, o.pipeline.provider, o.outDir, queues[1], halt, new CappedTasks(o.pipeline.concurrency));
    const options = { connection, concurrency: o.pipeline.concurrency, ...workerTimings(lockMs) };
    workers.push(new Worker<RowJob>(names.rows, (job, token) => jobs.process(job, token, 'row'), options));
    workers.push(new Worker<RowJob>(names.downloads, (job, token) => jobs.process(job, token, 'download'), options));
    await untilStopped({ ...o, signal: halt.signal }, queues);
    // Downloads under way end (or are cut short by SIGTERM: their reserve jobs take them over) before the worker goes.
    await jobs.background
      .drained()
      .catch((error: unknown) => o.log.warn('worker_end', `a background download failed (its reserve download job takes it over): ${String(error)}`));
    return runner.stopped ? { ...jobs.done, stopped: runner.stopped } : jobs.done;
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all(queues.map((q) => q.close()));
    await handle?.close();
    await http.close();
    await store.close();
    redis.disconnect();
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
  }
}
