/** Reading Runflow's answers (run objects, run lists, error envelopes, balances) as pure functions. */
import { parseUsdToMicros } from '../money/cost.js';
import { ApiError, kindOfStatus } from '../infra/errors.js';
import { redactText } from '../infra/http.js';
import { isRecord, retryAfterOf, str, text } from './api.js';
import type { ListedRun, RunSnapshot, RunState } from './provider.js';

const STATES: Record<string, RunState> = {
  queued: 'queued',
  dispatching: 'queued',
  running: 'running',
  succeeded: 'succeeded',
  // Meant for batches; a single-output run in it is read by its outputs like a success.
  partial_succeeded: 'succeeded',
  failed: 'failed',
  canceled: 'canceled',
  cancelled: 'canceled',
};

/** The run-list filter Runflow's own templates use: an exact match on the create's client_ref. */
export function clientRefQuery(clientRef: string): string {
  return `client_ref.EQ:'${clientRef}'`;
}

const VIDEO_FILE = /\.(mp4|mov|m4v|webm|mkv)$/i;

/**
 * The video in Runflow's normalised output (`output.outputs[]`): the entry of type `video`, or, when
 * entries carry no type, the one whose content type or file name is a video. Nothing else is guessed at.
 */
export function findVideoUrl(output: unknown): string | undefined {
  if (!isRecord(output) || !Array.isArray(output.outputs)) return undefined;
  const entries = output.outputs.filter(isRecord).filter((e) => str(e.url));
  const typed = entries.find((e) => e.type === 'video');
  if (typed) return str(typed.url);
  const untyped = entries.find((e) => {
    if (e.type !== undefined && e.type !== null) return false;
    const mime = str(e.content_type) ?? str(e.mime_type) ?? '';
    const name = str(e.file_name) ?? str(e.name) ?? '';
    return mime.startsWith('video/') || VIDEO_FILE.test(name);
  });
  return untyped ? str(untyped.url) : undefined;
}

/** A run's `cost`: dollars as a number or a decimal string, in micro-dollars. */
function costMicrosOf(cost: unknown): number | undefined {
  if (typeof cost === 'number') return parseUsdToMicros(cost.toFixed(6));
  return str(cost) ? parseUsdToMicros(cost as string) : undefined;
}

/** How long the run took: Runflow's `duration_ms`, else its timestamps; and how long it waited to start. */
function addTiming(snapshot: RunSnapshot, body: Record<string, unknown>): void {
  const timeOf = (field: unknown) => (str(field) ? Date.parse(field as string) : Number.NaN);
  const startedAt = timeOf(body.started_at);
  if (Number.isFinite(startedAt)) snapshot.startedAtMs = startedAt;
  const queueMs = startedAt - timeOf(body.created_at);
  if (Number.isFinite(queueMs) && queueMs >= 0) snapshot.queueMs = queueMs;
  const completedAt = timeOf(body.completed_at);
  const runMs = typeof body.duration_ms === 'number' ? body.duration_ms : completedAt - startedAt;
  if (Number.isFinite(runMs) && runMs > 0) snapshot.runMs = runMs;
}

