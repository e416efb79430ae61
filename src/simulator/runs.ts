import type { KlingV3Input } from '../model/kling-v3.js';
import { checkInput, priceOf, usdToMicros, type ImageReader } from './admission.js';
import type { SimulatorSettings } from './options.js';
import { uuidv7 } from './random.js';
import type { LedgerEntry, Protocol, Rejection, SimRun } from './types.js';

type Ending = 'succeeded' | 'failed' | 'canceled';

function isLive(run: SimRun): boolean {
  return run.status === 'queued' || run.status === 'dispatching' || run.status === 'running';
}

/**
 * Every run of both protocols and its life: admitted `queued`, given a slot under the per-model
 * concurrency cap (`dispatching`, then `running`), ended after the latency, and billed only when it
 * succeeds. A test can hold the queue so admitted runs stay `queued` until it releases them.
 */
export class RunBook {
  readonly created: LedgerEntry[] = [];
  readonly billed: LedgerEntry[] = [];
  private readonly runs = new Map<string, SimRun>();
  private readonly waiting: SimRun[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly watchers = new Set<() => void>();
  private running = 0;
  private held = false;

  constructor(
    private readonly options: SimulatorSettings,
    private readonly random: () => number,
    private readonly readImage: ImageReader,
  ) {}

  /**
   * Checks a model input as the provider would and, when it passes and credit allows, queues a run.
   * With `failLater` (fal), an invalid input still becomes a request, which ends failed and unbilled.
   */
  admit(
    raw: Record<string, unknown>,
    ids: { protocol: Protocol; clientRef?: string; metadata?: unknown },
    failLater = false,
  ): { run: SimRun } | { rejected: Rejection } {
    const checked = checkInput(raw, ids.protocol, this.readImage);
    const aspect = 'aspect' in checked ? checked.aspect : 'landscape';
    const base = {
      id: uuidv7(),
      protocol: ids.protocol,
      metadata: ids.metadata ?? null,
      createdAt: Date.now(),
      logs: [],
      aspect,
      ...(ids.clientRef !== undefined && { clientRef: ids.clientRef }),
    };
    if ('errors' in checked) {
      if (!failLater) return { rejected: { status: 422, code: 'VALIDATION_ERROR', message: 'Input validation failed', errors: checked.errors } };
      const failure = { code: 'VALIDATION_ERROR', message: 'Input validation failed' };
      const run: SimRun = {
        ...base,
        status: 'failed',
        input: raw as KlingV3Input,
        seconds: 0,
        audio: false,
        costMicros: 0,
        completedAt: Date.now(),
        failure,
        errors: checked.errors,
      };
      this.runs.set(run.id, run);
      return { run };
    }
    const { input } = checked;
    const { seconds, audio, costMicros } = priceOf(input, this.options);
    const credit = this.creditMicros();
    if (credit !== undefined && this.committedMicros() + costMicros > credit) {
      return { rejected: { status: 402, code: 'INSUFFICIENT_CREDIT', message: 'Insufficient credit to run this model; top up your balance' } };
    }
    const run: SimRun = { ...base, status: 'queued', input, seconds, audio, costMicros };
    this.runs.set(run.id, run);
    this.created.push({ id: run.id, metadata: run.metadata, seconds, usd: costMicros / 1_000_000, input });
    this.waiting.push(run);
    this.log(run, 'Request queued');
    // The create answers `queued`: a slot is given only after the answer is built.
    setImmediate(() => this.dispatch());
    return { run };
  }

  /** A run, if it belongs to this protocol. */
  get(id: string, protocol?: Protocol): SimRun | undefined {
    const run = this.runs.get(id);
    return run && (protocol === undefined || run.protocol === protocol) ? run : undefined;
  }

  /** Runs of one protocol, oldest first: Runflow's and fal's are kept apart, as two providers would. */
  ofProtocol(protocol: Protocol): SimRun[] {
    return [...this.runs.values()].filter((run) => run.protocol === protocol);
  }

  get size(): number {
    return this.runs.size;
  }

  /** How many runs wait ahead of this one (0 when it is not waiting). */
  queuePosition(run: SimRun): number {
    return Math.max(0, this.waiting.indexOf(run));
  }

  /** Stops a queued or running run: it ends canceled and is not billed. False when it already ended. */
  cancel(id: string): boolean {
    const run = this.runs.get(id);
    if (!run || !isLive(run)) return false;
    const queued = this.waiting.indexOf(run);
    if (queued >= 0) this.waiting.splice(queued, 1);
    else this.running--;
    this.end(run, 'canceled', { code: 'CANCELED', message: 'The run was canceled' });
    this.dispatch();
    return true;
  }

  /** Keeps every admitted run `queued` (no slot is given) until `release`: a test control, not a timer. */
  hold(): void {
    this.held = true;
  }

  /** Lets held runs take slots again, oldest first. */
  release(): void {
    this.held = false;
    this.dispatch();
  }

  get isHeld(): boolean {
    return this.held;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Calls `listener` whenever any run changes state, until the returned function is called. */
  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  /** Credit left, in micro-dollars (undefined: unlimited). */
  balanceMicros(): number | undefined {
    const credit = this.creditMicros();
    return credit === undefined ? undefined : credit - this.billedMicros();
  }

  /** When each run was created, started and completed (ms since epoch), for the benchmark. */
  timeline(): { id: string; createdAt: number; startedAt?: number; completedAt?: number }[] {
    return [...this.runs.values()].map((r) => ({
      id: r.id,
      createdAt: r.createdAt,
      ...(r.startedAt !== undefined && { startedAt: r.startedAt }),
      ...(r.completedAt !== undefined && { completedAt: r.completedAt }),
    }));
  }

  /** Forgets the pending dispatches and endings, so a closed simulator leaves no timer behind. */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // Read on every use: a test may change `credit_usd` while the simulator runs.
  private creditMicros(): number | undefined {
    return this.options.credit_usd === undefined ? undefined : usdToMicros(this.options.credit_usd);
  }

  private billedMicros(): number {
    return this.billed.reduce((sum, e) => sum + Math.round(e.usd * 1_000_000), 0);
  }

  /** Billed, plus what the live runs will cost if they succeed: a create is refused past the credit. */
  private committedMicros(): number {
    let sum = this.billedMicros();
    for (const run of this.runs.values()) if (isLive(run)) sum += run.costMicros;
    return sum;
  }

  /** Starts queued runs while the model's concurrency cap allows (and no hold): `dispatching` briefly, then `running`. */
  private dispatch(): void {
    while (!this.held && this.running < this.options.concurrency && this.waiting.length > 0) {
      const run = this.waiting.shift()!;
      run.status = 'dispatching';
      this.running++;
      const dispatchMs = Math.min(50, Math.round(this.options.latency_ms * 0.05));
      this.later(dispatchMs, () => {
        if (run.status !== 'dispatching') return; // canceled meanwhile
        run.status = 'running';
        run.startedAt = Date.now();
        this.log(run, 'Generating video');
        this.changed();
        this.later(this.options.latency_ms - dispatchMs, () => this.finish(run));
      });
    }
    this.changed();
  }

  private finish(run: SimRun): void {
    if (run.status !== 'running') return; // canceled meanwhile: its slot was given back then
    this.running--;
    if (this.random() < this.options.fail_rate) {
      this.end(run, 'failed', { code: 'GENERATION_FAILED', message: 'The model could not generate a video for this input' });
    } else if (this.random() < this.options.cancel_rate) {
      this.end(run, 'canceled', { code: 'CANCELED', message: 'The run was canceled by the provider' });
    } else {
      this.billed.push({ id: run.id, metadata: run.metadata, seconds: run.seconds, usd: run.costMicros / 1_000_000 });
      this.end(run, 'succeeded');
    }
    this.dispatch();
  }

  private end(run: SimRun, status: Ending, failure?: { code: string; message: string }): void {
    run.status = status;
    run.completedAt = Date.now();
    if (failure) run.failure = failure;
    if (status === 'canceled') run.canceledSpelling = this.random() < 0.5 ? 'canceled' : 'cancelled';
    this.log(run, status === 'succeeded' ? 'Video generated' : `Run ${status}`);
    this.changed();
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  private changed(): void {
    for (const listener of this.watchers) listener();
  }

  private log(run: SimRun, message: string): void {
    run.logs.push({ message, level: 'INFO', source: 'user', timestamp: new Date().toISOString() });
  }
}
