import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/infra/errors.js';
import { Mp4Inspector } from '../../src/infra/mp4.js';
import { falErrorText, lockedAccountMessage } from '../../src/providers/fal.js';
import { envelopeError, findVideoUrl, nextCursor, parseRun, RUNFLOW_CREATE_PATH } from '../../src/providers/runflow.js';
import { noisePng, startSimulator } from '../helpers.js';
import {
  falAdminLocked,
  falInfrastructure,
  falLocked,
  falValidation,
  runflowCreateBody,
  runflowErrors,
  runflowListPages,
  runflowRuns,
  RUNFLOW_ASSET_FIELDS,
  RUNFLOW_RUN_FIELDS,
  RUNFLOW_STATUSES,
} from './examples.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const auth = { authorization: 'Bearer contract-key' };

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = auth,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(new URL(path, base), {
    method,
    headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function assertEnvelope(body: Record<string, unknown>, code: string): void {
  assert.deepEqual(Object.keys(body).sort(), ['code', 'errors', 'message']);
  assert.equal(body.code, code);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.errors === null || Array.isArray(body.errors));
}

test('simulator, Runflow: a create answers 201 with a queued run whose id is a UUID and which carries every documented field and the client_ref', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 60_000 });
  const created = await call(simulator.url, 'POST', RUNFLOW_CREATE_PATH, runflowCreateBody);
  assert.equal(created.status, 201);
  assert.match(String(created.body.id), UUID);
  assert.equal(created.body.status_code, 'queued');
  assert.equal(created.body.client_ref, runflowCreateBody.client_ref);
  assert.deepEqual(created.body.metadata, runflowCreateBody.metadata);
  for (const field of RUNFLOW_RUN_FIELDS) assert.ok(field in created.body, `run object has ${field}`);
  const undocumented = await call(simulator.url, 'POST', RUNFLOW_CREATE_PATH, { ...runflowCreateBody, webhook: 'https://example.com' });
  assert.equal(undocumented.status, 422, 'an undocumented field is refused, not ignored');
  assertEnvelope(undocumented.body, 'VALIDATION_ERROR');
  assertEnvelope((await call(simulator.url, 'GET', `/v1/runs/${String(created.body.id)}`, undefined, {})).body, 'UNAUTHORIZED');
  assertEnvelope((await call(simulator.url, 'GET', '/v1/runs/00000000-0000-7000-8000-000000000000')).body, 'RUN_NOT_FOUND');
  simulator.cancel(String(created.body.id));
});

test('simulator, Runflow: runs go queued → dispatching/running → succeeded with normalised outputs[] and a decimal cost; canceled runs in either spelling cost 0', async (t) => {
  const held = await startSimulator(t, { latency_ms: 60_000, concurrency: 1 });
  const first = await call(held.url, 'POST', RUNFLOW_CREATE_PATH, runflowCreateBody);
  const second = await call(held.url, 'POST', RUNFLOW_CREATE_PATH, { ...runflowCreateBody, client_ref: 'second' });
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(['dispatching', 'running'].includes(String((await call(held.url, 'GET', `/v1/runs/${String(first.body.id)}`)).body.status_code)));
  assert.equal((await call(held.url, 'GET', `/v1/runs/${String(second.body.id)}`)).body.status_code, 'queued', 'over the concurrency cap a run waits queued');
  held.cancel(String(first.body.id));
  const canceled = (await call(held.url, 'GET', `/v1/runs/${String(first.body.id)}`)).body;
  assert.ok(['canceled', 'cancelled'].includes(String(canceled.status_code)));
  assert.equal(canceled.cost, '0.000000');
  held.cancel(String(second.body.id));
  const statuses = (await call(held.url, 'GET', '/v1/runs/statuses')).body.items as string[];
  for (const status of ['queued', 'dispatching', 'running', 'succeeded', 'failed', 'canceled']) assert.ok(statuses.includes(status), status);

  const quick = await startSimulator(t, { latency_ms: 20 });
  const run = await call(quick.url, 'POST', RUNFLOW_CREATE_PATH, runflowCreateBody);
  let body: Record<string, unknown> = run.body;
  while (body.status_code !== 'succeeded') body = (await call(quick.url, 'GET', `/v1/runs/${String(run.body.id)}`)).body;
  const outputs = (body.output as { outputs: { type: string; url: string; content_type: string }[] }).outputs;
  assert.equal(outputs.length, 1);
  assert.equal(outputs[0]?.type, 'video');
  assert.equal(outputs[0]?.content_type, 'video/mp4');
  assert.match(String(body.cost), /^\d+\.\d{6}$/);
  assert.equal(findVideoUrl(body.output), outputs[0]?.url, "our client reads the simulator's answer");
  assert.equal((await fetch(outputs[0].url)).status, 200);

  const canceler = await startSimulator(t, { latency_ms: 5, cancel_rate: 1 });
  const doomed = await call(canceler.url, 'POST', RUNFLOW_CREATE_PATH, runflowCreateBody);
  let end: Record<string, unknown> = doomed.body;
  while (!['canceled', 'cancelled'].includes(String(end.status_code))) end = (await call(canceler.url, 'GET', `/v1/runs/${String(doomed.body.id)}`)).body;
  assert.equal(parseRun(end).state, 'canceled');
  assert.deepEqual(canceler.billed, []);
});

