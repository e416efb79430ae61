/**
 * The fleet's BullMQ queues and what a job carries. One job per row (its id from the row key), on the
 * `rows` queue whose global concurrency is the account's cap; a finished video's download is a job on the
 * `downloads` queue, so a download never holds one of the account's slots.
 */
import type { Job, Queue } from 'bullmq';
import type { ImageInfo } from '../load/images.js';
import type { Row } from '../load/row.js';

/** A BullMQ queue name cannot hold ':'; ours are `clipmill-<name>-rows` and `clipmill-<name>-downloads`. */
export function queueNames(name: string): { rows: string; downloads: string } {
  return { rows: `clipmill-${name}-rows`, downloads: `clipmill-${name}-downloads` };
}

/** A fleet's name: letters, digits, '-' and '_' (it names Redis keys and queues). */
export function checkFleetName(name: string): string | undefined {
  return /^[A-Za-z0-9_-]{1,64}$/.test(name) ? undefined : `--queue "${name}": use 1 to 64 letters, digits, '-' or '_'`;
}

/** A row's job id: its key in base64url (no ':', never an integer), so adding a row twice adds one job. */
export function jobIdOf(key: string, kind: 'row' | 'download'): string {
  return `${kind === 'row' ? 'r' : 'd'}-${Buffer.from(key, 'utf8').toString('base64url')}`;
}

export interface RowJob {
  key: string;
  request: string;
  estimateMicros: number;
  row: Row;
  /** The local images the row's request names, as the enqueuer checked them (path, content hash, size). */
  images: ImageInfo[];
  /** `--retry-failed` at enqueue time: a row that failed for good is submitted again. */
  retryFailed: boolean;
}

/** How long a dead worker keeps its rows (its job locks and row leases), unless CLIPMILL_FLEET_LOCK_MS says otherwise. */
export const DEFAULT_LOCK_MS = 10_000;

/** The lock time from the environment (at least half a second), or the default. */
export function lockMsOf(env: NodeJS.ProcessEnv): number {
  const ms = Number(env.CLIPMILL_FLEET_LOCK_MS ?? DEFAULT_LOCK_MS);
  return Number.isFinite(ms) && ms >= 500 ? Math.round(ms) : DEFAULT_LOCK_MS;
}

/** BullMQ settings for a fleet: a dead worker's job is picked up within seconds, and a job that stalls again is re-attached, not failed. */
export function workerTimings(lockMs: number): { lockDuration: number; stalledInterval: number; maxStalledCount: number } {
  // Our lease and journal make a re-run safe: it re-attaches to the run, so a stalled job is never failed for stalling.
  return { lockDuration: lockMs, stalledInterval: Math.max(250, Math.round(lockMs / 2)), maxStalledCount: 1_000_000 };
}

/**
 * Adds jobs by id, removing first a finished job that holds the same id (kept for the dashboard): BullMQ
 * ignores an add whose id exists, and a row enqueued again, or a video to download again, must run again.
 */
export async function addAgain(queue: Queue, name: string, jobs: readonly { id: string; data: RowJob }[], delayMs = 0): Promise<void> {
  const existing = await Promise.all(jobs.map((job) => queue.getJob(job.id) as Promise<Job<RowJob> | undefined>));
  await Promise.all(
    existing.map(async (job, i) => {
      if (job === undefined) return;
      if ((await job.isCompleted()) || (await job.isFailed())) await job.remove();
      // A job still waiting carries the row as it was: it takes the row as it is now (an edited prompt, --retry-failed).
      else if ((await job.isWaiting()) || (await job.isDelayed())) await job.updateData(jobs[i]!.data);
    }),
  );
  await queue.addBulk(jobs.map((job) => ({ name, data: job.data, opts: { jobId: job.id, ...(delayMs > 0 && { delay: delayMs }), ...JOB_OPTIONS } })));
}

/** Finished jobs are kept a day for the dashboard; the row's state lives in the fleet journal either way. */
export const JOB_OPTIONS = {
  removeOnComplete: { age: 24 * 3600 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;
