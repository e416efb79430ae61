import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { imageSize } from 'image-size';
import { IMAGE_LIMITS, inputSchemaFor, outputSeconds, type KlingV3Input } from '../model/kling-v3.js';
import { falRoute, isFalPath } from './fal-api.js';
import { aspectOf, clipName, loadClips, type Aspect, type ClipLibrary } from './clips.js';
import { runflowRoute } from './runflow-api.js';

export interface SimulatorOptions {
  host: string;
  port: number;
  /** Time a run spends dispatching and running once it has a slot. */
  latencyMs: number;
  /** Per-model cap on running runs; runs over it wait in `queued`. */
  concurrency: number;
  /** Share of runs that end `failed` (not billed). */
  failRate: number;
  /** Share of runs the provider ends `canceled` (spelled `canceled` or `cancelled`, both documented; not billed). */
  cancelRate: number;
  /** Share of API requests answered 503 before doing anything. */
  errorRate: number;
  /** Share of API requests answered 429 (half of them with Retry-After). */
  rateLimitRate: number;
  /** Share of API requests whose connection is reset without an answer. */
  resetRate: number;
  /** Share of downloads cut short after part of the body. */
  truncateRate: number;
  /** Share of downloads sent slowly, in pieces spread over `slowDownloadMs`. */
  slowDownloadRate: number;
  slowDownloadMs: number;
  /** The organisation's request rate limit (API requests per sliding minute); 0: none. */
  requestsPerMinute: number;
  /** Presigned output URLs expire after this long (0: never). */
  urlTtlMs: number;
  /** Credit in micro-dollars; creates are refused (402 on Runflow, fal's locked-account 403) when a run could exceed it. */
  creditMicros: number | undefined;
  /** Billing rates per second of output video: silent, with audio, with voice control. */
  priceMicrosPerSecond: number;
  audioPriceMicrosPerSecond: number;
  voicePriceMicrosPerSecond: number;
  /** When set, only this key is accepted; otherwise any non-empty key. */
  apiKey: string | undefined;
  /** Answer creates this late, after the run exists: a client timeout then loses the answer, not the run. */
  createResponseDelayMs: number;
  /** Make the run only this long after a create arrives (a slow provider): a client that gave up may still be billed. */
  createCommitDelayMs: number;
  /** Runflow's run list: at most this many items a page, whatever `limit` asks (a server may send fewer). */
  listPageSize: number;
  /** Runflow's run list: a filtered answer starts with this many empty pages, each with a cursor (sparse pages). */
  listEmptyPages: number;
  /** Runflow's run list: a new run is listed only this long after its create (the list lags). */
  listDelayMs: number;
  /** fal keeps results 1 h (6 min when 10 KB or more): times this factor, so tests can see them expire. */
  resultTtlScale: number;
  seed: number;
}

export const DEFAULT_SIMULATOR_OPTIONS: SimulatorOptions = {
  host: '127.0.0.1',
  port: 0,
  latencyMs: 1500,
  concurrency: 8,
  failRate: 0,
  cancelRate: 0,
  errorRate: 0,
  rateLimitRate: 0,
  resetRate: 0,
  truncateRate: 0,
  slowDownloadRate: 0,
  slowDownloadMs: 500,
  requestsPerMinute: 0,
  urlTtlMs: 0,
  creditMicros: undefined,
  priceMicrosPerSecond: 140_000,
  audioPriceMicrosPerSecond: 140_000,
  voicePriceMicrosPerSecond: 140_000,
  apiKey: undefined,
  createResponseDelayMs: 0,
  createCommitDelayMs: 0,
  listPageSize: 500,
  listEmptyPages: 0,
  listDelayMs: 0,
  resultTtlScale: 1,
  seed: 1,
};

export interface LedgerEntry {
  id: string;
  metadata: unknown;
  seconds: number;
  usd: number;
  /** The model input as received (created runs only), so tests can check the wire body. */
  input?: KlingV3Input;
}

