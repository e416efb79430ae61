import { createHash, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFile, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { reservationMicros, type BudgetLedger } from '../money/budget.js';
import { formatDurationMs, type Pipeline } from '../config/pipeline.js';
import { audioModeOf, formatUsd, type AudioMode } from '../money/cost.js';
import { downloadVideo, maxVideoBytes } from './download.js';
import { ApiError, isAbortError } from '../infra/errors.js';
import { redactJson, type HttpClient } from '../infra/http.js';
import type { RowState } from '../state/events.js';
import { JournalWriteError, type Journal } from '../state/journal.js';
import type { Logger } from '../infra/log.js';
import { uploadKey } from '../state/events.js';
import { lookUpTimes, lookUpVerdict, type LookUpAnswer } from '../lifecycle/lost-create.js';
import type { ImageInfo } from '../load/images.js';
import { dataUri } from '../providers/api.js';
import { buildKlingInput, type ImageRef, type KlingRequest, type KlingV3Input } from '../model/kling-v3.js';
import { sha256Of } from '../state/outputs.js';
import { archivedVideoPath, TIMEOUT_CODES, videoPathFor, type WorkItem } from '../plan/plan.js';
import type { Provider, RunRef, RunSnapshot, Submission } from '../providers/provider.js';
import { nextPollDelayMs, RunTimeModel } from './polling.js';
import { backoffMs, retryDelayMs, withRetry, type RetryPolicy } from '../infra/retry.js';

export interface ExecuteContext {
  provider: Provider;
  http: HttpClient;
  journal: Journal;
  log: Logger;
  pipeline: Pick<Pipeline, 'concurrency' | 'pollIntervalMs' | 'pollMaxIntervalMs' | 'jobTimeoutMs' | 'queueTimeoutMs' | 'requestTimeoutMs' | 'downloadTimeoutMs' | 'retry' | 'inlineImages' | 'costAlertFactor' | 'lostAfterMs'>;
  outDir: string;
  images: ReadonlyMap<string, ImageInfo>;
  /** Ctrl-C / SIGTERM: no new work, polls and downloads stop, a create already sent may finish. */
  signal: AbortSignal;
  /** Spending within the budget's period: each create reserves its row's price first. */
  budget: BudgetLedger;
  /** The provider's last billed price per second, per audio mode: a reservation never assumes less. */
  observedRates: Partial<Record<AudioMode, number>>;
}

/** Why the run stopped early, if it did: the CLI turns it into an exit code. */
export interface StopReason {
  /** fatal: the provider refuses us (401/403); credit: out of credit (402); budget: the run's budget is spent; io: the journal cannot be written. */
  kind: 'fatal' | 'credit' | 'budget' | 'io';
  message: string;
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled']);
/** Signed asset URLs are short-lived: one older than this is fetched again (`GET /v1/assets/{id}`) before a create uses it. */
const ASSET_URL_FRESH_MS = 10 * 60_000;

/** The local image files a request refers to (first frame, last frame, element images). */
export function fileImagesOf(request: KlingRequest): Extract<ImageRef, { kind: 'file' }>[] {
  const refs: (ImageRef | undefined)[] = [request.image, request.endImage];
  for (const element of request.elements ?? []) if (element.kind === 'images') refs.push(element.frontal, ...element.references);
  return refs.filter((r): r is Extract<ImageRef, { kind: 'file' }> => r?.kind === 'file');
}

/**
 * The client_ref of one create attempt: row key, request hash and attempt, plus random bytes so that two
 * output folders running the same manifest on one account never share a token. Only [a-z0-9-]: it sits in a quoted filter.
 */
export function clientRefFor(key: string, request: string, attempt: number, random: Buffer = randomBytes(4)): string {
  return `${clientRefPrefix(key, request)}-a${attempt}-${random.toString('hex')}`;
}

/** What every client_ref of one row and request starts with: how a run is found for a row whose journal was lost. */
export function clientRefPrefix(key: string, request: string): string {
  return `clipmill-${createHash('sha256').update(key).digest('hex').slice(0, 10)}-${request}`;
}

class RowRunner {
  private readonly stopSubmits = new AbortController();
  private readonly stopAll = new AbortController();
  /** For polls, sleeps, downloads and lookups: ends on Ctrl-C or a fatal error. */
  private readonly signal: AbortSignal;
  /** Tonight's run times, shared by all rows, to time polls. */
  private readonly runTimes = new RunTimeModel();
  /** Image URLs under way or obtained tonight, by image content, so rows sharing an image wait for one upload. */
  private readonly assetUrls = new Map<string, { url: Promise<string>; atMs: number }>();
  /** The first succeeded run's raw output is logged once a night, so a change in the provider's shape shows. */
  private rawOutputLogged = false;
  /** Money reserved against the budget by rows whose cost is not settled yet. */
  readonly reserved = new Map<string, number>();
  /** The night's rows by key, to re-price reservations when a bill shows the provider's price. */
  readonly items = new Map<string, WorkItem>();
  stopped: StopReason | undefined;

  constructor(private readonly ctx: ExecuteContext) {
    this.signal = AbortSignal.any([ctx.signal, this.stopAll.signal]);
    // Every sleep and request of every row listens to these: hundreds at once is expected, not a leak.
    setMaxListeners(0, ctx.signal, this.signal, this.stopAll.signal, this.stopSubmits.signal);
  }

  private get retry(): RetryPolicy {
    return this.ctx.pipeline.retry;
  }

  private fields(item: WorkItem) {
    return { manifest: item.row.manifest, row: item.row.id, line: item.row.line };
  }

  /** The provider's handle on a run: its id, and its own addresses when the provider gave some. */
  private refOf(item: WorkItem, runId: string): RunRef {
    const urls = this.state(item)?.runUrls;
    return urls && this.state(item)?.runId === runId ? { runId, urls } : { runId };
  }

  /** This row's journal state for the current request, if any. */
  private state(item: WorkItem): RowState | undefined {
    const known = this.ctx.journal.states.get(item.key);
    return known?.request === item.request ? known : undefined;
  }

  /** What a create of this row reserves: its estimate, or more if the provider has been billing more. */
  reservationOf(item: WorkItem): number {
    const request = item.row.request;
    return reservationMicros(item.estimateMicros, request.durationSeconds, audioModeOf(request), this.ctx.observedRates);
  }

  /** Settles a row's reservation with what the provider billed (0 when nothing was); a bill past the budget stops new creates. */
  private settle(item: WorkItem, billedMicros: number): void {
    const reserved = this.reserved.get(item.key);
    if (reserved === undefined) return;
    this.ctx.budget.settle(reserved, billedMicros);
    this.reserved.delete(item.key);
    // Only a bill can push past the budget here (an unbilled end releases money): that bill stops new creates.
    if (billedMicros > 0 && this.ctx.budget.overLimit && this.stopped === undefined) {
      const { budget, log } = this.ctx;
      const message = `budget ${formatUsd(budget.limitMicros ?? 0)} passed: ${item.key} was billed ${formatUsd(billedMicros)} (reserved ${formatUsd(reserved)}), ${formatUsd(budget.committedMicros)} committed in the budget period`;
      this.stopped = { kind: 'budget', message };
      log.error('budget_reached', `${message}; submitting nothing more, runs in flight finish`, this.fields(item));
      this.stopSubmits.abort();
    }
  }

  /** A bill far above its estimate is flagged (a price change, a mistake): finance sees it in the report too. Later reservations use the price seen. */
  private checkCost(item: WorkItem, billedMicros: number): void {
    const { durationSeconds } = item.row.request;
    const mode = audioModeOf(item.row.request);
    if (durationSeconds > 0) this.ctx.observedRates[mode] = Math.ceil(billedMicros / durationSeconds);
    // Runs already in flight of the same mode will be billed at that price too: their reservations grow now, so the budget stops creates at once.
    for (const [key, reserved] of this.reserved) {
      const other = this.items.get(key);
      if (!other || audioModeOf(other.row.request) !== mode) continue;
      const repriced = this.reservationOf(other);
      if (repriced > reserved) {
        this.ctx.budget.commit(repriced - reserved);
        this.reserved.set(key, repriced);
      }
    }
    const factor = this.ctx.pipeline.costAlertFactor;
    if (billedMicros > item.estimateMicros * factor) {
      this.ctx.log.warn('cost_alert', `billed ${formatUsd(billedMicros)}, more than ${factor}× its estimate of ${formatUsd(item.estimateMicros)}: check the provider's prices and the pipeline's pricing`, this.fields(item));
    }
  }

  /** The next create would pass the budget: submit nothing more, let runs in flight finish. */
  private stopForBudget(item: WorkItem): void {
    const { budget, log } = this.ctx;
    if (this.stopped === undefined) {
      const message = `budget ${formatUsd(budget.limitMicros ?? 0)} reached: ${formatUsd(budget.committedMicros)} committed, the next row (${item.key}, ${formatUsd(item.estimateMicros)}) does not fit`;
      this.stopped = { kind: 'budget', message };
      log.error('budget_reached', `${message}; submitting nothing more, runs in flight finish`);
    }
    this.stopSubmits.abort();
  }

  /** 401/403 and a journal that cannot be written stop everything; 402 stops new submissions and lets runs in flight finish. */
  private stop(error: ApiError | JournalWriteError): void {
    const kind = error instanceof JournalWriteError ? 'io' : error.kind === 'credit' ? 'credit' : 'fatal';
    if (this.stopped === undefined) {
      this.stopped = { kind, message: error.message };
      this.ctx.log.error('run_stopped', `stopping: ${error.message}`, { code: error instanceof ApiError ? error.code : 'JOURNAL' });
    }
    this.stopSubmits.abort();
    if (kind !== 'credit') this.stopAll.abort();
  }

  /**
   * Submits (or finds again) the row's run and waits for it to end. This holds one of the concurrency
   * slots, which stand for runs at the provider; the download happens after the slot is freed.
   */
  async generate(item: WorkItem): Promise<RunSnapshot | undefined> {
    try {
      let runId = this.state(item)?.runId;
      if (item.action === 'unknown') {
        const found = await this.lookUpEarlierCreate(item);
        if (found === 'unknown') return undefined;
        runId = found ?? (await this.submit(item));
      } else if (item.action === 'submit') {
        // A retried row whose lost create was forgotten by hand: its client_refs are looked up before paying again.
        const forgotten = this.state(item);
        if (forgotten?.failure?.code === 'FORGOTTEN' && (forgotten.clientRefs?.length ?? 0) > 0 && forgotten.submittingAtMs !== undefined) {
          const found = await this.lookUp(item, forgotten.submittingAtMs + this.ctx.pipeline.requestTimeoutMs);
          if (found === 'unknown') return undefined;
          runId = found ?? (await this.submit(item));
        } else {
          runId = await this.submit(item);
        }
      }
      if (runId === undefined) return undefined;
      // A paid run's video URL is never kept: fetching the run again gives a fresh one.
      return await this.waitForRun(item, runId, item.action === 'submit' || item.action === 'unknown');
    } catch (error) {
      await this.onRowError(item, error);
      return undefined;
    }
  }

  async fetch(item: WorkItem, snapshot: RunSnapshot): Promise<void> {
    try {
      await this.download(item, snapshot);
    } catch (error) {
      await this.onRowError(item, error);
    }
  }

  private async onRowError(item: WorkItem, error: unknown): Promise<void> {
    if (isAbortError(error) || this.signal.aborted) return; // the journal already says where the row stands
    if (error instanceof JournalWriteError || (error instanceof ApiError && (error.kind === 'fatal' || error.kind === 'credit'))) {
      this.stop(error);
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    const known = this.state(item);
    if (known?.status === 'succeeded' || known?.status === 'downloaded') {
      // Generated and paid for: never written off. The journal keeps the run id and a rerun downloads it.
      this.ctx.log.error('download_failed', `${message}; the video is paid for and a rerun downloads it`, this.fields(item));
      return;
    }
    if (known?.status === 'submitting') {
      this.ctx.log.error('submit_unknown', `${message}; the run may exist, so the next run looks it up before any resubmit`, this.fields(item));
      return;
    }
    // A run the provider keeps answering 404 for over `lost_after` (first 404 journaled): recorded lost, with the reason, not polled for ever.
    if ((known?.status === 'submitted' || known?.status === 'failed') && known.runId !== undefined && error instanceof ApiError && error.status === 404) {
      if (known.notFoundSinceMs === undefined) {
        await this.ctx.journal.append({ type: 'not_found', key: item.key, request: item.request, runId: known.runId });
      } else if (Date.now() - known.notFoundSinceMs >= this.ctx.pipeline.lostAfterMs) {
        // fal forgets requests past its retention, finished (and billed) ones too: there the money is counted at the estimate.
        const mayBeBilled = this.ctx.provider.name === 'fal';
        const lost = `run ${known.runId} has been unknown to the provider (404) for ${Math.round((Date.now() - known.notFoundSinceMs) / 1000)} s (lost_after): recorded lost${mayBeBilled ? ', counted as billed' : ''}; ${message}`;
        this.ctx.log.error('row_failed', lost, this.fields(item));
        await this.ctx.journal.append({ type: 'failed', key: item.key, request: item.request, runId: known.runId, code: 'RUN_LOST', message: lost, attempt: known.attempts, billed: mayBeBilled });
        return;
      }
    }
    // A run being re-checked after a deadline (failed, with its run id, on a timeout code) is as alive as a submitted one.
    const recheckingTimeout = known?.status === 'failed' && known.runId !== undefined && TIMEOUT_CODES.has(known.failure?.code ?? '');
    if ((known?.status === 'submitted' || recheckingTimeout) && !(error instanceof ApiError && TIMEOUT_CODES.has(error.code))) {
      // Only the provider's own terminal status ends a run: a run we could not read may still be billed.
      this.ctx.log.error('poll_failed', `${message}; run ${known.runId} stays recorded in flight and the next run re-attaches to it`, this.fields(item));
      return;
    }
    if (error instanceof ApiError && error.kind === 'transient') {
      // "Try again later" is not a verdict on the row: it stays pending and the next run submits it.
      this.ctx.log.error('row_deferred', `${message}; left for the next run`, this.fields(item));
      return;
    }
    this.ctx.log.error('row_failed', message, this.fields(item));
    await this.ctx.journal.append({
      type: 'failed',
      key: item.key,
      request: item.request,
      code: error instanceof ApiError ? error.code : 'INTERNAL',
      message,
      attempt: known?.attempts ?? 0,
      billed: false,
      ...(known?.runId !== undefined && { runId: known.runId }),
    });
  }

  private async buildInput(item: WorkItem): Promise<KlingV3Input> {
    const urls = new Map<string, string>();
    for (const ref of fileImagesOf(item.row.request)) urls.set(ref.path, await this.imageUrl(ref));
    return buildKlingInput(item.row.request, (ref) => (ref.kind === 'url' ? ref.url : urls.get(ref.path)!));
  }

  /**
   * A local image as the model will fetch it: uploaded once per content per folder (Runflow's asset flow,
   * fal's storage), its URL fetched fresh for tonight; inline as a data: URI only when the pipeline opts in.
   */
  private async imageUrl(ref: Extract<ImageRef, { kind: 'file' }>): Promise<string> {
    const { images, provider, pipeline } = this.ctx;
    const info = images.get(ref.path);
    if (!info) throw new Error(`image ${ref.written} was not checked before the run`);
    if (pipeline.inlineImages && info.bytes <= provider.maxInlineImageBytes) return dataUri(info, await readFile(ref.path));
    const known = this.assetUrls.get(info.sha256);
    if (known && Date.now() - known.atMs < ASSET_URL_FRESH_MS) return known.url;
    const url = this.assetUrl(info);
    this.assetUrls.set(info.sha256, { url, atMs: Date.now() });
    // A failed upload is not remembered: the next row that needs the image tries again.
    url.catch(() => this.assetUrls.delete(info.sha256));
    return url;
  }

  /** The asset's URL: a fresh one for an asset uploaded on an earlier night, else the bytes are sent (and the asset id journaled). */
  private async assetUrl(info: ImageInfo): Promise<string> {
    const { journal, provider, log } = this.ctx;
    const key = uploadKey(provider.name, info.sha256);
    const known = journal.uploads.get(key);
    if (known) {
      const asset = await withRetry(() => provider.refreshImage(known.assetId, this.signal), this.retry, this.signal);
      if (asset) return asset.url;
      log.warn('upload_gone', `${provider.name} no longer has asset ${known.assetId} (${path.basename(info.path)}); uploading it again`);
    }
    const asset = await withRetry(async () => provider.uploadImage(info, await readFile(info.path), this.signal), this.retry, this.signal);
    await journal.append({ type: 'uploaded', key, request: info.sha256, assetId: asset.assetId, provider: provider.name });
    // fal's file_url is its asset id and reads the image: it is not repeated in the log.
    log.info('uploaded', `uploaded ${path.basename(info.path)} (${(info.bytes / 1e6).toFixed(1)} MB)${asset.assetId.includes('://') ? '' : ` as asset ${asset.assetId}`}`);
    return asset.url;
  }

  /** One complete read of the provider's list for each client_ref this request was sent with: the runs listed, or why it cannot tell. */
  private async listRuns(clientRefs: readonly string[]): Promise<LookUpAnswer> {
    const found: string[][] = [];
    try {
      for (const clientRef of clientRefs) found.push(await withRetry(() => this.ctx.provider.findRuns(clientRef, this.signal), this.retry, this.signal));
      const [latest = [], ...earlier] = found;
      return latest.length + earlier.flat().length > 0 ? { kind: 'found', latest, earlier: earlier.flat() } : { kind: 'none' };
    } catch (error) {
      if (isAbortError(error) || this.signal.aborted || (error instanceof ApiError && error.kind !== 'transient' && error.kind !== 'row')) throw error;
      return { kind: 'cannot_tell', reason: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * Finds the run a create whose answer was lost may have made, by client_ref (this request's latest
   * attempt first, then its earlier ones: a late run of an earlier attempt counts too), at the times the
   * rule allows, counted from `sinceMs`, when the create was given up. Returns its id (journaled as
   * submitted), undefined when complete lists read a whole request timeout later have none (journaled,
   * so the row may be submitted again), or 'unknown' when a list cannot be read: never resubmitted then.
   */
  private async lookUp(item: WorkItem, sinceMs: number): Promise<string | undefined | 'unknown'> {
    const { journal, log, pipeline } = this.ctx;
    const clientRefs = [...(this.state(item)?.clientRefs ?? [])].reverse();
    const shown = clientRefs[0] ?? '';
    for (const at of lookUpTimes(sinceMs, Date.now(), pipeline.requestTimeoutMs)) {
      // A timer may fire a millisecond early: the rule is about the clock, so wait until it says so.
      while (Date.now() < at) await sleep(at - Date.now(), undefined, { signal: this.signal });
      // The read's start, not its end, is what the rule measures: a run committed during a slow read may be missed.
      const readAtMs = Date.now();
      const answer = await this.listRuns(clientRefs);
      const verdict = lookUpVerdict(answer, sinceMs, readAtMs, pipeline.requestTimeoutMs);
      if (verdict === 'look_again') continue;
      if (verdict === 'unknown') {
        const reason = answer.kind === 'cannot_tell' ? answer.reason : '';
        log.error('reconcile_failed', `could not look up the lost create ${shown} (${reason}); it stays unresolved and is not resubmitted`, this.fields(item));
        return 'unknown';
      }
      if (verdict === 'attach' && answer.kind === 'found') {
        const runIds = [...answer.latest, ...answer.earlier];
        const runId = runIds[0]!;
        if (runIds.length > 1) log.warn('reconcile_many', `${runIds.length} runs carry this row's client_refs (${runIds.join(', ')}); following ${runId}, the others may be billed too`, this.fields(item));
        await journal.append({ type: 'submitted', key: item.key, request: item.request, runId });
        log.info('reconciled', `found run ${runId} by client_ref for a create whose answer was lost; re-attached, not resubmitted`, { ...this.fields(item), run_id: runId });
        return runId;
      }
      await journal.append({ type: 'not_submitted', key: item.key, request: item.request, code: 'NOT_CREATED', message: `every page of the provider's run list has no run with client_ref ${clientRefs.join(' or ')}` });
      log.info('reconciled', `the provider lists no run for the lost create ${shown}, a request timeout after it was given up; submitting again`, this.fields(item));
      return undefined;
    }
    return 'unknown'; // unreachable: the last look-up is never early
  }

  /**
   * A create an earlier run sent and got no answer to: looked up by the client_refs it journaled. That
   * run may have given up on it as late as one request timeout after sending, so the patience counts from there.
   */
  private async lookUpEarlierCreate(item: WorkItem): Promise<string | undefined | 'unknown'> {
    const known = this.state(item);
    if (known?.clientRef === undefined || known.submittingAtMs === undefined) {
      this.ctx.log.error(
        'reconcile_failed',
        'this create was sent by an older clipmill without a client_ref, so it cannot be looked up: check the provider\'s dashboard for a run with this row\'s metadata, then rerun with --resubmit-unknown only if there is none',
        this.fields(item),
      );
      return 'unknown';
    }
    return this.lookUp(item, known.submittingAtMs + this.ctx.pipeline.requestTimeoutMs);
  }

  /**
   * Creates the run: the intent is journaled first, the run id as soon as it is known. Repeated blindly
   * only when the provider certainly did not act (429, refused connection); after any other failure the
   * provider's run list decides. A create already sent is allowed to finish after Ctrl-C.
   */
  private async submit(item: WorkItem): Promise<string | undefined> {
    const { journal, provider, log } = this.ctx;
    if (this.ctx.signal.aborted || this.stopSubmits.signal.aborted) return undefined;
    if (!this.reserved.has(item.key)) {
      const reservation = this.reservationOf(item);
      if (!this.ctx.budget.reserve(reservation)) {
        this.stopForBudget(item);
        return undefined;
      }
      this.reserved.set(item.key, reservation);
    }
    for (let tries = 1; ; tries++) {
      if (this.ctx.signal.aborted || this.stopSubmits.signal.aborted) {
        this.settle(item, 0); // nothing is in flight for this row: give its reservation back
        return undefined;
      }
      let input: KlingV3Input;
      try {
        // Built per attempt: image URLs are signed and short-lived.
        input = await this.buildInput(item);
      } catch (error) {
        this.settle(item, 0); // nothing was sent for this row
        throw error;
      }
      const attempt = (this.state(item)?.attempts ?? 0) + 1;
      const clientRef = clientRefFor(item.key, item.request, attempt);
      const submission: Submission = { clientRef, metadata: { clipmill_manifest: item.row.manifest, clipmill_row: item.row.id, clipmill_request: item.request, clipmill_submit: clientRef } };
      let sent = false;
      // The intent is journaled once the rate slot is ours, just before the bytes leave: its time is the send's.
      const beforeSend = async () => {
        await journal.append({ type: 'submitting', key: item.key, request: item.request, attempt, clientRef });
        sent = true;
      };
      try {
        const run = await provider.submit(input, submission, this.stopAll.signal, { waitSignal: this.signal, beforeSend });
        await journal.append({ type: 'submitted', key: item.key, request: item.request, runId: run.runId, ...(run.urls && { urls: run.urls }) });
        log.info('submitted', `submitted as ${run.runId}`, { ...this.fields(item), run_id: run.runId });
        return run.runId;
      } catch (error) {
        if (!sent) {
          // Stopped while waiting for a rate slot (Ctrl-C, a fatal stop) or the journal refused the intent: nothing was sent.
          this.settle(item, 0);
          if (isAbortError(error)) return undefined;
          throw error;
        }
        if (!(error instanceof ApiError)) throw error;
        const answered = error.status !== undefined && error.status < 500;
        const certainlyNotCreated = answered || !error.mayHaveReachedServer;
        if (error.kind === 'row' && answered) {
          this.settle(item, 0);
          await journal.append({ type: 'failed', key: item.key, request: item.request, code: error.code, message: error.message, attempt, billed: false });
          log.error('row_failed', error.message, this.fields(item));
          return undefined;
        }
        if (certainlyNotCreated) {
          await journal.append({ type: 'not_submitted', key: item.key, request: item.request, code: error.code, message: error.message });
          if (error.kind !== 'transient' || tries >= this.retry.maxAttempts) {
            this.settle(item, 0);
            throw error;
          }
          const delayMs = retryDelayMs(error, tries, this.retry);
          log.warn('submit_retry', `${error.message}; nothing was created, retrying in ${delayMs} ms`, this.fields(item));
          await sleep(delayMs, undefined, { signal: this.signal });
          continue;
        }
        // 5xx, timeout or reset after the body was sent: the run may exist. Ask the provider before deciding,
        // counting the provider's patience from when we gave up, not from when we sent.
        log.warn('submit_unknown', `${error.message}; looking the run up by client_ref ${clientRef} before deciding`, this.fields(item));
        const found = await this.lookUp(item, Date.now());
        if (found === 'unknown') return undefined;
        if (found !== undefined) return found;
        if (tries >= this.retry.maxAttempts) {
          this.settle(item, 0);
          throw error;
        }
      }
    }
  }

  /**
   * Polls until the run ends or a deadline passes (queue time and running time apart), timing each poll
   * from what is known instead of polling blindly; records success or failure in the journal. A poll that
   * fails is not the run failing: it is tried again later, until the deadline.
   */
  private async waitForRun(item: WorkItem, runId: string, justSubmitted: boolean): Promise<RunSnapshot | undefined> {
    const { journal, provider, log, pipeline } = this.ctx;
    const seconds = item.row.request.durationSeconds;
    const bounds = { floorMs: pipeline.pollIntervalMs, ceilingMs: pipeline.pollMaxIntervalMs };
    const waitingSince = Date.now();
    let lastSeenQueuedAt: number | undefined = justSubmitted ? waitingSince : undefined;
    let lastState: 'queued' | 'running' | undefined = justSubmitted ? 'queued' : undefined;
    let delayMs: number | undefined = justSubmitted ? nextPollDelayMs({ now: waitingSince, state: 'queued', ...this.expected(seconds) }, bounds) : undefined;
    for (;;) {
      if (delayMs !== undefined) await sleep(delayMs, undefined, { signal: this.signal });
      let snapshot: RunSnapshot;
      try {
        snapshot = await withRetry(() => provider.getRun(this.refOf(item, runId), this.signal), this.retry, this.signal);
      } catch (error) {
        if (!(error instanceof ApiError) || error.kind !== 'transient' || this.signal.aborted) throw error;
        delayMs = Math.max(bounds.floorMs, backoffMs(this.retry.maxAttempts, this.retry));
        log.warn('poll_retry', `${error.message}; polling again in ${delayMs} ms`, { ...this.fields(item), run_id: runId });
        if (Date.now() - waitingSince > pipeline.jobTimeoutMs + pipeline.queueTimeoutMs) throw await this.timeout(item, runId, 'JOB_TIMEOUT', pipeline.jobTimeoutMs + pipeline.queueTimeoutMs);
        continue;
      }
      const now = Date.now();
      if (snapshot.state === 'succeeded') {
        const startedAt = snapshot.startedAtMs ?? lastSeenQueuedAt;
        const runMs = snapshot.runMs ?? (startedAt !== undefined ? now - startedAt : undefined);
        if (runMs !== undefined) this.runTimes.observe(seconds, runMs);
        if (snapshot.costMicros !== undefined) this.checkCost(item, snapshot.costMicros);
        this.settle(item, snapshot.costMicros ?? item.estimateMicros);
        const wasPaid = this.state(item)?.status === 'succeeded' || this.state(item)?.status === 'downloaded';
        if (!wasPaid) await journal.append({ type: 'succeeded', key: item.key, request: item.request, runId, ...(snapshot.costMicros !== undefined && { costMicros: snapshot.costMicros }) });
        const cost = snapshot.costMicros ?? item.estimateMicros;
        if (!wasPaid) log.info('succeeded', `run ${runId} succeeded (${formatUsd(cost)}${snapshot.costMicros === undefined ? ', estimated' : ''})`, { ...this.fields(item), run_id: runId, cost_micros: cost });
        this.logRawOutput(item, snapshot);
        if (snapshot.videoUrl === undefined) {
          // Paid for but no video in the answer: never a silent loss. The row stays owed and the next run reads the run again.
          log.error('no_video_output', `run ${runId} succeeded but its output holds no video; the row stays owed and the next run reads the run again. Output as received: ${JSON.stringify(redactJson(snapshot.rawOutput ?? null))}`, { ...this.fields(item), run_id: runId });
          return undefined;
        }
        return snapshot;
      }
      if (TERMINAL.has(snapshot.state)) {
        const failure = snapshot.failure ?? { code: snapshot.state.toUpperCase(), message: `the run ended as ${snapshot.state}` };
        // Failed runs are not billed (PROVIDERS.md); a reported cost above zero, or an outcome that can no longer be read, is recorded as billed.
        const costMicros = snapshot.costMicros ?? (snapshot.mayBeBilled ? this.state(item)?.costMicros : undefined);
        const billed = (costMicros ?? 0) > 0 || snapshot.mayBeBilled === true;
        this.settle(item, costMicros ?? (billed ? item.estimateMicros : 0));
        await journal.append({
          type: 'failed',
          key: item.key,
          request: item.request,
          runId,
          code: failure.code,
          message: `run ${runId} ${snapshot.state}: ${failure.message}`,
          attempt: this.state(item)?.attempts ?? 1,
          billed,
          ...(costMicros !== undefined && { costMicros }),
        });
        log.error('row_failed', `run ${runId} ${snapshot.state}: ${failure.code}: ${failure.message}`, this.fields(item));
        return undefined;
      }
      const state = snapshot.state === 'queued' ? 'queued' : 'running';
      if (state !== lastState) {
        log.info('run_state', `run ${runId} ${state}`, { ...this.fields(item), run_id: runId, state });
        lastState = state;
      }
      if (state === 'queued') {
        lastSeenQueuedAt = now;
        if (now - waitingSince > pipeline.queueTimeoutMs) throw await this.timeout(item, runId, 'QUEUE_TIMEOUT', pipeline.queueTimeoutMs);
      }
      // Without the provider's start time, the last time it was seen queued is the earliest it can have started.
      const expected = this.expected(seconds);
      const startedAtMs = snapshot.startedAtMs ?? lastSeenQueuedAt ?? (expected.expectedRunMs !== undefined ? now - expected.expectedRunMs : now);
      if (state === 'running' && now - startedAtMs > pipeline.jobTimeoutMs) throw await this.timeout(item, runId, 'JOB_TIMEOUT', pipeline.jobTimeoutMs);
      delayMs = nextPollDelayMs({ now, state, startedAtMs, ...expected, ...(delayMs !== undefined && { previousDelayMs: delayMs }) }, bounds);
    }
  }

  /** The raw output of the night's first succeeded run, once (signatures redacted): a drift in the provider's shape shows in the morning's log. */
  private logRawOutput(item: WorkItem, snapshot: RunSnapshot): void {
    if (this.rawOutputLogged || snapshot.rawOutput === undefined) return;
    this.rawOutputLogged = true;
    this.ctx.log.info('raw_output', `first succeeded run ${snapshot.runId} of the night, output as received: ${JSON.stringify(redactJson(snapshot.rawOutput))}`, { ...this.fields(item), run_id: snapshot.runId });
  }

  private expected(seconds: number): { expectedRunMs?: number } {
    const ms = this.runTimes.expectedMs(seconds);
    return ms === undefined ? {} : { expectedRunMs: ms };
  }

  /** A run past its deadline: cancelled where the provider allows it, and reported as timed out. */
  private async timeout(item: WorkItem, runId: string, code: 'JOB_TIMEOUT' | 'QUEUE_TIMEOUT', limitMs: number): Promise<ApiError> {
    const what = code === 'JOB_TIMEOUT' ? 'did not finish running' : 'did not leave the provider\'s queue';
    const setting = code === 'JOB_TIMEOUT' ? 'job_timeout' : 'queue_timeout';
    const { provider, log } = this.ctx;
    if (provider.cancel) {
      try {
        if (await provider.cancel(this.refOf(item, runId), this.signal)) return new ApiError('row', code, `run ${runId} ${what} within ${formatDurationMs(limitMs)} (${setting}) and was cancelled`);
        log.warn('cancel_failed', `run ${runId} could not be cancelled: the provider says it already finished`, this.fields(item));
      } catch (error) {
        log.warn('cancel_failed', `could not cancel run ${runId}: ${error instanceof Error ? error.message : String(error)}`, this.fields(item));
      }
    }
    // Without a cancel the run may still finish (and be billed): the next run checks it again before resubmitting.
    return new ApiError('row', code, `run ${runId} ${what} within ${formatDurationMs(limitMs)} (${setting}); it may still finish, and the next run checks it again before resubmitting`);
  }

  /** A changed row's old video is moved aside (`<id>.<old request>.mp4`), never overwritten, never over an archive. */
  private async keepPreviousVideo(item: WorkItem, target: string): Promise<void> {
    const previous = this.state(item)?.previous ?? this.ctx.journal.states.get(item.key)?.previous;
    if (!previous || path.join(this.ctx.outDir, previous.output.path) !== target) return;
    const archived = archivedVideoPath(this.ctx.outDir, item.row, previous.request);
    if (await stat(archived).then(() => true, () => false)) return; // already kept: what sits at the target is newer
    const info = await stat(target).catch(() => undefined);
    // Only the earlier video itself is moved: a newer file at the target (a download whose record was cut short) is replaced.
    if (!info || info.size !== previous.output.bytes || (await sha256Of(target)) !== previous.output.sha256) return;
    await rename(target, archived);
    this.ctx.log.info('kept_previous', `the row changed: its earlier video is kept as ${path.relative(this.ctx.outDir, archived)}`, this.fields(item));
  }

  /** Downloads the video; a refused (expired) URL is replaced by fetching the run again. */
  private async download(item: WorkItem, first: RunSnapshot): Promise<void> {
    const { journal, provider, log, http, pipeline } = this.ctx;
    let snapshot = first;
    const target = videoPathFor(this.ctx.outDir, item.row);
    await this.keepPreviousVideo(item, target);
    for (let tries = 1; ; tries++) {
      try {
        if (!snapshot.videoUrl) throw new ApiError('row', 'NO_OUTPUT', `run ${snapshot.runId} succeeded without a video URL`);
        const video = await downloadVideo(snapshot.videoUrl, target, {
          http,
          signal: this.signal,
          idleTimeoutMs: pipeline.requestTimeoutMs,
          deadlineMs: pipeline.downloadTimeoutMs,
          maxBytes: maxVideoBytes(item.row.request.durationSeconds),
          sidecar: { key: item.key, request: item.request, run_id: snapshot.runId, cost_micros: this.state(item)?.costMicros, provider: provider.name },
        });
        const relative = path.relative(this.ctx.outDir, video.path);
        await journal.append({ type: 'downloaded', key: item.key, request: item.request, runId: snapshot.runId, path: relative, bytes: video.bytes, sha256: video.sha256, seconds: video.seconds });
        log.info('downloaded', `downloaded ${relative} (${video.seconds} s, ${video.bytes} bytes)`, this.fields(item));
        return;
      } catch (error) {
        if (!(error instanceof ApiError) || tries >= this.retry.maxAttempts || this.signal.aborted) throw error;
        if (error.code === 'URL_REFUSED' || error.code === 'NO_OUTPUT') {
          log.warn('url_refresh', `${error.message}; fetching the run again for a fresh URL`, this.fields(item));
          snapshot = await withRetry(() => provider.getRun(this.refOf(item, snapshot.runId), this.signal), this.retry, this.signal);
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

/** The actions that need the provider; `done` and `failed` rows are only reported. */
export const ACTIVE_ACTIONS = new Set(['submit', 'reattach', 'download', 'unknown']);

/**
 * Runs every item that has work under the concurrency cap. Resolves when all rows have settled or
 * the run was stopped; the journal holds the outcome.
 */
export async function executePlan(items: readonly WorkItem[], ctx: ExecuteContext): Promise<StopReason | undefined> {
  const runner = new RowRunner(ctx);
  for (const item of items) runner.items.set(item.key, item);
  // Runs that may already exist (re-attached, or a lost create) are money being spent: they count first, whatever the limit.
  for (const item of items) {
    if (item.action !== 'reattach' && item.action !== 'unknown') continue;
    const reservation = runner.reservationOf(item);
    ctx.budget.commit(reservation);
    runner.reserved.set(item.key, reservation);
  }
  const slots = pLimit(ctx.pipeline.concurrency);
  // Downloads go to the CDN, not the provider: they do not hold a slot, but are capped alike.
  const downloads = pLimit(ctx.pipeline.concurrency);
  await Promise.all(
    items
      .filter((item) => ACTIVE_ACTIONS.has(item.action))
      .map(async (item) => {
        const snapshot = await slots(() => runner.generate(item));
        if (snapshot) await downloads(() => runner.fetch(item, snapshot));
      }),
  );
  return runner.stopped;
}
