import { setMaxListeners } from 'node:events';
import type { Pipeline } from '../config/pipeline.js';
import type { BudgetBook } from '../money/budget.js';
import type { Bucket } from '../infra/bucket.js';
import type { AudioMode } from '../money/cost.js';
import { redactJson, type HttpClient } from '../infra/http.js';
import { CappedTasks, eachInPool } from '../infra/pool.js';
import type { LoggedEvent } from '../infra/log-events.js';
import type { Logger } from '../infra/log.js';
import type { ImageInfo } from '../load/images.js';
import { giveUp } from '../lifecycle/steps.js';
import {
  step,
  type Command,
  type Effect,
  type EventDraft,
  type Failure,
  type Input,
  type Phase,
  type Rules,
  type Step,
  type View,
} from '../lifecycle/machine.js';
import { mayHaveRun, type WorkItem } from '../plan/plan.js';
import type { Provider, RunSnapshot } from '../providers/provider.js';
import type { NewEvent } from '../state/journal.js';
import type { StateStore } from '../state/store.js';
import { RowCommands } from './commands.js';
import type { StopReason } from './stop-reason.js';
import { ImageUrls } from './images.js';
import { RunTimeModel } from './polling.js';
import { Reservations } from './reservations.js';

export interface ExecuteContext {
  provider: Provider;
  http: HttpClient;
  store: StateStore;
  log: Logger;
  pipeline: Pick<
    Pipeline,
    | 'concurrency'
    | 'pollIntervalMs'
    | 'pollMaxIntervalMs'
    | 'jobTimeoutMs'
    | 'queueTimeoutMs'
    | 'requestTimeoutMs'
    | 'downloadTimeoutMs'
    | 'retry'
    | 'inlineImages'
    | 'costAlertFactor'
    | 'lostAfterMs'
  >;
  outDir: string;
  /** Videos to an S3-compatible bucket; `outDir` is then the local folder they are staged in. */
  bucket?: Bucket | undefined;
  images: ReadonlyMap<string, ImageInfo>;
  /** Ctrl-C / SIGTERM: no new work, polls and downloads stop, a create already sent may finish. */
  signal: AbortSignal;
  /** Spending within the budget's period: each create reserves its row's price first. */
  budget: BudgetBook;
  /** The provider's last billed price per second, per audio mode: a reservation never assumes less. */
  observedRates: Partial<Record<AudioMode, number>>;
}

/** A row event in the journal's field order: type, key and request first, so a line cut short still says whose it was. */
function eventFor(item: WorkItem, draft: EventDraft): NewEvent {
  const { type, ...rest } = draft;
  return { type, key: item.key, request: item.request, ...rest } as NewEvent;
}

export type { StopReason } from './stop-reason.js';

/** The actions that need the provider; `done` and `failed` rows are only reported. */
export const ACTIVE_ACTIONS = new Set(['submit', 'reattach', 'download', 'unknown']);

/**
 * Drives each row through the row machine (`src/lifecycle/`): performs its commands, does its
 * bookkeeping (journal, log, budget) in order, and feeds the answers back until the row ends.
 */
export class Runner {
  private readonly stopSubmits = new AbortController();
  private readonly stopAll = new AbortController();
  /** For polls, sleeps, downloads and look-ups: ends on Ctrl-C or a stop. */
  private readonly signal: AbortSignal;
  /** Tonight's run times, shared by all rows, to time polls. */
  private readonly runTimes = new RunTimeModel();
  private readonly rules: Rules;
  private readonly commands: RowCommands;
  readonly reservations: Reservations;
  /** The first succeeded run's raw output is logged once a night, so a change in the provider's shape shows. */
  private rawOutputLogged = false;
  stopped: StopReason | undefined;