export type Protocol = 'runflow' | 'fal';

export interface SimRun {
  id: string;
  protocol: Protocol;
  status: 'queued' | 'dispatching' | 'running' | 'succeeded' | 'failed' | 'canceled';
  /** How a canceled run's status is spelled (both spellings are documented). */
  canceledSpelling?: 'canceled' | 'cancelled';
  input: KlingV3Input;
  clientRef?: string;
  metadata: unknown;
  seconds: number;
  audio: boolean;
  /** The start image's shape: the video has the same aspect ratio. */
  aspect: Aspect;
  costMicros: number;
  createdAt: number;
  startedAt?: number;
  completedAt?: number;
  failure?: { code: string; message: string };
  /** Field errors of an input that failed validation (fal reports them in the result). */
  errors?: { field: string; message: string }[];
  /** Log lines, as fal's status shows them with `?logs=1`. */
  logs: { message: string; level: string; source: string; timestamp: string }[];
}

export interface Rejection {
  status: number;
  code: string;
  message: string;
  errors?: { field: string; message: string }[];
}

/** An uploaded file: Runflow's asset (declared, PUT, confirmed once) or a fal storage file (initiated, PUT). */
export interface SimAsset {
  protocol: Protocol;
  name: string;
  mime: string;
  /** Declared size (Runflow): the PUT must match it. */
  size?: number;
  bytes?: Buffer;
  confirmed?: boolean;
  createdAt: number;
}

/** Every image URL in an input, with its field, for the fetch check. */
function imageFields(input: KlingV3Input): { field: string; url: string }[] {
  const fields: { field: string; url: string }[] = [{ field: 'start_image_url', url: input.start_image_url }];
  if (input.end_image_url !== undefined) fields.push({ field: 'end_image_url', url: input.end_image_url });
  (input.elements ?? []).forEach((element, i) => {
    if ('frontal_image_url' in element) {
      fields.push({ field: `elements.${i}.frontal_image_url`, url: element.frontal_image_url });
      element.reference_image_urls.forEach((url, j) => fields.push({ field: `elements.${i}.reference_image_urls.${j}`, url }));
    }
  });
  return fields;
}

/** An error in each provider's own shape: Runflow's `{code, message, errors}`, fal's `{detail, error_type}`. */
export function replyError(res: ServerResponse, protocol: Protocol, status: number, code: string, message: string, headers: Record<string, string> = {}, errors: unknown[] | null = null): void {
  if (protocol === 'runflow') return sendJson(res, status, { code, message, errors }, headers);
  sendJson(res, status, { detail: message, error_type: code.toLowerCase() }, { 'x-fal-error-type': code.toLowerCase(), ...headers });
}

