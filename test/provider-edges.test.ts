import assert from 'node:assert/strict';
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { runManifests } from '../src/run.js';
import { FAL_LOCKED_DETAIL } from '../src/providers/simulator/fal-api.js';
import { envFor, fastPipeline, scriptedProxy, startSimulator, workspace, write } from './helpers.js';

const rows = (n: number) => ['rows:', ...Array.from({ length: n }, (_, i) => `  - {id: r${i}, image: images/hero-landscape.jpg, prompt: "row ${i}", duration: ${3 + i}}`)].join('\n');

test('fal: the locked-balance 403 stops new creates with exit 3 and the top-up advice, while requests already submitted are polled and downloaded', async (t) => {
  const simulator = await startSimulator(t, { latencyMs: 200 });
  const proxy = await scriptedProxy(t, simulator.url, (method, key, n) =>
    method === 'POST' && key.startsWith('POST /fal-ai/kling-video/v3') && n >= 3 ? { status: 403, body: { detail: FAL_LOCKED_DETAIL } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(5));
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal').replace('concurrency: 4', 'concurrency: 2'));
  const logs: string[] = [];
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: path.join(dir, 'out'), env: { FAL_KEY: 'k', FAL_BASE_URL: proxy.url }, print: () => {}, logLine: (l) => logs.push(l) });
  assert.equal(result.exitCode, 3, logs.join('\n'));
  assert.equal(result.stopped?.kind, 'credit');
  assert.match(result.stopped?.message ?? '', /Exhausted balance.*top it up at fal\.ai\/dashboard\/billing/);
  assert.equal(result.report?.totals.done, 2, 'the two requests fal took were fetched and downloaded');
  assert.equal(simulator.created.length, 2);
  assert.deepEqual((await readdir(path.join(dir, 'out', 'm'))).sort(), ['r0.mp4', 'r1.mp4']);
  // Two slots: a second create may already be on its way when the first 403 comes back, but no later row is tried.
  assert.ok(proxy.requests.filter((r) => r.key.startsWith('POST /fal-ai/kling-video/v3')).length <= 4, 'creating stopped at the lock');
});

test('fal: a 401 is the bad-key case: the run stops at once with exit 2 and says to check FAL_KEY', async (t) => {
  const simulator = await startSimulator(t, { apiKey: 'the-right-key' });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(2));
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: path.join(dir, 'out'), env: { FAL_KEY: 'wrong', FAL_BASE_URL: simulator.url }, print: () => {}, logLine: () => {} });
  assert.equal(result.exitCode, 2);
  assert.match(result.stopped?.message ?? '', /fal 401 .*check FAL_KEY/);
  assert.equal(simulator.created.length, 0);
});

test('Runflow: a succeeded, paid run whose output holds no video is logged with its raw output (redacted) and stays owed; the next run downloads it, paying nothing more', async (t) => {
  const simulator = await startSimulator(t);
  const noVideo = { outputs: [{ type: 'image', url: 'https://cdn.example.com/thumb.png?X-Amz-Signature=s3cr3t' }] };
  const proxy = await scriptedProxy(t, simulator.url, (method, key) => (method === 'GET' && key === 'GET /v1/runs/:id' ? { status: 200, body: { id: 'ignored', status_code: 'succeeded', cost: '0.420000', output: noVideo } } : 'pass'));
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const logs: string[] = [];
  const first = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url }, print: () => {}, logLine: (l) => logs.push(l) });
  assert.equal(first.exitCode, 1);
  const line = logs.find((l) => /succeeded but its output holds no video; the row stays owed/.test(l)) ?? '';
  assert.match(line, /thumb\.png\?…\(redacted\)/, logs.join('\n'));
  assert.doesNotMatch(logs.join('\n'), /s3cr3t/, 'no signature reaches the log');
  assert.equal(first.report?.rows[0]?.status, 'in_flight');
  assert.equal(first.report?.rows[0]?.actual_usd, 0.42, 'what the provider billed is reported');

  // The simulator's run (one run was created) has its video: re-reading the run brings it home.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const secondLogs: string[] = [];
  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: (l) => secondLogs.push(l) });
  assert.equal(second.exitCode, 0, secondLogs.join('\n'));
  assert.equal(second.plan?.counts.download, 1);
  assert.equal(simulator.created.length, 1);
  assert.equal(secondLogs.filter((l) => /output as received/.test(l)).length, 1, 'the first succeeded run of the night is logged once, as received');
});