test('simulator, Runflow: the run list takes only documented forms (q=client_ref.EQ / status_code.EQ, limit ≤ 500, sort_by, pq) and answers {items, next_pq}', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 60_000, concurrency: 1 });
  const ids: string[] = [];
  for (const ref of ['a', 'b', 'c'])
    ids.push(String((await call(simulator.url, 'POST', RUNFLOW_CREATE_PATH, { ...runflowCreateBody, client_ref: ref })).body.id));
  const one = await call(simulator.url, 'GET', `/v1/runs?${new URLSearchParams({ q: "client_ref.EQ:'b'", limit: '10' })}`);
  assert.equal(one.status, 200);
  assert.deepEqual(
    (one.body.items as { id: string }[]).map((r) => r.id),
    [ids[1]],
  );
  assert.equal('next_pq' in one.body, false, 'no cursor on the last page');

  const seen: string[] = [];
  let query = new URLSearchParams({ limit: '1' });
  for (let page = 0; page < 5; page++) {
    const answer = await call(simulator.url, 'GET', `/v1/runs?${query}`);
    seen.push(...(answer.body.items as { id: string }[]).map((r) => r.id));
    if (typeof answer.body.next_pq !== 'string') break;
    query = new URLSearchParams({ limit: '1', pq: answer.body.next_pq });
  }
  assert.deepEqual(seen, [...ids].reverse(), 'every run, newest first, one page each');

  for (const bad of [
    { q: 'b' },
    { q: "client_ref.LIKE:'b'" },
    { q: "client_ref.EQ:'b'", next_pq: '1' },
    { limit: '501' },
    { pq: 'not-a-cursor' },
    { sort_by: 'cost:desc' },
  ]) {
    const refused = await call(simulator.url, 'GET', `/v1/runs?${new URLSearchParams(bad)}`);
    assert.ok(refused.status === 400 || refused.status === 422, `${JSON.stringify(bad)} answered ${refused.status}`);
    assert.equal(typeof refused.body.code, 'string');
  }
  const queued = await call(simulator.url, 'GET', `/v1/runs?${new URLSearchParams({ q: "status_code.EQ:'queued'" })}`);
  assert.deepEqual(
    (queued.body.items as { id: string }[]).map((r) => r.id),
    [ids[2], ids[1]],
    'over the cap of 1, two wait queued',
  );
  for (const id of ids) simulator.cancel(id);
});

test('simulator, Runflow: sparse pages and a lagging list, on knobs, for testing clients', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 60_000, list_empty_pages: 2, list_delay_ms: 60_000 });
  const run = await call(simulator.url, 'POST', RUNFLOW_CREATE_PATH, { ...runflowCreateBody, client_ref: 'lagging' });
  let query = new URLSearchParams({ q: "client_ref.EQ:'lagging'" });
  const pages: number[] = [];
  for (let page = 0; page < 5; page++) {
    const answer = await call(simulator.url, 'GET', `/v1/runs?${query}`);
    pages.push((answer.body.items as unknown[]).length);
    if (typeof answer.body.next_pq !== 'string') break;
    query = new URLSearchParams({ q: "client_ref.EQ:'lagging'", pq: answer.body.next_pq });
  }
  assert.deepEqual(pages, [0, 0, 0], 'two empty pages with cursors, then the last page: the new run is not listed yet');
  simulator.cancel(String(run.body.id));
});