/** Reads a run object into a snapshot; an unknown status is an error, never "still running". */
export function parseRun(body: unknown): RunSnapshot {
  if (!isRecord(body) || !str(body.id)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered without a run object');
  const runId = body.id as string;
  const status = text(body.status_code).toLowerCase();
  const state = STATES[status];
  if (!state) throw new ApiError('row', 'UNKNOWN_STATUS', `run ${runId} has status "${status}", which clipmill does not know`);
  const snapshot: RunSnapshot = { runId, state };
  addTiming(snapshot, body);
  const cost = costMicrosOf(body.cost);
  if (cost !== undefined) snapshot.costMicros = cost;
  if (state === 'succeeded') {
    snapshot.rawOutput = body.output ?? null;
    const url = findVideoUrl(body.output);
    if (url) snapshot.videoUrl = url;
  }
  if (state === 'failed' || state === 'canceled') {
    const error = isRecord(body.error) ? body.error : {};
    snapshot.failure = {
      code: str(body.failure_code) ?? str(error.code) ?? state.toUpperCase(),
      // A provider's message may quote a presigned input URL: it reaches the journal and the report without its signature.
      message: redactText(str(body.failure_message) ?? str(error.message) ?? `the run ended as ${state}`),
    };
  }
  return snapshot;
}

/**
 * A list cursor: `next_pq` (opaque, taken as it is), or the sibling spelling `next`, which may be a link
 * carrying `pq`; a link without one cannot be followed, so the list cannot be read to its end.
 */
export function nextCursor(body: Record<string, unknown>): string | undefined {
  const nextPq = str(body.next_pq);
  if (nextPq !== undefined) return nextPq;
  const next = str(body.next);
  if (next === undefined || !/^(https?:\/\/|\/v1\/)/.test(next)) return next;
  const pq = new URL(next, 'http://cursor.invalid').searchParams.get('pq');
  if (!pq) throw new ApiError('row', 'LIST_CURSOR_UNREADABLE', "Runflow's run list gave a next link without a pq cursor: the list cannot be read to its end");
  return pq;
}

/** A run-list page: its `items` (a page without them is a transient oddity, not an empty list) and the next cursor. */
export function readListPage(body: unknown): { items: unknown[]; cursor: string | undefined } {
  if (!isRecord(body) || !Array.isArray(body.items)) throw new ApiError('transient', 'BAD_RESPONSE', 'Runflow answered the run list without `items`');
  return { items: body.items, cursor: nextCursor(body) };
}

/** Whether a listed run is the one created with `clientRef`: the list is filtered by it, so only a different client_ref rules a run out. */
export function listedFor(run: Record<string, unknown>, clientRef: string): boolean {
  if (typeof run.client_ref === 'string') return run.client_ref === clientRef;
  if (isRecord(run.metadata) && typeof run.metadata.clipmill_submit === 'string') return run.metadata.clipmill_submit === clientRef;
  return true;
}

/** A run-list entry as an audit reads it. */
export function listedRunOf(item: Record<string, unknown>): ListedRun {
  return {
    runId: item.id as string,
    clientRef: str(item.client_ref),
    status: text(item.status_code),
    costMicros: costMicrosOf(item.cost),
    createdAt: str(item.created_at),
  };
}

/** Turns Runflow's error envelope `{code, message, errors}` into one readable, classified error. */
export function envelopeError(
  status: number,
  body: unknown,
  headers: Record<string, string | string[] | undefined>,
  what: string,
  maxRetryAfterMs: number,
): ApiError {
  const envelope = isRecord(body) ? body : {};
  const code = str(envelope.code) ?? `HTTP_${status}`;
  let message = str(envelope.message) ?? (typeof body === 'string' && body.trim() ? body.trim().slice(0, 200) : `HTTP ${status}`);
  if (Array.isArray(envelope.errors) && envelope.errors.length > 0) {
    const details = envelope.errors.map((e) =>
      isRecord(e) ? [str(e.field) ?? str(e.loc) ?? '', str(e.message) ?? str(e.msg) ?? ''].filter(Boolean).join(': ') : String(e),
    );
    message += ` (${details.join('; ')})`;
  }
  const hint =
    status === 401 ? ' — check RUNFLOW_API_KEY' : status === 402 ? ' — top up the Runflow balance' : status === 403 ? ' — the key may not use this model' : '';
  const retryAfterMs = retryAfterOf(headers, maxRetryAfterMs);
  return new ApiError(kindOfStatus(status), code, `${what}: Runflow ${status} ${code}: ${redactText(message)}${hint}`, {
    status,
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/** A balance in whatever documented-looking field it comes: dollars as a number or a decimal string. */
export function balanceMicros(body: unknown): number | undefined {
  if (!isRecord(body)) return undefined;
  for (const value of [body.balance, body.available_balance, body.available, body.credits, body.amount]) {
    if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return Math.round(value * 1e6);
    if (typeof value === 'string') {
      const micros = parseUsdToMicros(value);
      if (micros !== undefined) return micros;
    }
  }
  return undefined;
}
