import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import type { Pipeline } from './config.js';
import { downloadVideo } from './download.js';
import { ApiError, isAbortError } from './errors.js';
import type { HttpClient } from './http.js';
import type { Journal } from './journal.js';
import type { Logger } from './log.js';
import type { ImageInfo } from './manifest/images.js';
import { buildKlingInput, type ImageRef, type KlingV3Input } from './model/kling-v3.js';
import type { WorkItem } from './plan.js';
import type { Provider, RunSnapshot } from './providers/provider.js';
import { backoffMs, retryDelayMs, withRetry, type RetryPolicy } from './retry.js';

export interface ExecuteContext {
  provider: Provider;
  http: HttpClient;
  journal: Journal;
  log: Logger;
  pipeline: Pick<Pipeline, 'concurrency' | 'pollIntervalMs' | 'jobTimeoutMs' | 'requestTimeoutMs' | 'retry'>;
  outDir: string;
  images: ReadonlyMap<string, ImageInfo>;
  /** The run's signal: Ctrl-C, or a fatal error. */
  signal: AbortSignal;
}

/** Why the run stopped early, if it did: the CLI turns it into an exit code. */
export interface StopReason {
  kind: 'fatal' | 'credit';
  message: string;
}

export function videoPathFor(outDir: string, item: Pick<WorkItem, 'row'>): string {
  return path.join(outDir, item.row.manifest, `${item.row.id}.mp4`);
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);

class RowRunner {
  private readonly stopSubmits = new AbortController();
  private readonly stopAll = new AbortController();
  private readonly signal: AbortSignal;
  stopped: StopReason | undefined;

  constructor(private readonly ctx: ExecuteContext) {
    this.signal = AbortSignal.any([ctx.signal, this.stopAll.signal]);
  }

  private get retry(): RetryPolicy {
    return this.ctx.pipeline.retry;
  }

  private fields(item: WorkItem) {
    return { manifest: item.row.manifest, row: item.row.id, line: item.row.line };
  }

  /** 401/403 stop everything; 402 stops new submissions and lets runs in flight finish. */
  private stop(error: ApiError): void {
    if (this.stopped === undefined) {
      this.stopped = { kind: error.kind === 'credit' ? 'credit' : 'fatal', message: error.message };
      this.ctx.log.error('run_stopped', `stopping: ${error.message}`, { code: error.code });
    }
    this.stopSubmits.abort();
    if (error.kind === 'fatal') this.stopAll.abort();
  }

