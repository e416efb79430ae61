import assert from 'node:assert/strict';
import { cp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { createFalClient } from '@fal-ai/client';
import type { Simulator } from '../src/simulator/server.js';
import { runManifests } from '../src/commands/run.js';
import { ROOT, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };

/** The example manifests without their voice_ids, which fal's schema for this model does not have. */
async function falExamples(dir: string): Promise<string> {
  const copy = path.join(dir, 'manifests');
  await cp(path.join(ROOT, 'manifests'), copy, { recursive: true });
  const yaml = path.join(copy, 'spring-launch.yaml');
  await writeFile(yaml, (await readFile(yaml, 'utf8')).replace(' says <<<voice_1>>> Spring', ' says Spring').replace(/^\s*voice_ids: .*\n/m, ''));
  const csv = path.join(copy, 'store-openings.csv');
  await writeFile(csv, (await readFile(csv, 'utf8')).replace('she says <<<voice_1>>> Welcome', 'she says Welcome').replace(';kling_voice_warm_en;', ';;'));
  return copy;
}

test("provider fal: the examples as they are are refused before anything is sent: voice_ids are not in fal's schema", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runCli(['run', path.join(ROOT, 'manifests'), '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], {
    env: { FAL_KEY: 'k', FAL_BASE_URL: simulator.url },
  });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /spring-launch\.yaml:\d+: voice_ids: fal's schema for this model has no voice_ids/);
  assert.match(result.stderr, /store-openings\.csv:3: voice_ids: fal's schema/);
  assert.equal(simulator.apiRequests, 0);
});

test("provider fal: the examples run end to end against the simulator speaking fal's queue protocol, local images through fal storage", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runManifests({
    manifests: [await falExamples(dir)],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'fal-test-key', FAL_BASE_URL: simulator.url },
    ...quiet,
  });
  assert.equal(result.exitCode, 0);
  assert.equal(result.report?.totals.done, 10);
  assert.ok(
    result.report?.rows.every((r) => r.cost_source === 'estimate'),
    'fal reports no cost: the estimate is used, and said so',
  );
  assert.equal(simulator.created.length, 10);
  assert.match(result.report?.rows[0]?.run_id ?? '', /^[0-9a-f-]{36}$/);
  // Every local image went to fal's storage once per content, and every input names it by file_url: no data: URI.
  assert.equal(simulator.stats.uploads, (await readdir(path.join(ROOT, 'manifests', 'images'))).length, 'each example image uploaded once');
  for (const entry of simulator.created) assert.match(entry.input!.start_image_url, /^https?:\/\/(?!.*data:)/);
});

