import type { SimulatorSettings } from './options.js';
import type { RunBook } from './runs.js';
import type { FileStore } from './storage.js';
import type { ApiCall, ApiRequest, Protocol, RawCall, Reply, Route, SimulatorStats } from './types.js';

/** What a route handler may read and change: the simulator's parts, not its server. */
export interface SimulatorContext {
  readonly options: SimulatorSettings;
  readonly stats: SimulatorStats;
  readonly runs: RunBook;
  readonly files: FileStore;
  /** The one seeded generator: faults, failures and spellings all draw from it, in request order. */
  readonly random: () => number;
  /** The query string of every run-list request, for tests of what a client asks. */
  readonly listQueries: string[];
  /** Our own base URL, for answers to a request without a Host header. */
  readonly url: string;
  statistics(): Record<string, number>;
}

/** Answers an API request; undefined when it answered itself (a stream). */
export type ApiHandler = (sim: SimulatorContext, call: ApiCall) => Reply | undefined;

/** Answers a storage or admin request itself, on the raw response. */
export type RawHandler = (sim: SimulatorContext, call: RawCall) => void | Promise<void>;

/** One provider's API: how it authenticates, which request creates a run, its routes and its 404. */
export interface ApiProtocol {
  name: Protocol;
  /** Captures the key from the Authorization header. */
  keyPattern: RegExp;
  isCreate(method: string, pathname: string): boolean;
  /** Answered before the key check and not counted as API requests (liveness probes). */
  openRoutes: Route<() => Reply>[];
  routes: Route<ApiHandler>[];
  /** The answer when no route matches. */
  noRoute: (sim: SimulatorContext, request: ApiRequest) => Reply;
}
