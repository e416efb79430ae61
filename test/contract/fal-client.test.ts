import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { ApiError, ValidationError, createFalClient, type QueueStatus } from '@fal-ai/client';
import { MODEL_PATH } from '../../src/model/kling-v3.js';
import type { SimulatorOptionsInput } from '../../src/simulator/options.js';
import { FAL_LOCKED_DETAIL } from '../../src/simulator/fal-api.js';
import { noisePng, startSimulator } from '../helpers.js';

/**
 * fal's official JavaScript client drives every fal route it has against the built-in simulator:
 * if the simulator drifts from what the real client sends and reads, these fail.
 */

const ENDPOINT = 'fal-ai/kling-video/v3/pro/image-to-video';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Long enough that a run is certainly still queued or in progress when a test looks; released by a cancel. */
const HELD = { latency_ms: 60_000, concurrency: 1 } satisfies SimulatorOptionsInput;
const FAST = { latency_ms: 30 } satisfies SimulatorOptionsInput;

const input = { start_image_url: 'https://images.example.com/a.jpg', prompt: 'a slow pan over the harbour', duration: '5' as const, generate_audio: false };

/** A simulator, and the official client pointed at it; `urls` records every URL the client asked for (after the rewrite). */
async function falAgainst(t: TestContext, options: SimulatorOptionsInput) {
  const simulator = await startSimulator(t, options);
  const urls: string[] = [];
  const fal = createFalClient({
    credentials: 'fal-contract-key',
    // The client only knows fal's hosts: the queue and the REST API (storage) go to the simulator on loopback.
    requestMiddleware: (request) => {
      const url = request.url.replace(/^https:\/\/(queue\.fal\.run|rest\.fal\.ai)/, simulator.url);
      urls.push(url);
      return Promise.resolve({ ...request, url });
    },
  });
  return { simulator, fal, urls };
}