test("provider fal: a COMPLETED request whose result is a 422 fails that row with fal's detail; the others finish", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(
    dir,
    'm.yaml',
    'rows:\n  - {id: ok, image: images/hero-landscape.jpg, prompt: fine, duration: 3}\n  - {id: bad, image: "https://cdn.example.invalid/x.jpg", prompt: unreachable, duration: 4}\n',
  );
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runManifests({
    manifests: [path.join(dir, 'm.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'k', FAL_BASE_URL: simulator.url },
    ...quiet,
  });
  assert.equal(result.exitCode, 1);
  const bad = result.report?.rows.find((r) => r.id === 'bad');
  assert.equal(bad?.status, 'failed');
  assert.match(bad?.error ?? '', /VALIDATION_ERROR: run [0-9a-f-]+ failed: start_image_url: could not be downloaded/);
  assert.equal(bad?.actual_usd, 0);
  assert.equal(result.report?.rows.find((r) => r.id === 'ok')?.status, 'done');
});

test("fal's official JavaScript client submits, polls and fetches a result from the simulator", async (t) => {
  // The first simulator holds its queue, so its run is still waiting when polled whatever the timing; the second runs to the end.
  const held = await startSimulator(t, { latency_ms: 20 });
  held.hold();
  const fast = await startSimulator(t, { latency_ms: 20 });
  const clientFor = (simulator: Simulator) =>
    createFalClient({
      credentials: 'fal-client-key',
      // The client only knows fal's hosts; point its requests at the simulator on loopback.
      requestMiddleware: (request) => Promise.resolve({ ...request, url: request.url.replace(/^https:\/\/queue\.fal\.run/, simulator.url) }),
    });
  const input = { start_image_url: 'https://images.example.com/a.jpg', prompt: 'a slow pan', duration: '5' as const, generate_audio: false };

  const waiting = clientFor(held);
  const { request_id: heldId } = await waiting.queue.submit('fal-ai/kling-video/v3/pro/image-to-video', { input });
  const status = await waiting.queue.status('fal-ai/kling-video/v3/pro/image-to-video', { requestId: heldId });
  assert.ok(['IN_QUEUE', 'IN_PROGRESS'].includes(status.status), status.status);
  assert.deepEqual(held.created[0]?.input, input);
  held.cancel(heldId);

  const fal = clientFor(fast);
  const { request_id } = await fal.queue.submit('fal-ai/kling-video/v3/pro/image-to-video', { input });
  const completed = await fal.queue.subscribeToStatus('fal-ai/kling-video/v3/pro/image-to-video', { requestId: request_id, pollInterval: 10 });
  assert.equal(completed.status, 'COMPLETED');
  const first = await fal.queue.result('fal-ai/kling-video/v3/pro/image-to-video', { requestId: request_id });
  assert.equal(first.requestId, request_id);
  assert.match((first.data as { video: { url: string } }).video.url, /\/__simulator\/files\/.+\.mp4/);
  const done = await fal.subscribe('fal-ai/kling-video/v3/pro/image-to-video', { input, pollInterval: 10 });
  assert.match((done.data as { video: { url: string } }).video.url, /\/__simulator\/files\/.+\.mp4/);
  assert.equal(fast.created.length, 2);
  assert.deepEqual(fast.created[0]?.input, input);
});

test('the simulator keeps runs queued while held (POST /__simulator/hold) and runs them once released (POST /__simulator/release)', async (t) => {
  const simulator = await startSimulator(t);
  const admin = async (action: 'hold' | 'release') => (await fetch(`${simulator.url}/__simulator/${action}`, { method: 'POST' })).json();
  const status = async (url: string) => ((await (await fetch(url, { headers: { authorization: 'Key k' } })).json()) as { status: string }).status;
  assert.deepEqual(await admin('hold'), { held: true, queued: 0 });
  const body = JSON.stringify({ start_image_url: 'https://images.example.com/a.jpg', prompt: 'a slow pan', duration: '3', generate_audio: false });
  const submitted = await fetch(`${simulator.url}/fal-ai/kling-video/v3/pro/image-to-video`, {
    method: 'POST',
    headers: { authorization: 'Key k', 'content-type': 'application/json' },
    body,
  });
  const { status_url } = (await submitted.json()) as { status_url: string };
  assert.equal(await status(status_url), 'IN_QUEUE');
  assert.equal(await status(status_url), 'IN_QUEUE', 'still queued: no slot is given while held');
  assert.deepEqual(await admin('release'), { held: false, queued: 0 });
  await new Promise<void>((resolve) => {
    const stop = simulator.runs.watch(() => {
      if (simulator.billed.length === 0) return;
      stop();
      resolve();
    });
  });
  assert.equal(await status(status_url), 'COMPLETED');
});

test('provider fal: a request past job_timeout is cancelled at fal and not billed', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 2000 });
  const dir = await workspace(t);
  await write(dir, 'm.yaml', 'rows:\n  - {id: slow, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(
    dir,
    'fal.yaml',
    fastPipeline().replace('provider: runflow', 'provider: fal').replace('job_timeout: 30s', 'job_timeout: 100ms'),
  );
  const result = await runManifests({
    manifests: [path.join(dir, 'm.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'k', FAL_BASE_URL: simulator.url },
    ...quiet,
  });
  assert.equal(result.exitCode, 1);
  assert.match(result.report?.rows[0]?.error ?? '', /JOB_TIMEOUT: run [0-9a-f-]+ did not finish running within 100ms \(job_timeout\) and was cancelled/);
  assert.equal(simulator.run(result.report!.rows[0]!.run_id!)?.status, 'canceled');
  assert.deepEqual(simulator.billed, []);
});
