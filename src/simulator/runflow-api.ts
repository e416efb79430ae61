import { randomUUID } from 'node:crypto';
import { MODEL_PATH } from '../model/kling-v3.js';
import type { ApiHandler, ApiProtocol, SimulatorContext } from './context.js';
import type { Reply, Route, SimRun } from './types.js';

/** Runflow's documented statuses, in the order a run goes through them. */
export const RUNFLOW_STATUSES = ['queued', 'dispatching', 'running', 'succeeded', 'failed', 'canceled', 'partial_succeeded'] as const;

const LIST_PARAMS = new Set(['q', 'limit', 'sort_by', 'pq']);
/** The filters implemented: exact matches, in the one form Runflow's own templates use. */
const LIST_FILTER = /^(client_ref|status_code)\.EQ:'([^']*)'$/;
const CREATE_KEYS = new Set(['input', 'client_ref', 'metadata', 'callback_url']);

function envelope(status: number, code: string, message: string, errors: unknown[] | null = null): Reply {
  return { status, body: { code, message, errors } };
}

/** Dollars as Runflow writes them: a decimal string. */
function usd(micros: number): string {
  return (micros / 1_000_000).toFixed(6);
}

function iso(t: number | undefined): string | null {
  return t === undefined ? null : new Date(t).toISOString();
}

/** A run as `GET /v1/runs/{id}` shows it: outputs normalised to `output.outputs[]`. */
export function runObject(sim: SimulatorContext, run: SimRun): Record<string, unknown> {
  const done = run.status === 'succeeded';
  const clip = sim.files.clipOf(run);
  const ended = run.status === 'failed' || run.status === 'canceled';
  return {
    id: run.id,
    status_code: run.status === 'canceled' ? (run.canceledSpelling ?? 'canceled') : run.status,
    model_id: MODEL_PATH,
    input: run.input,
    output: done
      ? {
          outputs: [
            { type: 'video', url: sim.files.videoUrl(run), content_type: 'video/mp4', file_name: `${run.id}.mp4`, file_size: clip.bytes?.length ?? null },
          ],
        }
      : null,
    // Failed and canceled runs are not billed: their cost is zero.
    cost: done ? usd(run.costMicros) : ended ? usd(0) : null,
    cost_breakdown: done ? { seconds: run.seconds, audio: run.audio } : null,
    duration_ms: run.startedAt !== undefined && run.completedAt !== undefined ? run.completedAt - run.startedAt : null,
    created_at: iso(run.createdAt),
    started_at: iso(run.startedAt),
    completed_at: iso(run.completedAt),
    client_ref: run.clientRef ?? null,
    metadata: run.metadata,
    failure_code: run.failure?.code ?? null,
    failure_message: run.failure?.message ?? null,
    failure_stage_code: run.failure ? (run.failure.code === 'CANCELED' ? 'dispatch' : 'inference') : null,
    error: run.failure ?? null,
  };
}

/** `POST /v1/models/{model}/runs`: `{input, client_ref?, metadata?, callback_url?}` → 201, a `queued` run. */
function create(sim: SimulatorContext, text: string): Reply {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return envelope(400, 'BAD_REQUEST', 'Body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return envelope(400, 'BAD_REQUEST', 'Body must be a JSON object');
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !CREATE_KEYS.has(k));
  if (unknown.length > 0)
    return envelope(
      422,
      'VALIDATION_ERROR',
      'Invalid run request',
      unknown.map((field) => ({ field, message: 'is not a documented field' })),
    );
  if (typeof fields.input !== 'object' || fields.input === null)
    return envelope(422, 'VALIDATION_ERROR', 'Input validation failed', [{ field: 'input', message: 'is required' }]);
  if (fields.client_ref !== undefined && (typeof fields.client_ref !== 'string' || fields.client_ref.length === 0 || fields.client_ref.length > 255)) {
    return envelope(422, 'VALIDATION_ERROR', 'Invalid run request', [{ field: 'client_ref', message: 'must be a string of 1 to 255 characters' }]);
  }
  const raw = { ...(fields.input as Record<string, unknown>) };
  // Some copies of the Runflow page name the first frame `image_url`.
  if (raw.start_image_url === undefined && raw.image_url !== undefined) {
    raw.start_image_url = raw.image_url;
    delete raw.image_url;
  }
  const admitted = sim.runs.admit(raw, {
    protocol: 'runflow',
    metadata: fields.metadata ?? null,
    ...(typeof fields.client_ref === 'string' && { clientRef: fields.client_ref }),
  });
  if ('rejected' in admitted) {
    const r = admitted.rejected;
    return envelope(r.status, r.code, r.message, r.errors?.map((e) => ({ field: `input.${e.field}`, message: e.message })) ?? null);
  }
  return { status: 201, body: runObject(sim, admitted.run) };
}

