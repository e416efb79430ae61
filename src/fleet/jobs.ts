import { DelayedError, type Job, type Queue } from 'bullmq';
import { ACTIVE_ACTIONS, type Runner } from '../execute/runner.js';
import type { CappedTasks } from '../infra/pool.js';
import { uploadKey, type RowState } from '../lifecycle/events.js';
import type { ImageInfo } from '../load/images.js';
import { actionFor, type WorkItem } from '../plan/plan.js';
import { findDamagedOutputs } from '../state/outputs.js';
import { addAgain, jobIdOf, type RowJob } from './queue.js';
import type { FleetStore } from './store.js';

/** A row job's answer when its run is paid and its download goes to the downloads queue. */
const PAID = 'paid';
/** A job's answers that need nothing more from it. */
const FINISHED = new Set([PAID, 'done', 'downloaded', 'failed', 'over_budget']);
/** A job stopped before its row was through is offered again after this long. */
const REQUEUE_MS = 1_000;

/** A job's return value, as the dashboard shows it: the row's state, its run and what it cost. */
interface JobOutcome {
  status: string;
  run_id?: string;
  cost_usd?: number;
}

function outcomeOf(status: string, state: RowState | undefined): JobOutcome {
  const outcome: JobOutcome = { status };
  if (state?.runId !== undefined) outcome.run_id = state.runId;
  if (state?.costMicros !== undefined) outcome.cost_usd = state.costMicros / 1e6;
  return outcome;
}

/** One job's row, driven here under the row's lease: what the fleet's journal says decides what is done, never the job itself. */
export class FleetJobs {
  done = { rows: 0, downloads: 0 };

  constructor(
    /** The runner's images: each job adds the ones its row names. */
    private readonly images: Map<string, ImageInfo>,
    private readonly store: FleetStore,
    private readonly runner: Runner,
    private readonly provider: string,
    private readonly outDir: string,
    private readonly downloads: Queue,
    /** Aborted when this worker must take no more jobs (SIGTERM, or its runner stopped on a 402, a 401/403 or a journal it cannot write). */
    private readonly halt: AbortController,
    /** Paid rows' downloads under way here, out of the account's slots. */
    readonly background: CappedTasks,
  ) {}

  /** Whether this worker stopped working rows (a budget stop is not one: its rows end over budget and the worker goes on). */
  private halted(): boolean {
    const stopped = this.runner.stopped;
    if (stopped !== undefined && stopped.kind !== 'budget' && !this.halt.signal.aborted) this.halt.abort();
    return this.halt.signal.aborted;
  }

  async process(job: Job<RowJob>, token: string | undefined, kind: 'row' | 'download'): Promise<JobOutcome> {
    const data = job.data;
    for (const info of data.images) this.images.set(info.path, info);
    if (data.images.some((info) => this.store.upload(uploadKey(this.provider, info.sha256)) === undefined)) await this.store.loadUploads();
    const lease = await this.store.lease(data.key);
    if (!lease.held) {
      // Another worker is on this row (a duplicate job, a dashboard retry): look again once its lease could have ended.
      await job.moveToDelayed(Date.now() + lease.retryInMs, token);
      throw new DelayedError();
    }
    const renewal = setInterval(() => void this.store.renew(data.key).catch(() => {}), this.store.leaseMs / 3);
    const done = async () => {
      clearInterval(renewal);
      // Redis holds the row's reservation; a later job of the row asks it again.
      this.runner.reservations.forget(data.key);
      await this.store.release(data.key);
    };
    let outcome: JobOutcome;
    let unfinished: boolean;
    let download: (() => Promise<void>) | undefined;
    try {
      const driven = await this.drive(data, lease.state, kind);
      outcome = outcomeOf(driven.status, this.store.row(data.key));
      unfinished = this.halted() && !FINISHED.has(outcome.status);
      if (!unfinished) download = driven.download;
    } finally {
      if (download === undefined) await done();
    }
    if (unfinished) {
      // Stopped before the row was through: it goes back to the queue for another worker (or this one, restarted).
      await job.moveToDelayed(Date.now() + REQUEUE_MS, token);
      throw new DelayedError();
    }
    if (outcome.status !== PAID) return outcome;
    // The run is paid and this row's slot at the provider is free now. Its video comes in here, in the background, with
    // the URL this job just read and the lease still held; a download job waits behind it in case this worker dies.
    const downloadJob = { id: jobIdOf(data.key, 'download'), data };
    if (download === undefined) {
      await addAgain(this.downloads, 'download', [downloadJob]);
      return outcome;
    }
    try {
      await addAgain(this.downloads, 'download', [downloadJob], this.store.leaseMs);
    } catch (error) {
      // No reserve job, no background download: the lease goes, and the next enqueue plans the paid row as "to download".
      await done();
      throw error;
    }
    this.inBackground(data.key, download, done, downloadJob.id);
    return outcome;
  }

  /** A paid row's download, under its lease; once its video is recorded, the download job kept in reserve is not needed. */
  private inBackground(key: string, download: () => Promise<void>, done: () => Promise<void>, reserveJobId: string): void {
    this.background.add(async () => {
      try {
        await download();
        this.done.downloads++;
      } finally {
        const downloaded = this.store.row(key)?.status === 'downloaded';
        await done();
        // Removing a job that has started since fails; it then finds the row done and does nothing.
        if (downloaded) await this.downloads.remove(reserveJobId).catch(() => 0);
      }
    });
  }

  /** What a job did to its row; a row job whose run is paid also hands back the download, for `process` to run in the background. */
  private async drive(data: RowJob, known: WorkItem['state'], kind: 'row' | 'download'): Promise<{ status: string; download?: () => Promise<void> }> {
    const state = known?.request === data.request ? known : undefined;
    const intact = state?.output === undefined || !(await findDamagedOutputs(this.outDir, new Map([[data.key, state]]), [data.key])).has(data.key);
    const action = actionFor(state, data.retryFailed, intact, false);
    if (!ACTIVE_ACTIONS.has(action)) return { status: action };
    if (kind === 'row' && action === 'download') return { status: this.handOff() };
    // A download job only downloads: a row changed or gone back to work since is its row job's.
    if (kind === 'download' && action !== 'download') return { status: action };
    const item: WorkItem = {
      row: data.row,
      key: data.key,
      request: data.request,
      action,
      estimateMicros: data.estimateMicros,
      changed: known !== undefined && state === undefined,
    };
    if (state) item.state = state;
    // A run that may already exist is money being spent, whatever the budget says (counted once per row).
    if (action === 'reattach' || action === 'unknown') await this.runner.reservations.commit(item);
    let download: (() => Promise<void>) | undefined;
    await this.runner.drive(item, { add: (task) => (download = task) });
    if (download !== undefined && kind === 'download') {
      await download();
      this.done.downloads++;
    } else if (download !== undefined) {
      return { status: this.handOff(), download };
    }
    if (kind === 'row') this.done.rows++;
    const status = this.store.row(data.key)?.status ?? 'pending';
    return { status: status === 'pending' && this.runner.stopped?.kind === 'budget' ? 'over_budget' : status };
  }

  private handOff(): string {
    this.done.rows++;
    return PAID;
  }
}
