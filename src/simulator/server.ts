import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_ROUTES } from './admin-api.js';
import { loadClips } from './clips.js';
import type { ApiProtocol, SimulatorContext } from './context.js';
import { FAL_API, isFalPath } from './fal-api.js';
import { drawFault, injectFault, refusalOf, RequestMeter } from './gate.js';
import { findRoute, readBody, sendJson, sendReply } from './http.js';
import { SIMULATOR_HOST, simulatorOptionsSchema, type SimulatorOptionsInput, type SimulatorSettings } from './options.js';
import { seededRandom } from './random.js';
import { RUNFLOW_API } from './runflow-api.js';
import { RunBook } from './runs.js';
import { FileStore } from './storage.js';
import { emptyStats, type LedgerEntry, type Protocol, type SimRun, type SimulatorStats } from './types.js';

export type { LedgerEntry, Protocol, SimRun } from './types.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A local stand-in for Runflow's runs API and fal's queue for Kling 3.0 Pro: the documented paths,
 * shapes, statuses and billing rules, with knobs for latency, queueing, list paging and faults, and a
 * ledger that tests read. Where the documents are ambiguous it takes the strictest reading.
 * Options are the pipeline file's `simulator:` block (snake_case, defaults from the schema).
 */
export class Simulator implements SimulatorContext {
  /** Parsed once; tests may change a knob while the simulator runs (read on every use). */
  readonly options: SimulatorSettings;
  readonly stats: SimulatorStats = emptyStats();
  readonly random: () => number;
  readonly files: FileStore;
  readonly runs: RunBook;
  /** Every API request received (not file downloads), for tests that assert nothing was sent. */
  apiRequests = 0;
  readonly listQueries: string[] = [];
  private readonly meter = new RequestMeter();
  private server: Server | undefined;

  constructor(options: SimulatorOptionsInput = {}) {
    this.options = simulatorOptionsSchema.parse(options);
    this.random = seededRandom(this.options.seed);
    this.files = new FileStore(this.options);
    this.runs = new RunBook(this.options, this.random, (url) => this.files.readImage(url));
  }

  get url(): string {
    return this.files.baseUrl;
  }

  /** Every run created (with its wire input) and every run billed. */
  get created(): LedgerEntry[] {
    return this.runs.created;
  }

  get billed(): LedgerEntry[] {
    return this.runs.billed;
  }

  async start(): Promise<string> {
    this.files.clips = await loadClips();
    const server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { code: 'INTERNAL', message: String(error), errors: null });
        else res.destroy();
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, SIMULATOR_HOST, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    this.files.baseUrl = `http://${SIMULATOR_HOST}:${port}`;
    return this.files.baseUrl;
  }

  async close(): Promise<void> {
    this.runs.stop();
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A run, if it belongs to this protocol. */
  run(id: string, protocol?: Protocol): SimRun | undefined {
    return this.runs.get(id, protocol);
  }

  /** Stops a queued or running run: it ends canceled and is not billed. False when it already ended. */
  cancel(id: string): boolean {
    return this.runs.cancel(id);
  }

  /** Test control (also `POST /__simulator/hold`): runs created from now on stay queued until `release`. */
  hold(): void {
    this.runs.hold();
  }

  /** Test control (also `POST /__simulator/release`): held runs take slots again, oldest first. */
  release(): void {
    this.runs.release();
  }

  /** Credit left, in micro-dollars (undefined: unlimited). */
  balanceMicros(): number | undefined {
    return this.runs.balanceMicros();
  }

  /** When each run was created, started and completed (ms since epoch), for the benchmark. */
  timeline(): { id: string; createdAt: number; startedAt?: number; completedAt?: number }[] {
    return this.runs.timeline();
  }

  /** Counters, and the most API requests seen in any 60-second window (to check a client's rate). */
  statistics(): Record<string, number> {
    return { api_requests: this.apiRequests, runs: this.runs.size, max_requests_in_60s: this.meter.maxInAnyMinute(), ...this.stats };
  }

  /** Admin and storage routes first (no key), then the protocol the path belongs to. */
  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const admin = findRoute(ADMIN_ROUTES, method, url.pathname);
    if (admin) {
      await admin.handler(this, { req, res, url, match: admin.match });
      return;
    }
    const api = isFalPath(url.pathname) ? FAL_API : RUNFLOW_API;
    const open = findRoute(api.openRoutes, method, url.pathname);
    if (open) sendReply(res, open.handler());
    else await this.answerApi(api, req, res, url);
  }

  /** The key check, the rate limit and the injected faults, then the route; a create may be slowed or lose its answer. */
  private async answerApi(api: ApiProtocol, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    this.apiRequests++;
    const now = Date.now();
    this.meter.record(now);
    const method = req.method ?? 'GET';
    const refusal = refusalOf(this, this.meter, api, req, now);
    if (refusal) {
      await readBody(req);
      sendReply(res, refusal);
      return;
    }
    const isCreate = api.isCreate(method, url.pathname);
    const { fault, afterCreate } = drawFault(this, isCreate);
    if (fault !== undefined && !afterCreate) {
      await readBody(req);
      injectFault(this, res, api.name, fault);
      return;
    }
    const body = await readBody(req);
    if (isCreate) this.stats.creates++;
    if (isCreate && this.options.create_commit_delay_ms > 0) await sleep(this.options.create_commit_delay_ms);
    const origin = req.headers.host ? `http://${req.headers.host}` : this.url;
    const route = findRoute(api.routes, method, url.pathname);
    const request = { method, url, body, origin, res };
    const reply = route ? route.handler(this, { ...request, match: route.match }) : api.noRoute(this, request);
    if (reply === undefined) return; // answered already (a stream)
    if (isCreate && this.options.create_response_delay_ms > 0) await sleep(this.options.create_response_delay_ms);
    if (fault !== undefined) {
      if (reply.status < 300) this.stats.lostCreateAnswers++;
      injectFault(this, res, api.name, fault);
    } else {
      sendReply(res, reply);
    }
  }
}
