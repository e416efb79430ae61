import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { ApiHandler, ApiProtocol, SimulatorContext } from './context.js';
import { errorReply } from './http.js';
import type { ApiCall, ApiRequest, Reply, Route, SimRun } from './types.js';

/** fal's paths: the model's submit path, the model family's request paths, and storage. */
const SUBMIT_PATH = /^\/fal-ai\/kling-video\/v3\/pro\/image-to-video\/?$/;
const REQUEST_PATH = /^\/fal-ai\/kling-video\/requests\/([^/]+)(\/status|\/status\/stream|\/cancel)?$/;
const STORAGE_INITIATE = /^\/storage\/upload\/initiate$/;
/** The body fal sends when the account's balance is exhausted: only `detail`, as reported (PROVIDERS.md). */
export const FAL_LOCKED_DETAIL = 'User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.';
/** fal keeps a result 1 hour, or 6 minutes when it is 10 KB or more. */
const RESULT_TTL_MS = 60 * 60_000;
const LARGE_RESULT_TTL_MS = 6 * 60_000;
const LARGE_RESULT_BYTES = 10 * 1024;

export function isFalPath(pathname: string): boolean {
  return pathname.startsWith('/fal-ai/') || pathname.startsWith('/storage/');
}

function detail(status: number, message: string, headers: Record<string, string> = {}): Reply {
  return { status, body: { detail: message }, headers };
}