/** First index in a sorted array whose value is at least `value`. */
function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Small deterministic PRNG so a seeded simulator fails the same runs every time. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A UUID v7 (time-ordered), as Runflow's callback examples show run ids. */
export function uuidv7(nowMs = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function usd(micros: number): string {
  return (micros / 1_000_000).toFixed(6);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The width and height of image bytes, or why the model would refuse them. */
function measureImage(bytes: Buffer): { width: number; height: number } | string {
  try {
    const { width, height } = imageSize(bytes);
    if (Math.min(width, height) < IMAGE_LIMITS.minSidePx) return `image is ${width}x${height}, each side must be at least ${IMAGE_LIMITS.minSidePx}px`;
    const aspect = width / height;
    if (aspect < IMAGE_LIMITS.minAspect || aspect > IMAGE_LIMITS.maxAspect) return `aspect ratio ${aspect.toFixed(2)} is outside ${IMAGE_LIMITS.minAspect}-${IMAGE_LIMITS.maxAspect}`;
    return { width, height };
  } catch {
    return 'could not be decoded as an image';
  }
}

/** A request's answer, before faults and transport: what each protocol's routes return. */
export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/**
 * A local stand-in for Runflow's runs API and fal's queue for Kling 3.0 Pro: the documented paths,
 * shapes, statuses and billing rules, with knobs for latency, queueing, list paging and faults, and a
 * ledger that tests read. Where the documents are ambiguous it takes the strictest reading.
 */
export class Simulator {
  readonly options: SimulatorOptions;
  readonly created: LedgerEntry[] = [];
  readonly billed: LedgerEntry[] = [];
  /** Every API request received (not file downloads), for tests that assert nothing was sent. */
  apiRequests = 0;
  /** The query string of every run-list request, for tests of what a client asks. */
  readonly listQueries: string[] = [];
  /** What the simulator did, for tests and the benchmark (`GET /__simulator/stats`). */
  readonly stats = {
    rateLimitedRandom: 0,
    rateLimitedOverLimit: 0,
    errors: 0,
    resets: 0,
    /** Creates that made a run and then failed to answer (5xx or reset): a client must reconcile them. */
    lostCreateAnswers: 0,
    truncatedDownloads: 0,
    slowDownloads: 0,
    downloads: 0,
    creates: 0,
    polls: 0,
    lists: 0,
    /** List requests refused because their query is not a documented form (400/422). */
    refusedLists: 0,
    /** Filtered list pages that held a match after the first page (a client that stops at page 1 misses these). */
    listHitsAfterFirstPage: 0,
    /** Bytes PUT to upload URLs, and Runflow confirmations made. */
    uploads: 0,
    confirmations: 0,
    /** Fresh asset URLs minted by `GET /v1/assets/{id}`. */
    assetReads: 0,
  };
  readonly assets = new Map<string, SimAsset>();
  /** Arrival times of API requests, to enforce and measure the per-minute limit. */
  private readonly arrivals: number[] = [];
  private readonly runs = new Map<string, SimRun>();
  private readonly waiting: SimRun[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly watchers = new Set<() => void>();
  private running = 0;
  readonly random: () => number;
  private readonly urlSecret = randomBytes(16);
  private server: Server | undefined;
  clips: ClipLibrary = new Map();
  private baseUrl = '';

  constructor(options: Partial<SimulatorOptions> = {}) {
    this.options = { ...DEFAULT_SIMULATOR_OPTIONS, ...options };
    this.random = mulberry32(this.options.seed);
  }

  get url(): string {
    return this.baseUrl;
  }

  async start(): Promise<string> {
    this.clips = await loadClips();
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { code: 'INTERNAL', message: String(error), errors: null });
        else res.destroy();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://${this.options.host}:${port}`;
    return this.baseUrl;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private billedMicros(): number {
    return this.billed.reduce((sum, e) => sum + Math.round(e.usd * 1_000_000), 0);
  }

  /** Credit left, in micro-dollars (undefined: unlimited). */
  balanceMicros(): number | undefined {
    return this.options.creditMicros === undefined ? undefined : this.options.creditMicros - this.billedMicros();
  }

  private committedMicros(): number {
    let sum = this.billedMicros();
    for (const run of this.runs.values()) if (run.status === 'queued' || run.status === 'dispatching' || run.status === 'running') sum += run.costMicros;
    return sum;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const route = `${req.method} ${url.pathname}`;
    if (url.pathname.startsWith('/__simulator/files/')) return this.serveFile(url, res);
    if (url.pathname.startsWith('/__simulator/uploads/')) return this.receiveUpload(req, url, res);
    if (url.pathname.startsWith('/__simulator/assets/')) return this.serveAsset(url, res);
    if (route === 'GET /__simulator/ledger') return sendJson(res, 200, { created: this.created, billed: this.billed });
    if (route === 'GET /__simulator/stats') return sendJson(res, 200, this.statistics());
    // Liveness needs no key, as health checks go.
    if (route === 'GET /v1/health') return sendJson(res, 200, { status: 'ok' });
    if (route === 'GET /v1/readiness') return sendJson(res, 200, { status: 'ready' });

    this.apiRequests++;
    const now = Date.now();
    this.arrivals.push(now);
    const protocol: Protocol = isFalPath(url.pathname) ? 'fal' : 'runflow';
    const auth = req.headers.authorization ?? '';
    // Runflow: `Authorization: Bearer <key>`; fal: `Authorization: Key <key>`.
    const key = (protocol === 'fal' ? /^Key\s+(\S+)$/i : /^Bearer\s+(\S+)$/i).exec(auth)?.[1];
    if (!key || (this.options.apiKey !== undefined && key !== this.options.apiKey)) {
      await readBody(req);
      return replyError(res, protocol, 401, 'UNAUTHORIZED', 'Missing or invalid API key');
    }
    const limit = this.options.requestsPerMinute;
    if (limit > 0) {
      const inWindow = this.arrivals.length - lowerBound(this.arrivals, now - 60_000 + 1);
      if (inWindow > limit) {
        await readBody(req);
        this.stats.rateLimitedOverLimit++;
        const oldest = this.arrivals[this.arrivals.length - limit - 1] ?? now;
        return replyError(res, protocol, 429, 'RATE_LIMITED', `Rate limit of ${limit} requests per minute exceeded`, { 'retry-after': String(Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000))) });
      }
    }
    if (this.random() < this.options.rateLimitRate) {
      await readBody(req);
      this.stats.rateLimitedRandom++;
      // One version of the docs sends Retry-After with a 429, another sends none: half and half.
      const headers: Record<string, string> = this.random() < 0.5 ? { 'retry-after': '1' } : {};
      return replyError(res, protocol, 429, 'RATE_LIMITED', 'Too many requests', headers);
    }
    const isCreate = req.method === 'POST' && (protocol === 'fal' ? /^\/fal-ai\/kling-video\/v3\/pro\/image-to-video\/?$/.test(url.pathname) : /^\/v1\/models\/.+\/runs$/.test(url.pathname));
    // Half of the injected 5xx and resets on a create come after the run was made: the answer is lost, not the run.
    const fault = this.random() < this.options.errorRate ? 'error' : this.random() < this.options.resetRate ? 'reset' : undefined;
    const afterCreate = fault !== undefined && isCreate && this.random() < 0.5;
    if (fault !== undefined && !afterCreate) {
      await readBody(req);
      return this.injectFault(fault, res, protocol);
    }
    const body = await readBody(req);
    if (isCreate) this.stats.creates++;
    if (isCreate && this.options.createCommitDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.createCommitDelayMs));
    const reply = protocol === 'fal' ? await falRoute(this, req, url, body, res) : runflowRoute(this, req.method ?? 'GET', url, body);
    if (reply === undefined) return; // answered already (a stream)
    if (isCreate && this.options.createResponseDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.createResponseDelayMs));
    if (fault !== undefined) {
      if (reply.status < 300) this.stats.lostCreateAnswers++;
      return this.injectFault(fault, res, protocol);
    }
    sendJson(res, reply.status, reply.body, reply.headers);
  }

  /**
   * Checks a model input as the provider would and, when it passes and credit allows, queues a run.
   * With `failLater` (fal), an invalid input still becomes a request, which ends failed and unbilled.
   */
  admit(raw: Record<string, unknown>, ids: { protocol: Protocol; clientRef?: string; metadata?: unknown }, failLater = false): { run: SimRun } | { rejected: Rejection } {
    const parsed = inputSchemaFor(ids.protocol).safeParse(raw);
    let errors: { field: string; message: string }[] = parsed.success ? [] : parsed.error.issues.map((i) => ({ field: i.path.map(String).join('.'), message: i.message }));
    let aspect: Aspect = 'landscape';
    if (parsed.success) {
      errors = [];
      for (const { field, url } of imageFields(parsed.data as KlingV3Input)) {
        const measured = this.fetchImage(url);
        if (typeof measured === 'string') errors.push({ field, message: measured });
        else if (field === 'start_image_url' && measured) aspect = aspectOf(measured.width, measured.height);
      }
    }
    const base = { id: uuidv7(), protocol: ids.protocol, metadata: ids.metadata ?? null, createdAt: Date.now(), logs: [], aspect, ...(ids.clientRef !== undefined && { clientRef: ids.clientRef }) };
    if (errors.length > 0 || !parsed.success) {
      if (!failLater) return { rejected: { status: 422, code: 'VALIDATION_ERROR', message: 'Input validation failed', errors } };
      const run: SimRun = { ...base, status: 'failed', input: raw as KlingV3Input, seconds: 0, audio: false, costMicros: 0, completedAt: Date.now(), failure: { code: 'VALIDATION_ERROR', message: 'Input validation failed' }, errors };
      this.runs.set(run.id, run);
      return { run };
    }
    const input = parsed.data as KlingV3Input;
    const seconds = outputSeconds(input);
    const audio = input.generate_audio ?? true; // the provider's default, which costs more
    const voice = audio && ((input.voice_ids?.length ?? 0) > 0 || (input.elements ?? []).some((e) => 'voice_id' in e && e.voice_id !== undefined));
    const rate = voice ? this.options.voicePriceMicrosPerSecond : audio ? this.options.audioPriceMicrosPerSecond : this.options.priceMicrosPerSecond;
    const costMicros = seconds * rate;
    const credit = this.options.creditMicros;
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

  runsWaiting(): readonly SimRun[] {
    return this.waiting;
  }

  /** Runs of one protocol, oldest first: Runflow's and fal's are kept apart, as two providers would. */
  runsOf(protocol: Protocol): SimRun[] {
    return [...this.runs.values()].filter((run) => run.protocol === protocol);
  }

  /** Measures an image URL the way the model's fetcher would: our own uploads and data: URIs are read; .invalid hosts are unreachable. */
  private fetchImage(url: string): { width: number; height: number } | string | undefined {
    if (url.startsWith('data:')) {
      const m = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url);
      if (!m) return 'is not a base64 data:image URI';
      return measureImage(Buffer.from(m[1] ?? '', 'base64'));
    }
    if (this.baseUrl && url.startsWith(`${this.baseUrl}/__simulator/assets/`)) {
      const bytes = this.assetBytes(url);
      return typeof bytes === 'string' ? bytes : measureImage(bytes);
    }
    // No network here: hosts under the reserved .invalid TLD stand for images the model cannot fetch.
    if (new URL(url).hostname.endsWith('.invalid')) return 'could not be downloaded (HTTP 404)';
    return undefined;
  }

  /** A run, if it belongs to this protocol. */
  run(id: string, protocol?: Protocol): SimRun | undefined {
    const run = this.runs.get(id);
    return run && (protocol === undefined || run.protocol === protocol) ? run : undefined;
  }

  /** Stops a queued or running run: it ends canceled and is not billed. False when it already ended. */
  cancel(id: string): boolean {
    const run = this.runs.get(id);
    if (!run || (run.status !== 'queued' && run.status !== 'dispatching' && run.status !== 'running')) return false;
    const queued = this.waiting.indexOf(run);
    if (queued >= 0) this.waiting.splice(queued, 1);
    else this.running--;
    this.end(run, 'canceled', { code: 'CANCELED', message: 'The run was canceled' });
    this.dispatch();
    return true;
  }

  /** Calls `listener` whenever any run changes state, until the returned function is called. */
  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private changed(): void {
    for (const listener of this.watchers) listener();
  }

  private log(run: SimRun, message: string): void {
    run.logs.push({ message, level: 'INFO', source: 'user', timestamp: new Date().toISOString() });
  }

  private injectFault(fault: 'error' | 'reset', res: ServerResponse, protocol: Protocol): void {
    if (fault === 'reset') {
      this.stats.resets++;
      res.socket?.resetAndDestroy();
      return;
    }
    this.stats.errors++;
    replyError(res, protocol, 503, 'MODEL_UNAVAILABLE', 'The model is temporarily unavailable');
  }

  sign(text: string): string {
    return createHmac('sha256', this.urlSecret).update(text).digest('hex').slice(0, 32);
  }

  /** A presigned PUT address for an asset's bytes. */
  uploadUrl(id: string): string {
    return `${this.baseUrl}/__simulator/uploads/${id}?signature=${this.sign(`upload:${id}`)}`;
  }

  /** A presigned GET address for an asset's bytes; Runflow's expire after an hour, fal's CDN files do not. */
  assetUrl(id: string, expiresAt = 0): string {
    return `${this.baseUrl}/__simulator/assets/${id}?expires=${expiresAt}&signature=${this.sign(`asset:${id}:${expiresAt}`)}`;
  }

  /** The presigned PUT: storage, not the API, so an Authorization header is refused as it would be there. */
  private async receiveUpload(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const id = /^\/__simulator\/uploads\/([^/]+)$/.exec(url.pathname)?.[1] ?? '';
    const asset = this.assets.get(id);
    const bytes = await readBody(req);
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(message);
    };
    if (req.method !== 'PUT') return fail(405, 'PUT only');
    if (!asset || url.searchParams.get('signature') !== this.sign(`upload:${id}`)) return fail(403, 'Invalid signature');
    if (req.headers.authorization) return fail(400, 'Only one auth mechanism allowed: the URL is already signed');
    if (req.headers['content-type'] !== asset.mime) return fail(400, `Content-Type must be ${asset.mime}`);
    if (asset.size !== undefined && bytes.length !== asset.size) return fail(400, `Expected ${asset.size} bytes, got ${bytes.length}`);
    asset.bytes = bytes;
    this.stats.uploads++;
    res.writeHead(200);
    res.end();
  }

  /** The bytes behind a signed asset URL, or why the model could not fetch them. */
  assetBytes(url: string): Buffer | string {
    const parsed = new URL(url);
    const id = /^\/__simulator\/assets\/([^/]+)$/.exec(parsed.pathname)?.[1] ?? '';
    const expires = Number(parsed.searchParams.get('expires'));
    const asset = this.assets.get(id);
    if (!asset?.bytes || parsed.searchParams.get('signature') !== this.sign(`asset:${id}:${expires}`)) return 'could not be downloaded (HTTP 403)';
    if (asset.protocol === 'runflow' && !asset.confirmed) return 'could not be downloaded (the asset was never confirmed)';
    if (expires !== 0 && Date.now() > expires) return 'could not be downloaded (the signed URL has expired)';
    return asset.bytes;
  }

  private serveAsset(url: URL, res: ServerResponse): void {
    const found = this.assetBytes(url.href);
    if (typeof found === 'string') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(found);
      return;
    }
    res.writeHead(200, { 'content-length': found.length, 'content-type': this.assets.get(/\/__simulator\/assets\/([^/?]+)/.exec(url.pathname)?.[1] ?? '')?.mime ?? 'application/octet-stream' });
    res.end(found);
  }

  /** When each run was created, started and completed (ms since epoch), for the benchmark. */
  timeline(): { id: string; createdAt: number; startedAt?: number; completedAt?: number }[] {
    return [...this.runs.values()].map((r) => ({ id: r.id, createdAt: r.createdAt, ...(r.startedAt !== undefined && { startedAt: r.startedAt }), ...(r.completedAt !== undefined && { completedAt: r.completedAt }) }));
  }

  /** Counters, and the most API requests seen in any 60-second window (to check a client's rate). */
  statistics(): Record<string, number> {
    let maxInWindow = 0;
    let start = 0;
    for (let end = 0; end < this.arrivals.length; end++) {
      while (this.arrivals[end]! - this.arrivals[start]! >= 60_000) start++;
      maxInWindow = Math.max(maxInWindow, end - start + 1);
    }
    return { api_requests: this.apiRequests, runs: this.runs.size, max_requests_in_60s: maxInWindow, ...this.stats };
  }

  private later(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      action();
    }, ms);
    this.timers.add(timer);
  }

  /** Starts queued runs while the model's concurrency cap allows: `dispatching` briefly, then `running`. */
  private dispatch(): void {
    while (this.running < this.options.concurrency && this.waiting.length > 0) {
      const run = this.waiting.shift()!;
      run.status = 'dispatching';
      this.running++;
      const dispatchMs = Math.min(50, Math.round(this.options.latencyMs * 0.05));
      this.later(dispatchMs, () => {
        if (run.status !== 'dispatching') return; // canceled meanwhile
        run.status = 'running';
        run.startedAt = Date.now();
        this.log(run, 'Generating video');
        this.changed();
        this.later(this.options.latencyMs - dispatchMs, () => this.finish(run));
      });
    }
    this.changed();
  }

  private end(run: SimRun, status: 'succeeded' | 'failed' | 'canceled', failure?: { code: string; message: string }): void {
    run.status = status;
    run.completedAt = Date.now();
    if (failure) run.failure = failure;
    if (status === 'canceled') run.canceledSpelling = this.random() < 0.5 ? 'canceled' : 'cancelled';
    this.log(run, status === 'succeeded' ? 'Video generated' : `Run ${status}`);
    this.changed();
  }

  private finish(run: SimRun): void {
    if (run.status !== 'running') return; // canceled meanwhile: its slot was given back then
    this.running--;
    if (this.random() < this.options.failRate) {
      this.end(run, 'failed', { code: 'GENERATION_FAILED', message: 'The model could not generate a video for this input' });
    } else if (this.random() < this.options.cancelRate) {
      this.end(run, 'canceled', { code: 'CANCELED', message: 'The run was canceled by the provider' });
    } else {
      this.billed.push({ id: run.id, metadata: run.metadata, seconds: run.seconds, usd: run.costMicros / 1_000_000 });
      this.end(run, 'succeeded');
    }
    this.dispatch();
  }

  /** The video file's name in the clip library: its duration, audio and the start image's shape. */
  clipOf(run: SimRun): { name: string; bytes: Buffer | undefined } {
    const name = clipName(run.seconds, run.audio, run.aspect);
    return { name, bytes: this.clips.get(name) };
  }

  signedFileUrl(run: SimRun): string {
    const expires = this.options.urlTtlMs > 0 ? Date.now() + this.options.urlTtlMs : 0;
    return `${this.baseUrl}/__simulator/files/${run.id}.mp4?expires=${expires}&signature=${this.sign(`${run.id}:${expires}`)}`;
  }

  private serveFile(url: URL, res: ServerResponse): void {
    const id = /^\/__simulator\/files\/([^/]+)\.mp4$/.exec(url.pathname)?.[1] ?? '';
    const run = this.runs.get(id);
    const expires = Number(url.searchParams.get('expires') ?? 'NaN');
    const denied = (message: string) => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`;
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    };
    if (!run || run.status !== 'succeeded' || url.searchParams.get('signature') !== this.sign(`${id}:${expires}`)) return denied('Invalid signature');
    if (expires !== 0 && Date.now() > expires) return denied('Request has expired');
    const clip = this.clipOf(run).bytes;
    if (!clip) return denied('No such clip');
    this.stats.downloads++;
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clip.length });
    if (this.random() < this.options.truncateRate) {
      this.stats.truncatedDownloads++;
      res.write(clip.subarray(0, Math.floor(clip.length / 2)));
      setImmediate(() => res.destroy());
      return;
    }
    if (this.random() < this.options.slowDownloadRate) {
      this.stats.slowDownloads++;
      const pieces = 10;
      const size = Math.ceil(clip.length / pieces);
      let i = 0;
      const timer = setInterval(() => {
        if (res.destroyed || i >= pieces) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(clip.subarray(i * size, (i + 1) * size));
        i++;
      }, this.options.slowDownloadMs / pieces);
      return;
    }
    res.end(clip);
  }
}