  async process(item: WorkItem): Promise<void> {
    try {
      let runId = item.state?.runId;
      if (item.action === 'submit') {
        if (this.stopSubmits.signal.aborted || this.signal.aborted) return;
        runId = await this.submit(item);
      }
      if (runId === undefined) return;
      let snapshot: RunSnapshot | undefined;
      if (item.action === 'download' && item.state?.videoUrl) {
        snapshot = { runId, state: 'succeeded', videoUrl: item.state.videoUrl };
      } else {
        snapshot = await this.waitForRun(item, runId);
        if (snapshot === undefined) return;
      }
      await this.download(item, snapshot);
    } catch (error) {
      if (isAbortError(error) || this.signal.aborted) return; // the journal already says where the row stands
      if (error instanceof ApiError && (error.kind === 'fatal' || error.kind === 'credit')) {
        this.stop(error);
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      const known = this.ctx.journal.states.get(item.key);
      if (known?.request === item.request && known.status === 'succeeded') {
        // Generated and paid for: never written off. The journal keeps the run id and a rerun downloads it.
        this.ctx.log.error('download_failed', `${message}; the video is paid for and a rerun downloads it`, this.fields(item));
        return;
      }
      this.ctx.log.error('row_error', message, this.fields(item));
      const runId = known?.request === item.request ? known.runId : undefined;
      await this.ctx.journal.append({
        type: 'failed',
        key: item.key,
        request: item.request,
        code: error instanceof ApiError ? error.code : 'INTERNAL',
        message,
        attempt: known?.attempts ?? 0,
        billed: false,
        ...(runId !== undefined && { runId }),
      });
    }
  }

  private async buildInput(item: WorkItem): Promise<KlingV3Input> {
    const urls = new Map<string, string>();
    const refs = [item.row.request.image, item.row.request.endImage].filter((r): r is Extract<ImageRef, { kind: 'file' }> => r?.kind === 'file');
    for (const ref of refs) {
      const info = this.ctx.images.get(ref.path);
      if (!info) throw new Error(`image ${ref.written} was not checked before the run`);
      urls.set(ref.path, this.ctx.provider.imageUrl(info, await readFile(ref.path)));
    }
    return buildKlingInput(item.row.request, (ref) => (ref.kind === 'url' ? ref.url : urls.get(ref.path)!));
  }

  /**
   * Creates the run, recording the intent first and the run id as soon as it is known.
   * Retried blindly only when the provider certainly did not act: 429, or a refused connection.
   */
  private async submit(item: WorkItem): Promise<string | undefined> {
    const { journal, provider, log } = this.ctx;
    const input = await this.buildInput(item);
    const metadata = { clipmill_manifest: item.row.manifest, clipmill_row: item.row.id, clipmill_request: item.request };
    const attempt = (journal.states.get(item.key)?.request === item.request ? (journal.states.get(item.key)?.attempts ?? 0) : 0) + 1;
    await journal.append({ type: 'submitting', key: item.key, request: item.request, attempt });
    for (let tries = 1; ; tries++) {
      try {
        const runId = await provider.submit(input, metadata, this.signal);
        await journal.append({ type: 'submitted', key: item.key, request: item.request, runId });
        log.info('submitted', `submitted as ${runId}`, { ...this.fields(item), run_id: runId });
        return runId;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const certainlyNotCreated = error.status === 429 || !error.mayHaveReachedServer || (error.kind !== 'transient' && error.status !== undefined);
        if (error.kind === 'transient' && certainlyNotCreated && tries < this.retry.maxAttempts && !this.signal.aborted) {
          const delayMs = retryDelayMs(error, tries, this.retry);
          log.warn('submit_retry', `${error.message}; retrying in ${delayMs} ms`, this.fields(item));
          await sleep(delayMs, undefined, { signal: this.signal });
          continue;
        }
        if (error.kind === 'transient' && !certainlyNotCreated) {
          // The provider may have created the run: leave the intent in the journal so nothing is paid twice.
          log.error('submit_unknown', `${error.message}; the run may exist at the provider, so it is not resubmitted`, this.fields(item));
          return undefined;
        }
        if (error.kind === 'row') {
          await journal.append({ type: 'failed', key: item.key, request: item.request, code: error.code, message: error.message, attempt, billed: false });
          log.error('row_failed', error.message, this.fields(item));
          return undefined;
        }
        await journal.append({ type: 'not_submitted', key: item.key, request: item.request, code: error.code, message: error.message });
        throw error;
      }
    }
  }

  /** Polls until the run ends or its deadline passes; records success or failure in the journal. */
  private async waitForRun(item: WorkItem, runId: string): Promise<RunSnapshot | undefined> {
    const { journal, provider, log, pipeline } = this.ctx;
    const deadline = Date.now() + pipeline.jobTimeoutMs;
    for (;;) {
      await sleep(pipeline.pollIntervalMs, undefined, { signal: this.signal });
      const snapshot = await withRetry(() => provider.getRun(runId, this.signal), this.retry, this.signal, (error, attempt, delayMs) =>
        log.warn('poll_retry', `${error instanceof Error ? error.message : String(error)}; retry ${attempt} in ${delayMs} ms`, this.fields(item)),
      );
      if (snapshot.state === 'succeeded') {
        await journal.append({
          type: 'succeeded',
          key: item.key,
          request: item.request,
          runId,
          ...(snapshot.videoUrl !== undefined && { videoUrl: snapshot.videoUrl }),
          ...(snapshot.costMicros !== undefined && { costMicros: snapshot.costMicros }),
        });
        return snapshot;
      }
      if (TERMINAL.has(snapshot.state)) {
        const failure = snapshot.failure ?? { code: snapshot.state.toUpperCase(), message: `the run ended as ${snapshot.state}` };
        // Failed runs are not billed (PROVIDERS.md); a reported cost above zero is recorded as billed anyway.
        const billed = (snapshot.costMicros ?? 0) > 0;
        await journal.append({
          type: 'failed',
          key: item.key,
          request: item.request,
          runId,
          code: failure.code,
          message: `run ${runId} ${snapshot.state}: ${failure.message}`,
          attempt: journal.states.get(item.key)?.attempts ?? 1,
          billed,
          ...(snapshot.costMicros !== undefined && { costMicros: snapshot.costMicros }),
        });
        log.error('row_failed', `run ${runId} ${snapshot.state}: ${failure.code}: ${failure.message}`, this.fields(item));
        return undefined;
      }
      if (Date.now() > deadline) {
        throw new ApiError('row', 'JOB_TIMEOUT', `run ${runId} did not finish within ${Math.round(pipeline.jobTimeoutMs / 1000)} s (job_timeout); it may still finish at the provider`);
      }
    }
  }

  /** Downloads the video; a refused (expired) URL is replaced by fetching the run again. */
  private async download(item: WorkItem, first: RunSnapshot): Promise<void> {
    const { journal, provider, log, http, pipeline } = this.ctx;
    let snapshot = first;
    const target = videoPathFor(this.ctx.outDir, item);
    for (let tries = 1; ; tries++) {
      try {
        if (!snapshot.videoUrl) throw new ApiError('row', 'NO_OUTPUT', `run ${snapshot.runId} succeeded without a video URL`);
        const video = await downloadVideo(snapshot.videoUrl, target, { http, signal: this.signal, idleTimeoutMs: pipeline.requestTimeoutMs });
        await journal.append({ type: 'downloaded', key: item.key, request: item.request, runId: snapshot.runId, path: path.relative(this.ctx.outDir, video.path), bytes: video.bytes, sha256: video.sha256, seconds: video.seconds });
        log.info('downloaded', `downloaded ${path.relative(this.ctx.outDir, video.path)} (${video.seconds} s, ${video.bytes} bytes)`, this.fields(item));
        return;
      } catch (error) {
        if (!(error instanceof ApiError) || tries >= this.retry.maxAttempts || this.signal.aborted) throw error;
        if (error.code === 'URL_REFUSED' || error.code === 'NO_OUTPUT') {
          log.warn('url_refresh', `${error.message}; fetching the run again for a fresh URL`, this.fields(item));
          snapshot = await withRetry(() => provider.getRun(snapshot.runId, this.signal), this.retry, this.signal);
          if (error.code === 'NO_OUTPUT' && !snapshot.videoUrl) throw error;
          continue;
        }
        if (error.kind !== 'transient') throw error;
        const delayMs = backoffMs(tries, this.retry);
        log.warn('download_retry', `${error.message}; retrying in ${delayMs} ms`, this.fields(item));
        await sleep(delayMs, undefined, { signal: this.signal });
      }
    }
  }
}

/**
 * Runs every item that has work (submit, re-attach, download) under the concurrency cap.
 * Resolves when all rows have settled or the run was stopped; the journal holds the outcome.
 */
export async function executePlan(items: readonly WorkItem[], ctx: ExecuteContext): Promise<StopReason | undefined> {
  const runner = new RowRunner(ctx);
  const limit = pLimit(ctx.pipeline.concurrency);
  const active = items.filter((item) => item.action === 'submit' || item.action === 'reattach' || item.action === 'download');
  await Promise.all(active.map((item) => limit(() => runner.process(item))));
  return runner.stopped;
}
