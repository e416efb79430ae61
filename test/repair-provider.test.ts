import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { envFor, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

test('a journal lost while runs were in flight (no video, no sidecar yet): clipmill repair <manifests> finds the runs by client_ref, and the rerun pays nothing again', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const dir = await workspace(t);
  const file = await write(
    dir,
    'm.yaml',
    ['rows:', ...[0, 1, 2].map((i) => `  - {id: r${i}, image: "https://images.example.com/${i}.jpg", prompt: "row ${i}", duration: 3}`)].join('\n'),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  let submitted = 0;
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    signal: controller.signal,
    print: () => {},
    logLine: (l) => (l.includes('submitted as') && ++submitted === 3 ? controller.abort() : undefined),
  });
  assert.equal(first.exitCode, 130);
  assert.equal(simulator.created.length, 3);
  await rm(path.join(out, '.clipmill', 'journal.jsonl'));

  const repaired = await runCli(['repair', file, '--pipeline', pipelineFile, '--out', out], { env: envFor(simulator) });
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /found at the provider by client_ref: 3 rows/);
  for (const id of ['r0', 'r1', 'r2']) assert.match(repaired.stdout, new RegExp(`m/${id}: run [0-9a-f-]{36} .* the next run re-attaches to it`));

  while (simulator.created.some((c) => simulator.run(c.id)?.status !== 'succeeded')) await new Promise((resolve) => setTimeout(resolve, 20));
  const rerun = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: () => {} });
  assert.equal(rerun.exitCode, 0);
  assert.equal(rerun.plan?.counts.reattach, 3);
  assert.equal(simulator.created.length, 3, 'nothing paid twice');
  assert.equal(rerun.report?.totals.done, 3);
});

test('a damaged line that was an intent to create is read back for its client_ref, not dropped: the next run looks it up before paying', async (t) => {
  const dir = await workspace(t);
  const out = path.join(dir, 'out');
  const at = new Date().toISOString();
  const intent = JSON.stringify({
    at,
    session: at,
    type: 'submitting',
    key: 'm/r0',
    request: '0123456789abcdef',
    attempt: 1,
    clientRef: 'clipmill-0123456789-0123456789abcdef-a1-0badf00d',
  });
  const other = JSON.stringify({
    at,
    session: at,
    type: 'submitting',
    key: 'm/r1',
    request: 'fedcba9876543210',
    attempt: 1,
    clientRef: 'clipmill-9876543210-fedcba9876543210-a1-00c0ffee',
  });
  await mkdir(path.join(out, '.clipmill'), { recursive: true });
  await write(dir, 'out/.clipmill/journal.jsonl', `${intent.slice(0, -1)}\u0000#\n${other}\n`);
  const repaired = await runCli(['repair', '--out', out]);
  assert.equal(repaired.code, 0, repaired.stdout);
  assert.match(repaired.stdout, /line 1 was damaged, but its create's client_ref clipmill-0123456789-0123456789abcdef-a1-0badf00d was read back/);
  const status = await runCli(['status', '--out', out]);
  assert.match(status.stdout, /m\/r0\s+the create got no answer; the next run looks it up by client_ref clipmill-0123456789-0123456789abcdef-a1-0badf00d/);
});
