import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { imageSize } from 'image-size';
import { IMAGE_LIMITS, klingV3InputSchema, outputSeconds, type KlingV3Input } from '../../model/kling-v3.js';
import { FAL_ENDPOINT } from '../fal.js';
import { RUNFLOW_CREATE_PATH } from '../runflow.js';
import { falRoute, falSubmit } from './fal-api.js';
import { clipName, loadClips, type ClipLibrary } from './clips.js';

export interface SimulatorOptions {
  host: string;
  port: number;
  /** Time a run spends running once it has a slot. */
  latencyMs: number;
  /** Per-model cap on running runs; runs over it wait in `queued`. */
  concurrency: number;
  /** Share of runs that end `failed` (not billed). */
  failRate: number;
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
  /** Credit in micro-dollars; creates are refused with 402 when a run could exceed it. */
  creditMicros: number | undefined;
  /** Billing rates per second of output video: silent, with audio, with voice control. */
  priceMicrosPerSecond: number;
  audioPriceMicrosPerSecond: number;
  voicePriceMicrosPerSecond: number;
  /** When set, only this bearer key is accepted; otherwise any non-empty key. */
  apiKey: string | undefined;
  /** Answer creates this late, after the run exists: a client timeout then loses the answer, not the run. */
  createResponseDelayMs: number;
  seed: number;
}

