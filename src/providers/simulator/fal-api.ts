import type { ServerResponse } from 'node:http';
import { FAL_REQUESTS_PATH } from '../fal.js';
import { clipName } from './clips.js';
import { replyError, sendJson, type SimRun, type Simulator } from './server.js';

/** The addresses fal answers a submit with: shorter than the submit path, shared by the model family. */
function urlsOf(sim: Simulator, id: string) {
  const base = `${sim.url}/${FAL_REQUESTS_PATH}/${id}`;
  return { request_id: id, status_url: `${base}/status`, response_url: base, cancel_url: `${base}/cancel` };
}

/** `POST /fal-ai/kling-video/v3/pro/image-to-video`: the body is the model input; the queue accepts first and validates later. */
export function falSubmit(sim: Simulator, text: string): { status: number; body: unknown } {
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch {
    return { status: 400, body: { detail: 'Body is not valid JSON' } };
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return { status: 422, body: { detail: [{ loc: ['body'], msg: 'Input should be an object', type: 'model_type' }] } };
  const admitted = sim.admit(input as Record<string, unknown>, null, 'fal', true);
  if ('rejected' in admitted) return { status: admitted.rejected.status === 402 ? 403 : admitted.rejected.status, body: { detail: admitted.rejected.message, error_type: 'exhausted_balance' } };
  const queued = [...sim.runsWaiting()].indexOf(admitted.run);
  return { status: 200, body: { ...urlsOf(sim, admitted.run.id), queue_position: Math.max(0, queued) } };
}

function statusBody(sim: Simulator, run: SimRun): { status: number; body: Record<string, unknown> } {
  const urls = urlsOf(sim, run.id);
  if (run.status === 'queued') return { status: 202, body: { status: 'IN_QUEUE', queue_position: Math.max(0, sim.runsWaiting().indexOf(run)), ...urls } };
  if (run.status === 'running') return { status: 202, body: { status: 'IN_PROGRESS', logs: null, ...urls } };
  // Failed requests end COMPLETED too: the error only shows in the result.
  const inference = run.startedAt !== undefined && run.completedAt !== undefined ? (run.completedAt - run.startedAt) / 1000 : null;
  return { status: 200, body: { status: 'COMPLETED', logs: null, metrics: { inference_time: inference }, ...urls } };
}

/** Status, result and cancel of fal's queue protocol. */
export function falRoute(sim: Simulator, method: string, url: URL, res: ServerResponse): void {
  const m = new RegExp(`^/${FAL_REQUESTS_PATH}/([^/]+)(/status|/cancel)?$`).exec(url.pathname);
  const run = m ? sim.run(decodeURIComponent(m[1] ?? '')) : undefined;
  if (!m || !run) return replyError(res, 'fal', 404, 'REQUEST_NOT_FOUND', `Request not found: ${url.pathname}`);
  const action = m[2];
  if (action === '/status' && method === 'GET') {
    sim.stats.polls++;
    const { status, body } = statusBody(sim, run);
    return sendJson(res, status, body);
  }
  if (action === '/cancel' && method === 'PUT') {
    if (sim.cancel(run.id)) return sendJson(res, 202, { status: 'CANCELLATION_REQUESTED' });
    return sendJson(res, 400, { status: 'ALREADY_COMPLETED' });
  }
  if (action === undefined && method === 'GET') {
    sim.stats.polls++;
    if (run.status === 'queued' || run.status === 'running') return replyError(res, 'fal', 400, 'REQUEST_IN_PROGRESS', 'Request is still in progress');
    if (run.status === 'failed') {
      if (run.errors) {
        const detail = run.errors.map((e) => ({ loc: ['body', ...e.field.split('.')], msg: e.message, type: 'value_error' }));
        return sendJson(res, 422, { detail }, { 'x-fal-request-id': run.id });
      }
      return replyError(res, 'fal', run.canceled ? 400 : 500, run.canceled ? 'REQUEST_CANCELED' : 'GENERATION_FAILED', run.failure?.message ?? 'failed', { 'x-fal-request-id': run.id });
    }
    const clip = sim.clips.get(clipName(run.seconds, run.audio));
    return sendJson(res, 200, { video: { url: sim.signedFileUrl(run), content_type: 'video/mp4', file_name: `${run.id}.mp4`, file_size: clip?.length ?? null } }, { 'x-fal-request-id': run.id });
  }
  return replyError(res, 'fal', 405, 'METHOD_NOT_ALLOWED', `${method} ${url.pathname}`);
}