/** An opaque cursor: where the next page starts, and for which query (a cursor from another query is refused). */
function encodeCursor(offset: number, emptyServed: number, query: string): string {
  return Buffer.from(JSON.stringify({ o: offset, e: emptyServed, q: query })).toString('base64url');
}

function decodeCursor(cursor: string, query: string): { offset: number; emptyServed: number } | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown; e?: unknown; q?: unknown };
    if (typeof parsed.o !== 'number' || typeof parsed.e !== 'number' || parsed.q !== query) return undefined;
    return { offset: parsed.o, emptyServed: parsed.e };
  } catch {
    return undefined;
  }
}

interface ListQuery {
  filter: RegExpExecArray | undefined;
  limit: number;
  sortBy: 'created_at:desc' | 'created_at:asc';
  /** The cursor's scope: a cursor is only good for the query that gave it. */
  query: string;
  cursor: { offset: number; emptyServed: number };
  isFirstPage: boolean;
}

/** Reads a run-list query in the documented forms only; anything else is the refusal to send. */
function parseListQuery(url: URL): ListQuery | { refusal: [status: number, code: string, message: string, field: string] } {
  for (const name of url.searchParams.keys()) {
    if (!LIST_PARAMS.has(name)) return { refusal: [400, 'INVALID_PARAMETER', `unknown query parameter "${name}" (documented: q, limit, sort_by, pq)`, name] };
  }
  const q = url.searchParams.get('q');
  const filter = q === null ? undefined : (LIST_FILTER.exec(q) ?? undefined);
  if (q !== null && !filter)
    return { refusal: [400, 'INVALID_QUERY', `q must be a filter expression like client_ref.EQ:'<token>' (got ${JSON.stringify(q)})`, 'q'] };
  const limitText = url.searchParams.get('limit') ?? '50';
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : Number.NaN;
  if (!(limit >= 1 && limit <= 500)) return { refusal: [422, 'VALIDATION_ERROR', 'limit must be a whole number from 1 to 500', 'limit'] };
  const sortBy = url.searchParams.get('sort_by') ?? 'created_at:desc';
  if (sortBy !== 'created_at:desc' && sortBy !== 'created_at:asc')
    return { refusal: [422, 'VALIDATION_ERROR', 'sort_by must be created_at:desc or created_at:asc', 'sort_by'] };
  const query = `${q ?? ''}|${sortBy}`;
  const cursorText = url.searchParams.get('pq');
  const cursor = cursorText === null ? { offset: 0, emptyServed: 0 } : decodeCursor(cursorText, query);
  if (!cursor) return { refusal: [400, 'INVALID_CURSOR', 'pq is not a cursor this list gave for this query', 'pq'] };
  return { filter, limit, sortBy, query, cursor, isFirstPage: cursorText === null };
}

/**
 * `GET /v1/runs`: `q` (only `client_ref.EQ:'…'` and `status_code.EQ:'…'`), `limit` (1-500), `sort_by`
 * (`created_at:desc|asc`), cursor `pq`; answers `{items, next_pq?}`. Anything undocumented is refused,
 * so a client that invents a parameter fails here before it fails against Runflow.
 */