/** Polls the status (a few requests at most: the simulator dispatches on the next tick) until the request has a slot. */
async function untilInProgress(fal: ReturnType<typeof createFalClient>, requestId: string): Promise<QueueStatus> {
  for (let i = 0; i < 100; i++) {
    const status = await fal.queue.status(ENDPOINT, { requestId, logs: true });
    if (status.status !== 'IN_QUEUE') return status;
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.fail(`request ${requestId} never left IN_QUEUE`);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected the call to throw');
}

function videoUrl(data: unknown): string {
  return (data as { video: { url: string } }).video.url;
}

test('submit: request_id is a UUID and the simulator received the input exactly as sent', async (t) => {
  const { simulator, fal } = await falAgainst(t, HELD);
  const { request_id } = await fal.queue.submit(ENDPOINT, { input });
  assert.match(request_id, UUID);
  assert.equal(simulator.created.length, 1);
  assert.equal(simulator.created[0]?.id, request_id);
  assert.deepEqual(simulator.created[0]?.input, input);
  simulator.cancel(request_id);
});

test('status with logs: IN_QUEUE with a queue_position behind a held run, IN_PROGRESS with logs[]', async (t) => {
  const { simulator, fal, urls } = await falAgainst(t, HELD);
  const first = await fal.queue.submit(ENDPOINT, { input });
  const second = await fal.queue.submit(ENDPOINT, { input: { ...input, prompt: 'the second one waits' } });

  const running = await untilInProgress(fal, first.request_id);
  assert.equal(running.status, 'IN_PROGRESS');
  assert.ok(Array.isArray(running.logs), 'IN_PROGRESS with ?logs=1 has a logs array');
  assert.ok(
    running.logs.some((l) => l.message === 'Request queued'),
    JSON.stringify(running.logs),
  );
  for (const line of running.logs) assert.equal(typeof line.timestamp, 'string');

  // Concurrency 1 and a 60 s run ahead of it: the second request is certainly waiting, first in line.
  const waiting = await fal.queue.status(ENDPOINT, { requestId: second.request_id, logs: true });
  assert.equal(waiting.status, 'IN_QUEUE');
  assert.ok(waiting.status === 'IN_QUEUE' && waiting.queue_position === 0, JSON.stringify(waiting));
  assert.ok(
    urls.some((u) => u.endsWith(`/fal-ai/kling-video/requests/${second.request_id}/status?logs=1`)),
    urls.join('\n'),
  );

  await fal.queue.cancel(ENDPOINT, { requestId: second.request_id });
  await fal.queue.cancel(ENDPOINT, { requestId: first.request_id });
  assert.equal(simulator.run(first.request_id)?.status, 'canceled');
  assert.equal(simulator.run(second.request_id)?.status, 'canceled');
  assert.deepEqual(simulator.billed, []);
});

test('subscribe, polling mode: the video is served by the simulator, requestId matches, COMPLETED was seen', async (t) => {
  const { simulator, fal, urls } = await falAgainst(t, FAST);
  const updates: QueueStatus[] = [];
  let enqueued = '';
  const done = await fal.subscribe(ENDPOINT, {
    input,
    mode: 'polling',
    pollInterval: 10,
    logs: true,
    onEnqueue: (id) => (enqueued = id),
    onQueueUpdate: (u) => updates.push(u),
  });
  assert.match(videoUrl(done.data), new RegExp(`^${simulator.url}/__simulator/files/[^/?]+\\.mp4\\?`));
  assert.equal(done.requestId, enqueued);
  assert.equal(updates.at(-1)?.status, 'COMPLETED');
  assert.ok(
    urls.some((u) => u.endsWith('/status?logs=1')),
    'polled the status route',
  );
  assert.ok(!urls.some((u) => u.includes('/status/stream')), 'polling mode does not open the stream');
  assert.equal(simulator.billed.length, 1);
  assert.equal(simulator.billed[0]?.id, done.requestId);
  // The video URL is a real file.
  const video = await fetch(videoUrl(done.data));
  assert.equal(video.status, 200);
  assert.equal(video.headers.get('content-type'), 'video/mp4');
  assert.ok((await video.arrayBuffer()).byteLength > 0);
});

test('subscribe, streaming mode: status events come through /status/stream, ending COMPLETED, then the result', async (t) => {
  const { simulator, fal, urls } = await falAgainst(t, FAST);
  const updates: QueueStatus[] = [];
  let enqueued = '';
  const done = await fal.subscribe(ENDPOINT, {
    input,
    mode: 'streaming',
    logs: true,
    onEnqueue: (id) => (enqueued = id),
    onQueueUpdate: (u) => updates.push(u),
  });
  assert.match(videoUrl(done.data), new RegExp(`^${simulator.url}/__simulator/files/[^/?]+\\.mp4\\?`));
  assert.equal(done.requestId, enqueued);
  // In streaming mode every update comes from a server-sent event: no status polling at all.
  assert.ok(updates.length >= 1);
  assert.equal(updates.at(-1)?.status, 'COMPLETED');
  assert.ok(
    urls.some((u) => u.endsWith(`/fal-ai/kling-video/requests/${enqueued}/status/stream?logs=1`)),
    urls.join('\n'),
  );
  assert.ok(!urls.some((u) => u.includes('/status?')), 'streaming mode does not poll');
});

test('streamStatus: events until the server closes the stream, the last COMPLETED', async (t) => {
  const { simulator, fal } = await falAgainst(t, HELD);
  const { request_id } = await fal.queue.submit(ENDPOINT, { input });
  const stream = await fal.queue.streamStatus(ENDPOINT, { requestId: request_id, logs: true });
  const events: QueueStatus[] = [];
  stream.on('data', (event: QueueStatus) => {
    events.push(event);
    // The run is held for a minute: release it once the stream has shown it unfinished.
    if (event.status !== 'COMPLETED') simulator.cancel(request_id);
  });
  const last = await stream.done();
  assert.ok(events.length >= 2, JSON.stringify(events));
  assert.ok(['IN_QUEUE', 'IN_PROGRESS'].includes(events[0]!.status), events[0]!.status);
  assert.equal(events.at(-1)?.status, 'COMPLETED');
  assert.deepEqual(last, events.at(-1));
  assert.equal(events.filter((e) => e.status === 'COMPLETED').length, 1, 'nothing after COMPLETED');
});

test('result of an input the model could not use: ValidationError with the detail naming start_image_url', async (t) => {
  const { simulator, fal } = await falAgainst(t, FAST);
  // The queue accepts first and validates later: the submit succeeds, the request ends COMPLETED.
  const { request_id } = await fal.queue.submit(ENDPOINT, { input: { ...input, start_image_url: 'https://cdn.example.invalid/x.jpg' } });
  assert.equal((await fal.queue.status(ENDPOINT, { requestId: request_id })).status, 'COMPLETED');
  const error = await rejection(fal.queue.result(ENDPOINT, { requestId: request_id }));
  assert.ok(error instanceof ValidationError, String(error));
  assert.equal(error.status, 422);
  assert.equal(error.requestId, request_id);
  const named = error.getFieldErrors('start_image_url');
  assert.equal(named.length, 1, JSON.stringify(error.fieldErrors));
  assert.deepEqual(named[0]?.loc, ['body', 'start_image_url']);
  assert.match(named[0]?.msg ?? '', /could not be downloaded/);
  assert.deepEqual(error.fieldErrors, (error.body as { detail: unknown }).detail);
  assert.deepEqual(simulator.billed, []);
});

test('cancel: a held request ends canceled and unbilled; cancelling a completed request is a 400 ApiError', async (t) => {
  const held = await falAgainst(t, HELD);
  const { request_id } = await held.fal.queue.submit(ENDPOINT, { input });
  // Typed Promise<void>: read as unknown, to check it really resolves to nothing.
  assert.equal(await (held.fal.queue.cancel(ENDPOINT, { requestId: request_id }) as Promise<unknown>), undefined);
  assert.equal(held.simulator.run(request_id)?.status, 'canceled');
  assert.ok(!held.simulator.billed.some((e) => e.id === request_id));
  assert.deepEqual(held.simulator.billed, []);
  assert.equal((await held.fal.queue.status(ENDPOINT, { requestId: request_id })).status, 'COMPLETED');
  const cancelled = await rejection(held.fal.queue.result(ENDPOINT, { requestId: request_id }));
  assert.ok(cancelled instanceof ApiError && !(cancelled instanceof ValidationError), String(cancelled));
  assert.equal(cancelled.status, 400);

  const fast = await falAgainst(t, FAST);
  const done = await fast.fal.subscribe(ENDPOINT, { input, pollInterval: 10 });
  const error = await rejection(fast.fal.queue.cancel(ENDPOINT, { requestId: done.requestId }));
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 400);
  assert.equal(fast.simulator.run(done.requestId)?.status, 'succeeded');
  assert.equal(fast.simulator.billed.length, 1);
});