export const DEFAULT_SIMULATOR_OPTIONS: SimulatorOptions = {
  host: '127.0.0.1',
  port: 0,
  latencyMs: 1500,
  concurrency: 8,
  failRate: 0,
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

export interface SimRun {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  input: KlingV3Input;
  metadata: unknown;
  seconds: number;
  audio: boolean;
  costMicros: number;
  createdAt: number;
  startedAt?: number;
  completedAt?: number;
  failure?: { code: string; message: string };
  /** Field errors of an input that failed validation (fal reports them in the result). */
  errors?: { field: string; message: string }[];
  canceled?: boolean;
}

export interface Rejection {
  status: number;
  code: string;
  message: string;
  errors?: { field: string; message: string }[];
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

export type Protocol = 'runflow' | 'fal';

/** An error in each provider's own shape: Runflow's `{code, message, errors}`, fal's `{detail, error_type}`. */
export function replyError(res: ServerResponse, protocol: Protocol, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  if (protocol === 'runflow') return envelope(res, status, code, message, null, headers);
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

function usd(micros: number): string {
  return (micros / 1_000_000).toFixed(6);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function failure(status: number, code: string, message: string, errors: unknown[] | null = null): { status: number; body: unknown } {
  return { status, body: { code, message, errors } };
}

function envelope(res: ServerResponse, status: number, code: string, message: string, errors: unknown[] | null = null, headers: Record<string, string> = {}): void {
  sendJson(res, status, { code, message, errors }, headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** What the model would say about these image bytes: too small, wrong shape, or not an image. */
function imageBytesProblem(bytes: Buffer): string | undefined {
  try {
    const { width, height } = imageSize(bytes);
    if (Math.min(width, height) < IMAGE_LIMITS.minSidePx) return `image is ${width}x${height}, each side must be at least ${IMAGE_LIMITS.minSidePx}px`;
    const aspect = width / height;
    if (aspect < IMAGE_LIMITS.minAspect || aspect > IMAGE_LIMITS.maxAspect) return `aspect ratio ${aspect.toFixed(2)} is outside ${IMAGE_LIMITS.minAspect}-${IMAGE_LIMITS.maxAspect}`;
  } catch {
    return 'could not be decoded as an image';
  }
  return undefined;
}

/** Checks an image URL the way the model's fetcher would: data: URIs are decoded and measured. */
function imageProblem(url: string): string | undefined {
  if (url.startsWith('data:')) {
    const m = /^data:image\/[\w.+-]+;base64,(.*)$/s.exec(url);
    if (!m) return 'is not a base64 data:image URI';
    return imageBytesProblem(Buffer.from(m[1] ?? '', 'base64'));
  }
  // No network here: hosts under the reserved .invalid TLD stand for images the model cannot fetch.
  if (new URL(url).hostname.endsWith('.invalid')) return 'could not be downloaded (HTTP 404)';
  return undefined;
}

/**
 * A local stand-in for Runflow's runs API for Kling 3.0 Pro: same paths, envelope, statuses and
 * billing rules, with knobs for latency, queueing and faults, and a ledger that tests read.
 */
export class Simulator {
  readonly options: SimulatorOptions;
  readonly created: LedgerEntry[] = [];
  readonly billed: LedgerEntry[] = [];
  /** Every API request received (not file downloads), for tests that assert nothing was sent. */
  apiRequests = 0;
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
    /** Bytes PUT to upload URLs, and confirmations asked for. */
    uploads: 0,
    confirmations: 0,
  };
  /** Uploaded assets: declared, then their bytes PUT, then confirmed for a signed URL. */
  private readonly assets = new Map<string, { mime: string; size: number; bytes?: Buffer }>();
  /** Arrival times of API requests, to enforce and measure the per-minute limit. */
  private readonly arrivals: number[] = [];
  private readonly runs = new Map<string, SimRun>();
  private readonly waiting: SimRun[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private running = 0;
  private readonly random: () => number;
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
        if (!res.headersSent) envelope(res, 500, 'INTERNAL', String(error));
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

  private committedMicros(): number {
    let sum = this.billedMicros();
    for (const run of this.runs.values()) if (run.status === 'queued' || run.status === 'running') sum += run.costMicros;
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

    this.apiRequests++;
    const now = Date.now();
    this.arrivals.push(now);
    const protocol: Protocol = url.pathname.startsWith('/fal-ai/') ? 'fal' : 'runflow';
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
    const isCreate = route === `POST ${RUNFLOW_CREATE_PATH}` || route === `POST /${FAL_ENDPOINT}`;
    // Half of the injected 5xx and resets on a create come after the run was made: the answer is lost, not the run.
    const fault = this.random() < this.options.errorRate ? 'error' : this.random() < this.options.resetRate ? 'reset' : undefined;
    const afterCreate = fault !== undefined && isCreate && this.random() < 0.5;
    if (fault !== undefined && !afterCreate) {
      await readBody(req);
      return this.injectFault(fault, res, protocol);
    }

    if (isCreate) {
      this.stats.creates++;
      const text = await readBody(req);
      const created = protocol === 'fal' ? falSubmit(this, text) : this.create(text);
      if (this.options.createResponseDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.createResponseDelayMs));
      if (fault !== undefined) {
        if (created.status < 300) this.stats.lostCreateAnswers++;
        return this.injectFault(fault, res, protocol);
      }
      return sendJson(res, created.status, created.body);
    }
    if (protocol === 'fal') {
      await readBody(req);
      return falRoute(this, req.method ?? 'GET', url, res);
    }
    const runMatch = /^\/v1\/runs\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && runMatch) {
      this.stats.polls++;
      const run = this.runs.get(decodeURIComponent(runMatch[1] ?? ''));
      if (!run) return envelope(res, 404, 'RUN_NOT_FOUND', 'Run not found');
      return sendJson(res, 200, this.runObject(run));
    }
    if (route === 'POST /v1/asset-uploads') return this.declareAsset(await readBody(req), res);
    const confirm = /^\/v1\/asset-uploads\/([^/]+)\/confirmations$/.exec(url.pathname);
    if (req.method === 'POST' && confirm) {
      await readBody(req);
      return this.confirmAsset(decodeURIComponent(confirm[1] ?? ''), res);
    }
    if (route === 'GET /v1/runs') {
      this.stats.lists++;
      return this.list(url, res);
    }
    if (route === 'GET /v1/billing/balance') {
      const credit = this.options.creditMicros;
      return sendJson(res, 200, { balance: credit === undefined ? null : usd(credit - this.billedMicros()), currency: 'USD' });
    }
    await readBody(req);
    return envelope(res, 404, 'NOT_FOUND', `No route for ${route}`);
  }

  private create(text: string): { status: number; body: unknown } {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return failure(400, 'BAD_REQUEST', 'Body is not valid JSON');
    }
    if (typeof body !== 'object' || body === null || typeof (body as { input?: unknown }).input !== 'object') {
      return failure(422, 'VALIDATION_ERROR', 'Input validation failed', [{ field: 'input', message: 'is required' }]);
    }
    const raw = { ...(body as { input: Record<string, unknown> }).input };
    // Some copies of the Runflow page name the first frame `image_url`.
    if (raw.start_image_url === undefined && raw.image_url !== undefined) {
      raw.start_image_url = raw.image_url;
      delete raw.image_url;
    }
    const admitted = this.admit(raw, (body as { metadata?: unknown }).metadata ?? null, 'run_');
    if ('rejected' in admitted) {
      const r = admitted.rejected;
      return failure(r.status, r.code, r.message, r.errors?.map((e) => ({ field: `input.${e.field}`, message: e.message })) ?? null);
    }
    return { status: 201, body: this.runObject(admitted.run) };
  }

  /**
   * Checks a model input as the provider would and, when it passes and credit allows, queues a run.
   * With `failLater` (fal), an invalid input still becomes a request, which ends failed and unbilled.
   */
  admit(raw: Record<string, unknown>, metadata: unknown, idPrefix: string, failLater = false): { run: SimRun } | { rejected: Rejection } {
    const parsed = klingV3InputSchema.safeParse(raw);
    let errors: { field: string; message: string }[] = parsed.success ? [] : parsed.error.issues.map((i) => ({ field: i.path.map(String).join('.'), message: i.message }));
    if (parsed.success) {
      const input = parsed.data;
      errors = imageFields(input)
        .map(({ field, url }) => ({ field, message: this.imageProblem(url) }))
        .filter((e): e is { field: string; message: string } => e.message !== undefined);
    }
    const id = idPrefix === 'run_' ? `run_${randomBytes(8).toString('hex')}` : randomUUID();
    if (errors.length > 0 || !parsed.success) {
      if (!failLater) return { rejected: { status: 422, code: 'VALIDATION_ERROR', message: 'Input validation failed', errors } };
      const run: SimRun = { id, status: 'failed', input: raw as KlingV3Input, metadata, seconds: 0, audio: false, costMicros: 0, createdAt: Date.now(), completedAt: Date.now(), failure: { code: 'VALIDATION_ERROR', message: 'Input validation failed' }, errors };
      this.runs.set(run.id, run);
      return { run };
    }
    const input = parsed.data;
    const seconds = outputSeconds(input);
    const audio = input.generate_audio ?? true; // the provider's default, which costs more
    const voice = audio && (input.voice_ids?.length ?? 0) > 0;
    const rate = voice ? this.options.voicePriceMicrosPerSecond : audio ? this.options.audioPriceMicrosPerSecond : this.options.priceMicrosPerSecond;
    const costMicros = seconds * rate;
    const credit = this.options.creditMicros;
    if (credit !== undefined && this.committedMicros() + costMicros > credit) {
      return { rejected: { status: 402, code: 'INSUFFICIENT_CREDIT', message: 'Insufficient credit to run this model; top up your balance' } };
    }
    const run: SimRun = { id, status: 'queued', input, metadata, seconds, audio, costMicros, createdAt: Date.now() };
    this.runs.set(run.id, run);
    this.created.push({ id: run.id, metadata, seconds, usd: costMicros / 1_000_000, input });
    this.waiting.push(run);
    this.dispatch();
    return { run };
  }

  runsWaiting(): readonly SimRun[] {
    return this.waiting;
  }

  /** Checks an image URL as the model's fetcher would: our own assets are read and measured. */
  private imageProblem(url: string): string | undefined {
    if (this.baseUrl && url.startsWith(`${this.baseUrl}/__simulator/assets/`)) {
      const bytes = this.assetBytes(url);
      return typeof bytes === 'string' ? bytes : imageBytesProblem(bytes);
    }
    return imageProblem(url);
  }

  run(id: string): SimRun | undefined {
    return this.runs.get(id);
  }

  /** Stops a queued or running run: it ends canceled and is not billed. False when it already ended. */
  cancel(id: string): boolean {
    const run = this.runs.get(id);
    if (!run || (run.status !== 'queued' && run.status !== 'running')) return false;
    const queued = this.waiting.indexOf(run);
    if (queued >= 0) this.waiting.splice(queued, 1);
    else this.running--;
    run.status = 'failed';
    run.canceled = true;
    run.completedAt = Date.now();
    run.failure = { code: 'CANCELED', message: 'The run was canceled' };
    this.dispatch();
    return true;
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

  private sign(text: string): string {
    return createHmac('sha256', this.urlSecret).update(text).digest('hex').slice(0, 32);
  }

  /** `POST /v1/asset-uploads {filename, mime_type, size_bytes}` → `{asset_id, upload_url}` (up to 50 MiB). */
  private declareAsset(text: string, res: ServerResponse): void {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return envelope(res, 400, 'BAD_REQUEST', 'Body is not valid JSON');
    }
    const size = Number(body.size_bytes);
    const mime = String(body.mime_type ?? '');
    const errors = [
      ...(typeof body.filename === 'string' && body.filename ? [] : [{ field: 'filename', message: 'is required' }]),
      ...(/^image\/(jpeg|png|webp|gif|avif)$/.test(mime) ? [] : [{ field: 'mime_type', message: 'must be an image type' }]),
      ...(Number.isInteger(size) && size > 0 && size <= 50 * 1024 * 1024 ? [] : [{ field: 'size_bytes', message: 'must be 1 byte to 50 MiB' }]),
    ];
    if (errors.length > 0) return envelope(res, 422, 'VALIDATION_ERROR', 'Invalid asset upload', errors);
    const id = `asset_${randomBytes(8).toString('hex')}`;
    this.assets.set(id, { mime, size });
    sendJson(res, 201, { asset_id: id, upload_url: `${this.baseUrl}/__simulator/uploads/${id}?signature=${this.sign(`upload:${id}`)}` });
  }

  /** The presigned PUT: storage, not the API, so an Authorization header is refused as it would be there. */
  private async receiveUpload(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const id = /^\/__simulator\/uploads\/([^/]+)$/.exec(url.pathname)?.[1] ?? '';
    const asset = this.assets.get(id);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    const fail = (status: number, message: string) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(message);
    };
    if (req.method !== 'PUT') return fail(405, 'PUT only');
    if (!asset || url.searchParams.get('signature') !== this.sign(`upload:${id}`)) return fail(403, 'Invalid signature');
    if (req.headers.authorization) return fail(400, 'Only one auth mechanism allowed: the URL is already signed');
    if (req.headers['content-type'] !== asset.mime) return fail(400, `Content-Type must be ${asset.mime}`);
    if (bytes.length !== asset.size) return fail(400, `Expected ${asset.size} bytes, got ${bytes.length}`);
    asset.bytes = bytes;
    this.stats.uploads++;
    res.writeHead(200);
    res.end();
  }

  /** `POST /v1/asset-uploads/{id}/confirmations` → the asset with a short-lived signed URL (asked again, a fresh one). */
  private confirmAsset(id: string, res: ServerResponse): void {
    const asset = this.assets.get(id);
    if (!asset) return envelope(res, 404, 'ASSET_NOT_FOUND', 'Asset not found');
    if (!asset.bytes) return envelope(res, 409, 'UPLOAD_INCOMPLETE', 'The asset bytes have not been uploaded');
    this.stats.confirmations++;
    const expires = Date.now() + 60 * 60_000;
    sendJson(res, 200, { id, mime_type: asset.mime, size_bytes: asset.size, url: `${this.baseUrl}/__simulator/assets/${id}?expires=${expires}&signature=${this.sign(`asset:${id}:${expires}`)}` });
  }

  /** The bytes behind a signed asset URL, or why the model could not fetch them. */
  assetBytes(url: string): Buffer | string {
    const parsed = new URL(url);
    const id = /^\/__simulator\/assets\/([^/]+)$/.exec(parsed.pathname)?.[1] ?? '';
    const expires = Number(parsed.searchParams.get('expires'));
    const asset = this.assets.get(id);
    if (!asset?.bytes || parsed.searchParams.get('signature') !== this.sign(`asset:${id}:${expires}`)) return 'could not be downloaded (HTTP 403)';
    if (Date.now() > expires) return 'could not be downloaded (the signed URL has expired)';
    return asset.bytes;
  }

  private serveAsset(url: URL, res: ServerResponse): void {
    const found = this.assetBytes(url.href);
    if (typeof found === 'string') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(found);
      return;
    }
    res.writeHead(200, { 'content-length': found.length });
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

  /**
   * `GET /v1/runs`: newest first, cursor paging (`limit` at most 500, `next_pq`), and `q`, matched
   * against the run id and every metadata value, so a client can find a run whose create answer it lost.
   */
  private list(url: URL, res: ServerResponse): void {
    const limit = Math.min(500, Math.max(1, Number(url.searchParams.get('limit') ?? '50') || 50));
    const q = url.searchParams.get('q');
    const start = Number(url.searchParams.get('next_pq') ?? '0') || 0;
    const matches = [...this.runs.values()]
      .reverse()
      .filter((run) => {
        if (!q) return true;
        const values = run.metadata && typeof run.metadata === 'object' ? Object.values(run.metadata as Record<string, unknown>).map(String) : [];
        return run.id === q || values.some((v) => v.includes(q));
      });
    const page = matches.slice(start, start + limit);
    const next = start + limit < matches.length ? String(start + limit) : null;
    sendJson(res, 200, { data: page.map((run) => this.runObject(run)), next_pq: next });
  }

  /** Starts queued runs while the model's concurrency cap allows. */
  private dispatch(): void {
    while (this.running < this.options.concurrency && this.waiting.length > 0) {
      const run = this.waiting.shift()!;
      run.status = 'running';
      run.startedAt = Date.now();
      this.running++;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.finish(run);
      }, this.options.latencyMs);
      this.timers.add(timer);
    }
  }

  private finish(run: SimRun): void {
    if (run.status !== 'running') return; // canceled meanwhile: its slot was given back then
    this.running--;
    run.completedAt = Date.now();
    if (this.random() < this.options.failRate) {
      run.status = 'failed';
      run.failure = { code: 'GENERATION_FAILED', message: 'The model could not generate a video for this input' };
    } else {
      run.status = 'succeeded';
      this.billed.push({ id: run.id, metadata: run.metadata, seconds: run.seconds, usd: run.costMicros / 1_000_000 });
    }
    this.dispatch();
  }

  signedFileUrl(run: SimRun): string {
    const expires = this.options.urlTtlMs > 0 ? Date.now() + this.options.urlTtlMs : 0;
    const sig = createHmac('sha256', this.urlSecret).update(`${run.id}:${expires}`).digest('hex').slice(0, 32);
    return `${this.baseUrl}/__simulator/files/${run.id}.mp4?expires=${expires}&signature=${sig}`;
  }

  private runObject(run: SimRun): Record<string, unknown> {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    const done = run.status === 'succeeded';
    const clip = this.clips.get(clipName(run.seconds, run.audio));
    return {
      id: run.id,
      status_code: run.status,
      model_id: 'kuaishou/kling-video/v3/pro/image-to-video',
      input: run.input,
      metadata: run.metadata,
      output: done ? { video: { url: this.signedFileUrl(run), content_type: 'video/mp4', file_name: `${run.id}.mp4`, file_size: clip?.length ?? null } } : null,
      // Failed runs are not billed: their cost is zero.
      cost: done ? usd(run.costMicros) : run.status === 'failed' ? usd(0) : null,
      duration_ms: run.startedAt !== undefined && run.completedAt !== undefined ? run.completedAt - run.startedAt : null,
      created_at: iso(run.createdAt),
      started_at: iso(run.startedAt),
      completed_at: iso(run.completedAt),
      failure_code: run.failure?.code ?? null,
      failure_message: run.failure?.message ?? null,
      error: run.failure ?? null,
    };
  }

  private serveFile(url: URL, res: ServerResponse): void {
    const id = /^\/__simulator\/files\/([^/]+)\.mp4$/.exec(url.pathname)?.[1] ?? '';
    const run = this.runs.get(id);
    const expires = Number(url.searchParams.get('expires') ?? 'NaN');
    const sig = createHmac('sha256', this.urlSecret).update(`${id}:${expires}`).digest('hex').slice(0, 32);
    const denied = (message: string) => {
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`;
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
    };
    if (!run || run.status !== 'succeeded' || url.searchParams.get('signature') !== sig) return denied('Invalid signature');
    if (expires !== 0 && Date.now() > expires) return denied('Request has expired');
    const clip = this.clips.get(clipName(run.seconds, run.audio));
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