function list(sim: SimulatorContext, url: URL): Reply {
  sim.stats.lists++;
  sim.listQueries.push(url.search);
  const parsed = parseListQuery(url);
  if ('refusal' in parsed) {
    const [status, code, message, field] = parsed.refusal;
    sim.stats.refusedLists++;
    return envelope(status, code, message, [{ field, message }]);
  }
  const { filter, limit, sortBy, query, cursor } = parsed;
  // Sparse pages: a filtered answer may start with empty pages that still carry a cursor.
  if (filter && cursor.emptyServed < sim.options.list_empty_pages) {
    return { status: 200, body: { items: [], next_pq: encodeCursor(cursor.offset, cursor.emptyServed + 1, query) } };
  }
  const listedBefore = Date.now() - sim.options.list_delay_ms;
  const statusOf = (run: SimRun) => (run.status === 'canceled' ? (run.canceledSpelling ?? 'canceled') : run.status);
  let matches = sim.runs.ofProtocol('runflow').filter((run) => run.createdAt <= listedBefore);
  if (filter) matches = matches.filter((run) => (filter[1] === 'client_ref' ? run.clientRef === filter[2] : statusOf(run) === filter[2]));
  if (sortBy === 'created_at:desc') matches.reverse();
  const size = Math.min(limit, sim.options.list_page_size);
  const page = matches.slice(cursor.offset, cursor.offset + size);
  const end = cursor.offset + size;
  if (filter && page.length > 0 && !parsed.isFirstPage) sim.stats.listHitsAfterFirstPage++;
  return {
    status: 200,
    body: {
      items: page.map((run) => runObject(sim, run)),
      ...(end < matches.length && { next_pq: encodeCursor(end, cursor.emptyServed, query) }),
      ...(cursor.offset > 0 && { prev_pq: encodeCursor(Math.max(0, cursor.offset - size), cursor.emptyServed, query) }),
    },
  };
}

/** `POST /v1/asset-uploads {filename, mime_type, size_bytes}` → 201 `{asset_id, upload_url}` (up to 50 MiB). */
function declareAsset(sim: SimulatorContext, text: string): Reply {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return envelope(400, 'BAD_REQUEST', 'Body is not valid JSON');
  }
  const size = Number(body.size_bytes);
  const mime = typeof body.mime_type === 'string' ? body.mime_type : '';
  const errors = [
    ...(typeof body.filename === 'string' && body.filename ? [] : [{ field: 'filename', message: 'is required' }]),
    ...(/^image\/(jpeg|png|webp|gif|avif)$/.test(mime) ? [] : [{ field: 'mime_type', message: 'must be an image type' }]),
    ...(Number.isInteger(size) && size > 0 && size <= 50 * 1024 * 1024 ? [] : [{ field: 'size_bytes', message: 'must be 1 byte to 50 MiB' }]),
  ];
  if (errors.length > 0) return envelope(422, 'VALIDATION_ERROR', 'Invalid asset upload', errors);
  const id = randomUUID();
  sim.files.assets.set(id, { protocol: 'runflow', name: String(body.filename), mime, size, createdAt: Date.now() });
  return { status: 201, body: { asset_id: id, upload_url: sim.files.uploadUrl(id) } };
}

/** The asset record, with a URL signed for an hour from now. */
function assetRecord(sim: SimulatorContext, id: string): Record<string, unknown> {
  const asset = sim.files.assets.get(id)!;
  const url = sim.files.assetUrl(id, Date.now() + 60 * 60_000);
  return {
    id,
    name: asset.name,
    url,
    mime_type: asset.mime,
    size_bytes: asset.size ?? asset.bytes?.length ?? null,
    thumbnail_url: url,
    created_at: new Date(asset.createdAt).toISOString(),
  };
}

