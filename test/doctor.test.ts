import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { clockCheck } from '../src/providers/checks.js';
import { ROOT, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

test('clipmill doctor against the demo pipeline passes, with only free requests: health, key and balance against the estimate, the client_ref list, the clock', async (t) => {
  // A fresh output folder: nothing done yet, so the estimate is the whole of the examples.
  const out = path.join(await workspace(t), 'out');
  const result = await runCli(['doctor', 'manifests', '--pipeline', 'pipeline/demo.yaml', '--out', out], { cwd: ROOT });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /ok +health: Runflow answers/);
  assert.match(result.stdout, /ok +key and balance: the key is accepted; balance \$100\.00 covers tonight's estimate of \$8\.54/);
  assert.match(result.stdout, /ok +run list: the client_ref filter is accepted/);
  assert.match(result.stdout, /ok +clock: /);
  assert.match(result.stdout, /^ready$/m);
});

test('clipmill doctor fails (exit 1) when the balance does not cover tonight, or the key is refused; exit 2 without a key; nothing is ever created', async (t) => {
  const poor = await startSimulator(t, { credit_usd: 1 });
  const dir = await workspace(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const manifests = path.join(ROOT, 'manifests');
  const low = await runCli(['doctor', manifests, '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], {
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: poor.url },
  });
  assert.equal(low.code, 1, low.stdout);
  assert.match(low.stdout, /FAIL +key and balance: the key is accepted; balance \$1\.00 does not cover tonight's estimate of \$8\.54/);
  assert.match(low.stdout, /not ready/);

  const strict = await startSimulator(t, { api_key: 'right' });
  const refused = await runCli(['doctor', '--pipeline', pipelineFile, '--json'], { env: { RUNFLOW_API_KEY: 'wrong', RUNFLOW_BASE_URL: strict.url } });
  assert.equal(refused.code, 1);
  const checks = (JSON.parse(refused.stdout) as { checks: { name: string; status: string; detail: string }[] }).checks;
  assert.equal(checks.find((c) => c.name === 'key and balance')?.status, 'fail');
  assert.match(checks.find((c) => c.name === 'key and balance')?.detail ?? '', /401 UNAUTHORIZED.*check RUNFLOW_API_KEY/);
  assert.doesNotMatch(refused.stdout, /wrong/, 'the key is never printed');

  const missing = await runCli(['doctor', '--pipeline', pipelineFile], { env: {} });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /needs an API key: set RUNFLOW_API_KEY/);

  const falPipeline = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const fal = await runCli(['doctor', '--pipeline', falPipeline], { env: { FAL_KEY: 'k', FAL_BASE_URL: strict.url.replace('127.0.0.1', 'localhost') } });
  assert.equal(fal.code, 1, 'the fal side of the strict simulator refuses the key too');
  assert.match(fal.stdout, /FAIL +key: fal refuses the key \(401/);
  assert.equal(poor.created.length + strict.created.length, 0);
  assert.equal(poor.stats.uploads + strict.stats.uploads, 0);
});

test('clipmill doctor on fal: the key is taken when a made-up request is fal\'s own "not found"; the balance is a reminder', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runCli(['doctor', '--pipeline', pipelineFile], { env: { FAL_KEY: 'k', FAL_BASE_URL: simulator.url } });
  assert.equal(result.code, 0, result.stdout);
  assert.match(result.stdout, /ok +key: fal takes the key/);
  assert.match(result.stdout, /warn +balance: fal documents no balance endpoint/);
});

test('clock check by table: a Date header is whole seconds; warn beyond 5 s, fail beyond 2 minutes, say so when there is none', () => {
  const at = (iso: string) => ({ headers: { date: new Date(iso).toUTCString() } });
  const now = Date.parse('2026-11-24T12:00:00.900Z');
  assert.equal(clockCheck([at('2026-11-24T12:00:00Z')], now).status, 'ok');
  assert.equal(clockCheck([at('2026-11-24T11:59:50Z')], now).status, 'warn');
  assert.equal(clockCheck([at('2026-11-24T12:00:10Z')], now).status, 'warn');
  assert.equal(clockCheck([at('2026-11-24T11:55:00Z')], now).status, 'fail');
  assert.equal(clockCheck([{ headers: {} }], now).status, 'warn');
});