/** The addresses fal answers a submit with: shorter than the submit path, shared by the model family, on the host the client reached. */
function urlsOf(origin: string, id: string) {
  const base = `${origin}/fal-ai/kling-video/requests/${id}`;
  return { request_id: id, response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
}

/** `POST /fal-ai/kling-video/v3/pro/image-to-video`: the body is the model input; the queue accepts first and validates later. */
function submit(sim: SimulatorContext, origin: string, text: string): Reply {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch {
    return detail(400, 'Body is not valid JSON');
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return { status: 422, body: { detail: [{ loc: ['body'], msg: 'Input should be an object', type: 'model_type' }] } };
  const admitted = sim.runs.admit(input as Record<string, unknown>, { protocol: 'fal' }, true);
  if ('rejected' in admitted)
    return admitted.rejected.status === 402 ? detail(403, FAL_LOCKED_DETAIL) : detail(admitted.rejected.status, admitted.rejected.message);
  return { status: 200, body: { status: 'IN_QUEUE', ...urlsOf(origin, admitted.run.id), queue_position: sim.runs.queuePosition(admitted.run) } };
}

/** A request's status: 202 until it is done, then 200; a failed request ends COMPLETED too (the error is in the result). */
function statusOf(sim: SimulatorContext, origin: string, run: SimRun, withLogs: boolean): Reply {
  const urls = urlsOf(origin, run.id);
  const logs = withLogs ? { logs: run.logs } : {};
  if (run.status === 'queued') return { status: 202, body: { status: 'IN_QUEUE', queue_position: sim.runs.queuePosition(run), ...urls, ...logs } };
  if (run.status === 'dispatching' || run.status === 'running') return { status: 202, body: { status: 'IN_PROGRESS', ...urls, ...logs } };
  const inference = run.startedAt !== undefined && run.completedAt !== undefined ? (run.completedAt - run.startedAt) / 1000 : null;
  return { status: 200, body: { status: 'COMPLETED', ...urls, ...logs, metrics: { inference_time: inference } } };
}

/** The model's answer for a done request: the video, or its error; gone once fal's retention has passed. */
function result(sim: SimulatorContext, run: SimRun): Reply {
  const headers = { 'x-fal-request-id': run.id };
  if (run.status === 'queued' || run.status === 'dispatching' || run.status === 'running') return detail(400, 'Request is still in progress', headers);
  let reply: Reply;
  if (run.status === 'succeeded') {
    const clip = sim.files.clipOf(run);
    reply = {
      status: 200,
      body: { video: { url: sim.files.videoUrl(run), content_type: 'video/mp4', file_name: `${run.id}.mp4`, file_size: clip.bytes?.length ?? null } },
      headers,
    };
  } else if (run.errors) {
    reply = { status: 422, body: { detail: run.errors.map((e) => ({ loc: ['body', ...e.field.split('.')], msg: e.message, type: 'value_error' })) }, headers };
  } else if (run.status === 'canceled') {
    reply = detail(400, 'Request was cancelled', headers);
  } else {
    // The model's own refusal, in the one error shape documented for a result: a 422 with `detail` entries.
    reply = {
      status: 422,
      body: { detail: [{ loc: ['body'], msg: run.failure?.message ?? 'The model could not generate a video for this input', type: 'generation_failed' }] },
      headers,
    };
  }
  const size = Buffer.byteLength(JSON.stringify(reply.body));
  const keptMs = (size >= LARGE_RESULT_BYTES ? LARGE_RESULT_TTL_MS : RESULT_TTL_MS) * sim.options.result_ttl_scale;
  if (run.completedAt !== undefined && Date.now() - run.completedAt > keptMs) return detail(404, `Request ${run.id} not found`);
  return reply;
}

/** `GET …/status/stream`: the status as server-sent events, one per change, closed after COMPLETED. */
function stream(sim: SimulatorContext, origin: string, run: SimRun, withLogs: boolean, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let last = '';
  const send = () => {
    const { body } = statusOf(sim, origin, run, withLogs);
    const text = JSON.stringify(body);
    if (text !== last) {
      last = text;
      res.write(`data: ${text}\n\n`);
    }
    if ((body as { status: string }).status === 'COMPLETED') {
      stop();
      res.end();
    }
  };
  const stop = sim.runs.watch(send);
  res.on('close', stop);
  send();
}

/** `POST /storage/upload/initiate?storage_type=fal-cdn-v3 {content_type, file_name}` → `{upload_url, file_url}`. */
function initiateUpload(sim: SimulatorContext, url: URL, text: string): Reply {
  if (url.searchParams.get('storage_type') !== 'fal-cdn-v3') return detail(400, 'storage_type must be fal-cdn-v3');
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return detail(400, 'Body is not valid JSON');
  }
  const contentType = typeof body.content_type === 'string' ? body.content_type : '';
  const fileName = typeof body.file_name === 'string' ? body.file_name : '';
  if (!contentType || !fileName)
    return { status: 422, body: { detail: [{ loc: ['body', contentType ? 'file_name' : 'content_type'], msg: 'Field required', type: 'missing' }] } };
  const id = randomUUID();
  sim.files.assets.set(id, { protocol: 'fal', name: fileName, mime: contentType, createdAt: Date.now() });
  return { status: 200, body: { upload_url: sim.files.uploadUrl(id), file_url: sim.files.assetUrl(id) } };
}

/** A request route's handler, given the request it names; an unknown request (or another protocol's run) is fal's 404. */
function onRequest(handler: (sim: SimulatorContext, run: SimRun, call: ApiCall) => Reply | undefined): ApiHandler {
  return (sim, call) => {
    const run = sim.runs.get(decodeURIComponent(call.match[1] ?? ''), 'fal');
    return run ? handler(sim, run, call) : requestNotFound(call.url);
  };
}

function requestNotFound(url: URL): Reply {
  return errorReply('fal', 404, 'REQUEST_NOT_FOUND', `Request not found: ${url.pathname}`);
}

const withLogs = (url: URL): boolean => url.searchParams.get('logs') === '1';

/** fal's queue and storage routes, in order: the first pattern that matches method and path answers. */
const FAL_ROUTES: Route<ApiHandler>[] = [
  { method: 'POST', pattern: SUBMIT_PATH, handler: (sim, { origin, body }) => submit(sim, origin, body.toString('utf8')) },
  { method: 'POST', pattern: STORAGE_INITIATE, handler: (sim, { url, body }) => initiateUpload(sim, url, body.toString('utf8')) },
  {
    method: 'GET',
    pattern: /^\/fal-ai\/kling-video\/requests\/([^/]+)\/status$/,
    handler: onRequest((sim, run, { origin, url }) => {
      sim.stats.polls++;
      return statusOf(sim, origin, run, withLogs(url));
    }),
  },
  {
    method: 'GET',
    pattern: /^\/fal-ai\/kling-video\/requests\/([^/]+)\/status\/stream$/,
    handler: onRequest((sim, run, { origin, url, res }) => {
      sim.stats.polls++;
      stream(sim, origin, run, withLogs(url), res);
      return undefined;
    }),
  },
  {
    method: 'PUT',
    pattern: /^\/fal-ai\/kling-video\/requests\/([^/]+)\/cancel$/,
    handler: onRequest((sim, run) =>
      sim.runs.cancel(run.id) ? { status: 202, body: { status: 'CANCELLATION_REQUESTED' } } : { status: 400, body: { status: 'ALREADY_COMPLETED' } },
    ),
  },
  {
    method: 'GET',
    pattern: /^\/fal-ai\/kling-video\/requests\/([^/]+)$/,
    handler: onRequest((sim, run) => {
      sim.stats.polls++;
      return result(sim, run);
    }),
  },
];

/** No route matched: a known path with the wrong method is a 405, anything else fal's 404. */
function noFalRoute(sim: SimulatorContext, { method, url }: ApiRequest): Reply {
  if (SUBMIT_PATH.test(url.pathname) || STORAGE_INITIATE.test(url.pathname)) return detail(405, 'Method not allowed');
  const m = REQUEST_PATH.exec(url.pathname);
  const run = m ? sim.runs.get(decodeURIComponent(m[1] ?? ''), 'fal') : undefined;
  if (!run) return requestNotFound(url);
  return detail(405, `${method} ${url.pathname} is not allowed`);
}

/** fal's queue (`Authorization: Key <key>`) and its storage, which the same key opens. */
export const FAL_API: ApiProtocol = {
  name: 'fal',
  keyPattern: /^Key\s+(\S+)$/i,
  isCreate: (method, pathname) => method === 'POST' && SUBMIT_PATH.test(pathname),
  openRoutes: [],
  routes: FAL_ROUTES,
  noRoute: noFalRoute,
};