  constructor(private readonly ctx: ExecuteContext) {
    this.signal = AbortSignal.any([ctx.signal, this.stopAll.signal]);
    // Every sleep and request of every row listens to these: hundreds at once is expected, not a leak.
    setMaxListeners(0, ctx.signal, this.signal, this.stopAll.signal, this.stopSubmits.signal);
    const { pipeline: p, provider } = ctx;
    this.rules = {
      requestTimeoutMs: p.requestTimeoutMs,
      jobTimeoutMs: p.jobTimeoutMs,
      queueTimeoutMs: p.queueTimeoutMs,
      lostAfterMs: p.lostAfterMs,
      pollFloorMs: p.pollIntervalMs,
      pollCeilingMs: p.pollMaxIntervalMs,
      costAlertFactor: p.costAlertFactor,
      retry: p.retry,
      canCancel: provider.cancel !== undefined,
      random: Math.random,
    };
    this.reservations = new Reservations(ctx.budget, ctx.observedRates);
    const images = new ImageUrls({
      provider,
      store: ctx.store,
      log: ctx.log,
      images: ctx.images,
      inlineImages: p.inlineImages,
      retry: p.retry,
      signal: this.signal,
    });
    this.commands = new RowCommands({
      ...ctx,
      images,
      reservations: this.reservations,
      signal: this.signal,
      sendSignal: this.stopAll.signal,
      submitsStopped: () => ctx.signal.aborted || this.stopSubmits.signal.aborted,
    });
  }

  /**
   * One row, in one of the concurrency slots, which stand for runs at the provider: creating, looking up
   * and polling. A download is handed to `downloads`, so the slot is free while the video comes in.
   */
  async drive(item: WorkItem, downloads: Pick<CappedTasks, 'add'>): Promise<void> {
    // The first step is taken once the slot is ours: a re-attached run's deadlines count from its first poll, not from the night's start.
    const first = await this.step(item, { at: 'start' }, { on: 'start' });
    const pending = await this.advance(item, first, (command) => command.do === 'download');
    if (pending) downloads.add(async () => void (await this.advance(item, pending, () => false)));
  }

  /** Performs commands until the row ends (undefined) or reaches a command `pause` says is for later. */
  private async advance(item: WorkItem, from: Step, pause: (command: Command) => boolean): Promise<Step | undefined> {
    let current = from;
    for (;;) {
      if (current.command.do === 'end') return undefined;
      if (pause(current.command)) return current;
      const input = await this.commands.perform(item, current.command);
      current = await this.step(item, current.phase, input);
    }
  }

  /** One transition, and its bookkeeping in order; bookkeeping that fails (the journal) ends the row as that failure says. */
  private async step(item: WorkItem, phase: Phase, input: Input): Promise<Step> {
    const next = step(this.view(item, phase), input);
    try {
      for (const effect of next.effects) await this.apply(item, effect);
      return next;
    } catch (error) {
      const failure: Failure = this.commands.failureOf(error);
      for (const effect of giveUp(this.view(item, phase), failure).effects) await this.apply(item, effect).catch(() => {});
      return { phase: { at: 'ended' }, effects: [], command: { do: 'end' } };
    }
  }

  private view(item: WorkItem, phase: Phase): View {
    const known = this.ctx.store.row(item.key);
    const expectedRunMs = this.runTimes.expectedMs(item.row.request.durationSeconds);
    const expectedQueueMs = this.runTimes.expectedQueueMs();
    return {
      facts: {
        key: item.key,
        request: item.request,
        action: item.action,
        estimateMicros: item.estimateMicros,
        durationSeconds: item.row.request.durationSeconds,
        lostRunMayBeBilled: this.ctx.provider.name === 'fal',
      },
      row: known?.request === item.request ? known : undefined,
      phase,
      nowMs: Date.now(),
      rules: this.rules,
      aborted: this.signal.aborted,
      ...(expectedRunMs !== undefined && { expectedRunMs }),
      ...(expectedQueueMs !== undefined && { expectedQueueMs }),
    };
  }