test('storage.upload of a real PNG: a file_url the model reads, through initiate and the presigned PUT', async (t) => {
  const { simulator, fal, urls } = await falAgainst(t, FAST);
  const png = noisePng(400, 300);
  const fileUrl = await fal.storage.upload(new Blob([png], { type: 'image/png' }));
  // The PUT reached the simulator's storage without an Authorization header (it refuses one), so one upload counted.
  assert.equal(simulator.stats.uploads, 1);
  assert.ok(
    urls.some((u) => u === `${simulator.url}/storage/upload/initiate?storage_type=fal-cdn-v3`),
    urls.join('\n'),
  );
  assert.ok(fileUrl.startsWith(`${simulator.url}/`), fileUrl);
  const served = await fetch(fileUrl);
  assert.equal(served.status, 200);
  assert.equal(served.headers.get('content-type'), 'image/png');
  assert.deepEqual(Buffer.from(await served.arrayBuffer()), png);

  const done = await fal.subscribe(ENDPOINT, { input: { ...input, start_image_url: fileUrl }, pollInterval: 10 });
  assert.match(videoUrl(done.data), /\/__simulator\/files\/.+\.mp4/);
  const run = simulator.run(done.requestId);
  assert.equal(run?.status, 'succeeded');
  assert.equal(run?.aspect, 'landscape', 'the model read the 400x300 bytes from storage');
  assert.equal(simulator.created[0]?.input?.start_image_url, fileUrl);
  assert.equal(simulator.stats.uploads, 1);
});

test("out of balance: the submit is a 403 ApiError whose body is only fal's locked-user detail", async (t) => {
  const { simulator, fal } = await falAgainst(t, { ...FAST, credit_usd: 0 });
  const error = await rejection(fal.queue.submit(ENDPOINT, { input }));
  assert.ok(error instanceof ApiError && !(error instanceof ValidationError), String(error));
  assert.equal(error.status, 403);
  assert.deepEqual(error.body, { detail: 'User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.' });
  assert.equal(FAL_LOCKED_DETAIL, (error.body as { detail: string }).detail);
  assert.equal(simulator.created.length, 0);
  assert.equal(simulator.stats.creates, 1, 'one submit, not retried');
});

test('Runflow runs and fal requests are kept apart: each id is unknown to the other protocol', async (t) => {
  const { simulator, fal } = await falAgainst(t, HELD);
  const { request_id } = await fal.queue.submit(ENDPOINT, { input });
  const asRunflow = await fetch(`${simulator.url}/v1/runs/${request_id}`, { headers: { Authorization: 'Bearer x' } });
  assert.equal(asRunflow.status, 404);
  assert.equal(((await asRunflow.json()) as { code: string }).code, 'RUN_NOT_FOUND');

  const created = await fetch(`${simulator.url}/v1/models/${MODEL_PATH}/runs`, {
    method: 'POST',
    headers: { Authorization: 'Bearer x', 'content-type': 'application/json' },
    body: JSON.stringify({ input, client_ref: 'contract-apart' }),
  });
  assert.equal(created.status, 201);
  const runflowId = ((await created.json()) as { id: string }).id;
  assert.ok(simulator.run(runflowId, 'runflow'));
  const error = await rejection(fal.queue.status(ENDPOINT, { requestId: runflowId }));
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.status, 404);
  simulator.cancel(request_id);
  simulator.cancel(runflowId);
});