/** `POST /v1/asset-uploads/{id}/confirmations` → 201 with the asset: it creates the record, so only once. */
function confirmAsset(sim: SimulatorContext, id: string): Reply {
  const asset = sim.files.assets.get(id);
  if (asset?.protocol !== 'runflow') return envelope(404, 'ASSET_NOT_FOUND', 'Asset upload not found');
  if (!asset.bytes) return envelope(422, 'UPLOAD_INCOMPLETE', 'The asset bytes have not been uploaded');
  if (asset.confirmed) return envelope(409, 'CONFLICT', 'The asset upload was already confirmed');
  asset.confirmed = true;
  sim.stats.confirmations++;
  return { status: 201, body: assetRecord(sim, id) };
}

/** `GET /v1/assets/{id}` → the asset with a freshly signed URL. */
function readAsset(sim: SimulatorContext, id: string): Reply {
  const asset = sim.files.assets.get(id);
  if (asset?.protocol !== 'runflow' || !asset.confirmed) return envelope(404, 'ASSET_NOT_FOUND', 'Asset not found');
  sim.stats.assetReads++;
  return { status: 200, body: assetRecord(sim, id) };
}

function readRun(sim: SimulatorContext, id: string): Reply {
  sim.stats.polls++;
  const run = sim.runs.get(id, 'runflow');
  return run ? { status: 200, body: runObject(sim, run) } : envelope(404, 'RUN_NOT_FOUND', 'Run not found');
}

function readBalance(sim: SimulatorContext): Reply {
  const balance = sim.runs.balanceMicros();
  return { status: 200, body: { balance: balance === undefined ? null : usd(balance), currency: 'USD' } };
}

const idOf = (match: RegExpExecArray): string => decodeURIComponent(match[1] ?? '');
const CREATE_PATH = new RegExp(`^/v1/models/${MODEL_PATH.replace(/\//g, '\\/')}/runs$`);

/** Runflow's routes, in order: the first pattern that matches method and path answers. */
const RUNFLOW_ROUTES: Route<ApiHandler>[] = [
  { method: 'POST', pattern: CREATE_PATH, handler: (sim, { body }) => create(sim, body.toString('utf8')) },
  { method: 'GET', pattern: /^\/v1\/runs$/, handler: (sim, { url }) => list(sim, url) },
  { method: 'GET', pattern: /^\/v1\/runs\/statuses$/, handler: () => ({ status: 200, body: { items: [...RUNFLOW_STATUSES] } }) },
  { method: 'GET', pattern: /^\/v1\/runs\/([^/]+)$/, handler: (sim, { match }) => readRun(sim, idOf(match)) },
  { method: 'POST', pattern: /^\/v1\/asset-uploads$/, handler: (sim, { body }) => declareAsset(sim, body.toString('utf8')) },
  { method: 'POST', pattern: /^\/v1\/asset-uploads\/([^/]+)\/confirmations$/, handler: (sim, { match }) => confirmAsset(sim, idOf(match)) },
  { method: 'GET', pattern: /^\/v1\/assets\/([^/]+)$/, handler: (sim, { match }) => readAsset(sim, idOf(match)) },
  { method: 'GET', pattern: /^\/v1\/billing\/balance$/, handler: (sim) => readBalance(sim) },
];

/** Runflow's runs API: `Authorization: Bearer <key>`; liveness needs no key, as health checks go. */
export const RUNFLOW_API: ApiProtocol = {
  name: 'runflow',
  keyPattern: /^Bearer\s+(\S+)$/i,
  isCreate: (method, pathname) => method === 'POST' && /^\/v1\/models\/.+\/runs$/.test(pathname),
  openRoutes: [
    { method: 'GET', pattern: /^\/v1\/health$/, handler: () => ({ status: 200, body: { status: 'ok' } }) },
    { method: 'GET', pattern: /^\/v1\/readiness$/, handler: () => ({ status: 200, body: { status: 'ready' } }) },
  ],
  routes: RUNFLOW_ROUTES,
  noRoute: (_sim, { method, url }) => envelope(404, 'NOT_FOUND', `No route for ${method} ${url.pathname}`),
};
