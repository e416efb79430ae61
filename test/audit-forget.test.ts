import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { envFor, fastPipeline, runCli, scriptedProxy, startSimulator, workspace, write, rowsYaml } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };
const rows = (n: number) => rowsYaml(n);

test("clipmill audit: the provider's runs of the period against the journal: agreement, a row paid twice, runs of another folder; fal cannot be audited", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(2));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  assert.equal((await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet })).exitCode, 0);
  const audit = (folder: string) => runCli(['audit', '--out', folder, '--pipeline', pipelineFile, '--since', '1h'], { env: envFor(simulator) });
  const agree = await audit(out);
  assert.equal(agree.code, 0, agree.stdout + agree.stderr);
  assert.match(agree.stdout, /the provider and this folder agree/);

  // A run made by one of this folder's creates that the journal never learned of (a lost answer whose run showed up late): paid twice.
  const journal = await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8');
  const ref = /"clientRef":"(clipmill-[0-9a-f]{10}-[0-9a-f]{16}-a1-[0-9a-f]{8})"/.exec(journal)![1]!;
  const input = simulator.created[0]!.input;
  const created = await fetch(`${simulator.url}/v1/models/kuaishou/kling-video/v3/pro/image-to-video/runs`, {
    method: 'POST',
    headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
    body: JSON.stringify({ input, client_ref: ref }),
  });
  const extra = ((await created.json()) as { id: string }).id;
  while (simulator.run(extra)?.status !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 10));
  const twice = await audit(out);
  assert.equal(twice.code, 1);
  assert.match(twice.stdout, new RegExp(`PAID TWICE .*${extra}`));
  assert.match(twice.stdout, new RegExp(`UNKNOWN +${extra}`));

  const elsewhere = path.join(dir, 'other-folder');
  const other = await audit(elsewhere);
  assert.equal(other.code, 0, 'runs of other output folders are counted, not differences');
  assert.match(other.stdout, /other output folders: 3 billed runs by clipmill on this account/);

  const falPipeline = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const fal = await runCli(['audit', '--out', out, '--pipeline', falPipeline], { env: { FAL_KEY: 'k', FAL_BASE_URL: simulator.url } });
  assert.equal(fal.code, 2);
  assert.match(fal.stdout + fal.stderr, /cannot audit: fal keeps no list of requests/);
});

test('a run the provider no longer knows is recorded lost after lost_after; clipmill forget gives any stuck row a way out, journaled with its reason', async (t) => {
  const simulator = await startSimulator(t);
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs/:id' ? { status: 404, body: { code: 'RUN_NOT_FOUND', message: 'Run not found', errors: null } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(2));
  const pipelineFile = await write(dir, 'pipeline.yaml', `${fastPipeline()}\nlost_after: 200ms\n`);
  const out = path.join(dir, 'out');
  const env = { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url };
  const first = await runManifests({ manifests: [file], pipelineFile, outDir: out, env, ...quiet });
  assert.deepEqual(
    first.report?.rows.map((r) => r.status),
    ['in_flight', 'in_flight'],
    'a fresh 404 may be a lagging provider: kept',
  );

  const forgot = await runCli(['forget', 'm/r1', '--reason', 'support says the run was purged', '--out', out]);
  assert.equal(forgot.code, 0, forgot.stderr);
  assert.match(forgot.stdout, /m\/r1 .*given up/);
  const noReason = await runCli(['forget', 'm/r0', '--out', out]);
  assert.equal(noReason.code, 2, 'a reason is required');

  await new Promise((resolve) => setTimeout(resolve, 250));
  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env, ...quiet });
  const byId = new Map(second.report?.rows.map((r) => [r.id, r]));
  assert.equal(byId.get('r0')?.status, 'failed');
  assert.match(byId.get('r0')?.error ?? '', /RUN_LOST: run [0-9a-f-]{36} has been unknown to the provider \(404\) for \d+ s \(lost_after\): recorded lost/);
  assert.equal(byId.get('r1')?.status, 'failed');
  assert.match(byId.get('r1')?.error ?? '', /FORGOTTEN: given up by hand: support says the run was purged/);
  assert.equal(second.plan?.counts.reattach, 1, 'the forgotten row is not polled again');
  assert.equal(simulator.created.length, 2, 'nothing resubmitted on its own');
});

test('a run the provider still knows cannot be forgotten: the next run re-attaches to it', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 60_000 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    signal: controller.signal,
    print: () => {},
    logLine: (l) => (l.includes('submitted as') ? controller.abort() : undefined),
  });
  const refused = await runCli(['forget', 'm/r0', '--reason', 'impatient', '--out', out]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /is in flight at the provider; the next run re-attaches to it/);
  simulator.cancel(simulator.created[0]!.id);
});
