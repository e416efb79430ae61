import { rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Pipeline } from '../config/pipeline.js';
import { ApiError, isAbortError } from '../infra/errors.js';
import type { HttpClient } from '../infra/http.js';
import type { Logger } from '../infra/log.js';
import { withRetry } from '../infra/retry.js';
import { clientRefFor } from '../lifecycle/client-ref.js';
import type { LookUpAnswer } from '../lifecycle/lost-create.js';
import type { Command, Failure, Input } from '../lifecycle/machine.js';
import { archivedVideoPath, videoPathFor, type WorkItem } from '../plan/plan.js';
import type { Provider, RunRef, RunSnapshot, Submission } from '../providers/provider.js';
import { JournalWriteError } from '../state/disk-write.js';
import { sha256Of } from '../state/outputs.js';
import type { StateStore } from '../state/store.js';
import { downloadVideo, maxVideoBytes } from './download.js';
import { downloadToBucket } from './bucket-download.js';
import type { Bucket } from '../infra/bucket.js';
import type { ImageUrls } from './images.js';
import type { Reservations } from './reservations.js';

export interface CommandContext {
  provider: Provider;
  http: HttpClient;
  store: StateStore;
  log: Logger;
  pipeline: Pick<Pipeline, 'requestTimeoutMs' | 'downloadTimeoutMs' | 'retry'>;
  /** Where videos go: this folder, or, with `bucket`, a local staging folder they pass through. */
  outDir: string;
  /** Videos to an S3-compatible bucket instead of `outDir` (fleet mode). */
  bucket?: Bucket | undefined;
  images: ImageUrls;
  reservations: Reservations;
  /** Polls, sleeps, downloads, look-ups: ends on Ctrl-C or a stop. */
  signal: AbortSignal;
  /** A create already sent is let finish unless everything stops (Ctrl-C lets it finish too). */
  sendSignal: AbortSignal;
  /** Set once no new create may start (Ctrl-C, budget, 402, a stop). */
  submitsStopped: () => boolean;
}

/**
 * Performs the row machine's commands against the world (provider, disk, budget) and turns every
 * outcome, errors included, into the machine's next input. Decides nothing itself.
 */
export class RowCommands {
  constructor(private readonly ctx: CommandContext) {}

  async perform(item: WorkItem, command: Command): Promise<Input> {
    try {
      switch (command.do) {
        case 'reserve':
          if (this.ctx.submitsStopped()) return { on: 'submits_stopped' };
          return { on: 'reserved', ok: await this.ctx.reservations.reserve(item) };
        case 'create':
          return await this.create(item, command.attempt, command.delayMs);
        case 'look_up':
          return await this.lookUp(command.atMs, command.clientRefs);
        case 'poll':
          await this.pause(command.delayMs);
          return { on: 'polled', snapshot: await this.getRun(item, command.runId) };
        case 'refresh':
          return { on: 'polled', snapshot: await this.getRun(item, command.runId) };
        case 'cancel':
          return { on: 'cancelled', ok: (await this.ctx.provider.cancel?.(this.refOf(item, command.runId), this.ctx.signal)) ?? false };
        case 'download':
          return await this.download(item, command.snapshot, command.keepPrevious, command.delayMs);
        case 'end':
          return { on: 'start' };
      }
    } catch (error) {
      return { on: 'failed', failure: this.failureOf(error) };
    }
  }