  private async apply(item: WorkItem, effect: Effect): Promise<void> {
    const { log, store } = this.ctx;
    const where = { manifest: item.row.manifest, row: item.row.id, line: item.row.line };
    switch (effect.do) {
      case 'record':
        await store.append(eventFor(item, effect.event));
        return;
      case 'log':
        log.emit(effect.level, { event: effect.event, fields: { ...where, ...effect.fields } } as LoggedEvent, effect.message);
        return;
      case 'settle': {
        const passed = await this.reservations.settle(item, effect.billedMicros);
        if (passed !== undefined && this.stopped === undefined) this.stopForBudget(passed, where);
        return;
      }
      case 'price_seen':
        await this.reservations.priceSeen(item, effect.billedMicros);
        return;
      case 'run_time_seen':
        this.runTimes.observe(item.row.request.durationSeconds, effect.runMs, effect.queueMs);
        return;
      case 'raw_output_seen':
        this.logRawOutput(effect.snapshot, where);
        return;
      case 'stop':
        if (effect.reason === 'budget_full') this.stopForBudget(this.reservations.fullMessage(item));
        else this.stop(effect.failure);
        return;
    }
  }

  /** The raw output of the night's first succeeded run, once (signatures redacted): a drift in the provider's shape shows in the morning's log. */
  private logRawOutput(snapshot: RunSnapshot, where: { manifest: string; row: string; line: number }): void {
    if (this.rawOutputLogged || snapshot.rawOutput === undefined) return;
    this.rawOutputLogged = true;
    const message = `first succeeded run ${snapshot.runId} of the night, output as received: ${JSON.stringify(redactJson(snapshot.rawOutput))}`;
    this.ctx.log.info('raw_output', message, { ...where, run_id: snapshot.runId });
  }

  /** The budget is spent: submit nothing more, let runs in flight finish. */
  private stopForBudget(message: string, where?: { manifest: string; row: string; line: number }): void {
    if (this.stopped === undefined) {
      this.stopped = { kind: 'budget', message };
      this.ctx.log.error('budget_reached', `${message}; submitting nothing more, runs in flight finish`, where ?? {});
    }
    this.stopSubmits.abort();
  }

  /** 401/403 and a journal that cannot be written stop everything; 402 stops new submissions and lets runs in flight finish. */
  private stop(failure: Failure): void {
    const kind = failure.kind === 'io' ? 'io' : failure.kind === 'credit' ? 'credit' : 'fatal';
    if (this.stopped === undefined) {
      this.stopped = { kind, message: failure.message };
      this.ctx.log.error('run_stopped', `stopping: ${failure.message}`, { code: failure.code });
    }
    this.stopSubmits.abort();
    if (kind !== 'credit') this.stopAll.abort();
  }
}

/**
 * Runs every item that has work under the concurrency cap. Resolves when all rows have settled or
 * the run was stopped; the journal holds the outcome.
 */
export async function executePlan(items: readonly WorkItem[], ctx: ExecuteContext): Promise<StopReason | undefined> {
  const runner = new Runner(ctx);
  // Runs that may already exist (re-attached, or a lost create, looked up tonight or left by --only) are money being spent: they count first, whatever the limit.
  for (const item of items) if (item.action === 'reattach' || mayHaveRun(item)) await runner.reservations.commit(item);
  // Downloads go to the CDN, not the provider: they do not hold a slot, but are capped alike.
  const width = ctx.pipeline.concurrency;
  const downloads = new CappedTasks(width);
  // A row starts only while at most `width` videos wait for a download (up to 2 × width once rows that started finish): finished videos do not pile up in memory, or expire at the provider.
  await eachInPool(activeItems(items), width, async (item) => {
    await downloads.room(width);
    await runner.drive(item, downloads);
  });
  await downloads.drained();
  return runner.stopped;
}

function* activeItems(items: readonly WorkItem[]): Generator<WorkItem> {
  for (const item of items) if (ACTIVE_ACTIONS.has(item.action)) yield item;
}