test('simulator, Runflow: assets are declared (201), PUT without auth, confirmed once (201 with the full asset; a second is refused), and re-read with a fresh URL', async (t) => {
  const simulator = await startSimulator(t);
  const png = noisePng(400, 300);
  const declared = await call(simulator.url, 'POST', '/v1/asset-uploads', { filename: 'a.png', mime_type: 'image/png', size_bytes: png.length });
  assert.equal(declared.status, 201);
  const { asset_id: id, upload_url: uploadUrl } = declared.body as { asset_id: string; upload_url: string };
  assert.equal(
    (await fetch(uploadUrl, { method: 'PUT', headers: { 'content-type': 'image/png', ...auth }, body: png })).status,
    400,
    'no Authorization on presigned storage',
  );
  assert.equal((await fetch(uploadUrl, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status, 200);
  const confirmed = await call(simulator.url, 'POST', `/v1/asset-uploads/${id}/confirmations`, {});
  assert.equal(confirmed.status, 201);
  for (const field of RUNFLOW_ASSET_FIELDS) assert.ok(field in confirmed.body, `asset has ${field}`);
  assert.equal(confirmed.body.id, id);
  assert.equal((await call(simulator.url, 'POST', `/v1/asset-uploads/${id}/confirmations`, {})).status, 409, 'the confirmation creates the record: once');
  const read = await call(simulator.url, 'GET', `/v1/assets/${id}`);
  assert.equal(read.status, 200);
  const bytes = Buffer.from(await (await fetch(String(read.body.url))).arrayBuffer());
  assert.deepEqual(bytes, png);
  assert.equal((await call(simulator.url, 'GET', '/v1/assets/00000000-0000-4000-8000-000000000000')).status, 404);
  assert.equal((await fetch(new URL('/v1/health', simulator.url))).status, 200, 'health needs no key');
});

test('our Runflow client reads every documented run object: statuses, typed and untyped outputs, a paid run without video, failures', () => {
  for (const status of RUNFLOW_STATUSES) assert.doesNotThrow(() => parseRun({ id: 'x', status_code: status }), status);
  assert.equal(parseRun(runflowRuns.queued).state, 'queued');
  assert.equal(parseRun(runflowRuns.dispatching).state, 'queued');
  assert.equal(parseRun(runflowRuns.running).startedAtMs, Date.parse('2026-11-24T01:00:00.000Z'));
  const done = parseRun(runflowRuns.succeeded);
  assert.equal(done.videoUrl, runflowRuns.succeeded.output.outputs[0]!.url);
  assert.equal(done.costMicros, 700_000);
  assert.equal(done.runMs, 95_000);
  assert.equal(parseRun(runflowRuns.succeededUntyped).videoUrl, 'https://cdn.example.com/clip?sig=1');
  const paidNoVideo = parseRun(runflowRuns.succeededWithoutVideo);
  assert.equal(paidNoVideo.state, 'succeeded');
  assert.equal(paidNoVideo.videoUrl, undefined);
  assert.deepEqual(paidNoVideo.rawOutput, runflowRuns.succeededWithoutVideo.output, 'kept for the log');
  assert.deepEqual(parseRun(runflowRuns.failed).failure, { code: 'INPUT_VALIDATION_FAILED', message: 'start image could not be read' });
  assert.equal(parseRun(runflowRuns.failed).costMicros, 0);
  assert.equal(parseRun(runflowRuns.canceled).state, 'canceled');
  assert.equal(parseRun(runflowRuns.cancelled).state, 'canceled');
  assert.equal(parseRun(runflowRuns.partialSucceeded).videoUrl, 'https://cdn.example.com/p.mp4');
  assert.throws(
    () => parseRun({ id: 'x', status_code: 'paused' }),
    (e: unknown) => e instanceof ApiError && e.code === 'UNKNOWN_STATUS',
  );
});

test('our Runflow client reads both cursor spellings and every documented error envelope with the right consequence', () => {
  assert.equal(nextCursor(runflowListPages.withNextPq), 'cursor-2');
  assert.equal(nextCursor(runflowListPages.withNext), 'cursor-2');
  assert.equal(nextCursor({ items: [], next: '/v1/runs?q=x&pq=cursor-3' }), 'cursor-3', 'a next link carrying pq');
  assert.equal(nextCursor(runflowListPages.last), undefined);
  for (const example of runflowErrors) {
    const error = envelopeError(example.status, example.body, {}, 'GET /v1/runs', 1000);
    assert.equal(error.kind, example.kind, `${example.status}`);
    assert.equal(error.code, example.body.code);
    assert.match(error.message, new RegExp(example.body.message));
  }
  assert.match(envelopeError(422, runflowErrors[6]!.body, {}, 'POST', 0).message, /input\.duration: must be "3" to "15"/);
});

test('our fal client reads the documented fal answers: the locked-balance 403 is out of credit (top up), an admin lock says so, 422 details and infrastructure errors', () => {
  assert.match(lockedAccountMessage(falLocked.status, falLocked.body.detail) ?? '', /Exhausted balance.*top it up at fal\.ai\/dashboard\/billing/);
  assert.match(lockedAccountMessage(falAdminLocked.status, falAdminLocked.body.detail) ?? '', /Admin lock.*contact fal support/);
  assert.equal(lockedAccountMessage(401, 'User is locked'), undefined, '401 is the bad-key case');
  assert.equal(lockedAccountMessage(403, 'Forbidden'), undefined);
  assert.deepEqual(falErrorText(falValidation), { code: 'VALIDATION_ERROR', message: 'start_image_url: could not be downloaded', hasDetail: true });
  assert.equal(falErrorText(falInfrastructure).code, 'request_timeout');
});

test('simulator, fal: a result is kept an hour (scaled by a knob), then it is gone (404)', async (t) => {
  const key = { authorization: 'Key k' };
  const completed = async (simulator: Awaited<ReturnType<typeof startSimulator>>) => {
    const submit = await fetch(`${simulator.url}/fal-ai/kling-video/v3/pro/image-to-video`, {
      method: 'POST',
      headers: { ...key, 'content-type': 'application/json' },
      body: JSON.stringify(runflowCreateBody.input),
    });
    const { response_url: responseUrl, status_url: statusUrl } = (await submit.json()) as { response_url: string; status_url: string };
    while (((await (await fetch(statusUrl, { headers: key })).json()) as { status: string }).status !== 'COMPLETED');
    return responseUrl;
  };
  const kept = await startSimulator(t, { latency_ms: 5 });
  const result = await fetch(await completed(kept), { headers: key });
  assert.equal(result.status, 200, 'within the hour');
  await result.arrayBuffer();

  const short = await startSimulator(t, { latency_ms: 5, result_ttl_scale: 0.00001 }); // an hour becomes 36 ms
  const responseUrl = await completed(short);
  await new Promise((resolve) => setTimeout(resolve, 60));
  const late = await fetch(responseUrl, { headers: key });
  assert.equal(late.status, 404);
  assert.equal(typeof ((await late.json()) as { detail: unknown }).detail, 'string');
});

test('simulator: each video has the aspect ratio of its start image (landscape, portrait, square), as the real model does', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 5 });
  const shapes: [string, Buffer, 'landscape' | 'portrait' | 'square'][] = [
    ['wide', noisePng(480, 300), 'landscape'],
    ['tall', noisePng(300, 480), 'portrait'],
    ['even', noisePng(400, 400), 'square'],
  ];
  for (const [name, png, aspect] of shapes) {
    const created = await call(simulator.url, 'POST', RUNFLOW_CREATE_PATH, {
      input: { ...runflowCreateBody.input, start_image_url: `data:image/png;base64,${png.toString('base64')}` },
      client_ref: name,
    });
    let body = created.body;
    while (body.status_code !== 'succeeded') body = (await call(simulator.url, 'GET', `/v1/runs/${String(created.body.id)}`)).body;
    const inspector = new Mp4Inspector();
    inspector.push(new Uint8Array(await (await fetch(findVideoUrl(body.output)!)).arrayBuffer()));
    const facts = inspector.finish();
    assert.ok(!('problem' in facts), name);
    const measured = facts.width > facts.height * 1.2 ? 'landscape' : facts.height > facts.width * 1.2 ? 'portrait' : 'square';
    assert.equal(measured, aspect, `${name}: ${facts.width}x${facts.height}`);
  }
});