  /** Any error as the rules see it; nothing here holds a secret (provider text is redacted where it is read). */
  failureOf(error: unknown): Failure {
    const aborted = isAbortError(error) || this.ctx.signal.aborted;
    if (error instanceof ApiError) {
      const { kind, code, message, status, retryAfterMs, mayHaveReachedServer } = error;
      return {
        kind,
        code,
        message,
        mayHaveReachedServer,
        aborted,
        ...(status !== undefined && { status }),
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      };
    }
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof JournalWriteError) return { kind: 'io', code: 'JOURNAL', message, mayHaveReachedServer: true, aborted };
    return { kind: 'internal', code: 'INTERNAL', message, mayHaveReachedServer: true, aborted };
  }

  private async pause(delayMs: number | undefined): Promise<void> {
    if (delayMs !== undefined) await sleep(delayMs, undefined, { signal: this.ctx.signal });
  }

  /** The provider's handle on a run: its id, and its own addresses when the provider gave some. */
  private refOf(item: WorkItem, runId: string): RunRef {
    const state = this.ctx.store.row(item.key);
    const urls = state?.request === item.request && state.runId === runId ? state.runUrls : undefined;
    return urls ? { runId, urls } : { runId };
  }

  private getRun(item: WorkItem, runId: string): Promise<RunSnapshot> {
    const { provider, pipeline, signal } = this.ctx;
    return withRetry(() => provider.getRun(this.refOf(item, runId), signal), pipeline.retry, signal);
  }

  /** Sends one create. Its intent is journaled once the rate slot is ours, just before the bytes leave: its time is the send's. */
  private async create(item: WorkItem, attempt: number, delayMs: number | undefined): Promise<Input> {
    const { provider, store, images } = this.ctx;
    let sent = false;
    try {
      await this.pause(delayMs);
      if (this.ctx.submitsStopped()) return { on: 'submits_stopped' };
      const input = await images.inputFor(item.row.request);
      const clientRef = clientRefFor(item.key, item.request, attempt);
      const metadata = { clipmill_manifest: item.row.manifest, clipmill_row: item.row.id, clipmill_request: item.request, clipmill_submit: clientRef };
      const submission: Submission = { clientRef, metadata };
      const beforeSend = async () => {
        await store.append({ type: 'submitting', key: item.key, request: item.request, attempt, clientRef });
        sent = true;
      };
      const run = await provider.submit(input, submission, this.ctx.sendSignal, { waitSignal: this.ctx.signal, beforeSend });
      return { on: 'created', runId: run.runId, ...(run.urls && { urls: run.urls }) };
    } catch (error) {
      return { on: 'create_failed', sent, failure: this.failureOf(error) };
    }
  }

  /** Waits for the rule's time, then one complete read of the provider's list for each client_ref: the runs listed, or why it cannot tell. */
  private async lookUp(atMs: number, clientRefs: readonly string[]): Promise<Input> {
    // A timer may fire a millisecond early: the rule is about the clock, so wait until it says so.
    while (Date.now() < atMs) await sleep(atMs - Date.now(), undefined, { signal: this.ctx.signal });
    // The read's start, not its end, is what the rule measures: a run committed during a slow read may be missed.
    const readAtMs = Date.now();
    return { on: 'looked_up', answer: await this.listRuns(clientRefs), readAtMs };
  }

  private async listRuns(clientRefs: readonly string[]): Promise<LookUpAnswer> {
    const { provider, pipeline, signal } = this.ctx;
    const found: string[][] = [];
    try {
      for (const clientRef of clientRefs) found.push(await withRetry(() => provider.findRuns(clientRef, signal), pipeline.retry, signal));
      const [latest = [], ...earlier] = found;
      return latest.length + earlier.flat().length > 0 ? { kind: 'found', latest, earlier: earlier.flat() } : { kind: 'none' };
    } catch (error) {
      // Refusals that stop the run (401/403, 402) and Ctrl-C are not answers: they are the run's to handle.
      if (isAbortError(error) || signal.aborted || (error instanceof ApiError && error.kind !== 'transient' && error.kind !== 'row')) throw error;
      return { kind: 'cannot_tell', reason: error instanceof Error ? error.message : String(error) };
    }
  }

  private async download(item: WorkItem, snapshot: RunSnapshot, keepPrevious: boolean, delayMs: number | undefined): Promise<Input> {
    const { provider, http, pipeline, outDir, signal, bucket } = this.ctx;
    await this.pause(delayMs);
    if (!snapshot.videoUrl) throw new ApiError('row', 'NO_OUTPUT', `run ${snapshot.runId} succeeded without a video URL`);
    const limits = {
      http,
      signal,
      idleTimeoutMs: pipeline.requestTimeoutMs,
      deadlineMs: pipeline.downloadTimeoutMs,
      maxBytes: maxVideoBytes(item.row.request.durationSeconds),
    };
    if (bucket) {
      const shelf = { bucket, stagingDir: outDir, log: this.ctx.log, previous: this.ctx.store.row(item.key)?.previous };
      return downloadToBucket(shelf, item, { ...snapshot, videoUrl: snapshot.videoUrl }, keepPrevious, limits);
    }
    const target = videoPathFor(outDir, item.row);
    if (keepPrevious) await this.keepPreviousVideo(item, target);
    const video = await downloadVideo(snapshot.videoUrl, target, {
      ...limits,
      sidecar: { key: item.key, request: item.request, run_id: snapshot.runId, cost_micros: this.ctx.store.row(item.key)?.costMicros, provider: provider.name },
    });
    return {
      on: 'downloaded',
      runId: snapshot.runId,
      path: path.relative(outDir, video.path),
      bytes: video.bytes,
      sha256: video.sha256,
      seconds: video.seconds,
      mtimeMs: video.mtimeMs,
    };
  }

  /** A changed row's old video is moved aside (`<id>.<old request>.mp4`), never overwritten, never over an archive. */
  private async keepPreviousVideo(item: WorkItem, target: string): Promise<void> {
    const { outDir, log } = this.ctx;
    const previous = this.ctx.store.row(item.key)?.previous;
    if (!previous || path.join(outDir, previous.output.path) !== target) return;
    const archived = archivedVideoPath(outDir, item.row, previous.request);
    if (
      await stat(archived).then(
        () => true,
        () => false,
      )
    )
      return; // already kept: what sits at the target is newer
    const info = await stat(target).catch(() => undefined);
    // Only the earlier video itself is moved: a newer file at the target (a download whose record was cut short) is replaced.
    if (info?.size !== previous.output.bytes || (await sha256Of(target)) !== previous.output.sha256) return;
    await rename(target, archived);
    log.info('kept_previous', `the row changed: its earlier video is kept as ${path.relative(outDir, archived)}`, {
      manifest: item.row.manifest,
      row: item.row.id,
      line: item.row.line,
    });
  }
}
