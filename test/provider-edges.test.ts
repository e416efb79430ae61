import assert from 'node:assert/strict';
import path from 'node:path';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { FAL_LOCKED_DETAIL } from '../src/simulator/fal-api.js';
import { envFor, fastPipeline, scriptedProxy, startSimulator, workspace, write, type Scripted, rowsYaml } from './helpers.js';

const rows = (n: number) => rowsYaml(n, { duration: (i) => 3 + i });

test('fal: the locked-balance 403 stops new creates with exit 3 and the top-up advice, while requests already submitted are polled and downloaded', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 200 });
  const proxy = await scriptedProxy(t, simulator.url, (method, key, n) =>
    method === 'POST' && key.startsWith('POST /fal-ai/kling-video/v3') && n >= 3 ? { status: 403, body: { detail: FAL_LOCKED_DETAIL } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(5));
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal').replace('concurrency: 4', 'concurrency: 2'));
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'k', FAL_BASE_URL: proxy.url },
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(result.exitCode, 3, logs.join('\n'));
  assert.equal(result.stopped?.kind, 'credit');
  assert.match(result.stopped?.message ?? '', /Exhausted balance.*top it up at fal\.ai\/dashboard\/billing/);
  assert.equal(result.report?.totals.done, 2, 'the two requests fal took were fetched and downloaded');
  assert.equal(simulator.created.length, 2);
  assert.deepEqual((await readdir(path.join(dir, 'out', 'm'))).filter((f) => f.endsWith('.mp4')).sort(), ['r0.mp4', 'r1.mp4']);
  // Two slots: a second create may already be on its way when the first 403 comes back, but no later row is tried.
  assert.ok(proxy.requests.filter((r) => r.key.startsWith('POST /fal-ai/kling-video/v3')).length <= 4, 'creating stopped at the lock');
});

test('fal: a 401 is the bad-key case: the run stops at once with exit 2 and says to check FAL_KEY', async (t) => {
  const simulator = await startSimulator(t, { api_key: 'the-right-key' });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(2));
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'wrong', FAL_BASE_URL: simulator.url },
    print: () => {},
    logLine: () => {},
  });
  assert.equal(result.exitCode, 2);
  assert.match(result.stopped?.message ?? '', /fal 401 .*check FAL_KEY/);
  assert.equal(simulator.created.length, 0);
  // An answered 401 made nothing: the rows are not "unknown" (which fal could never resolve), the next run simply submits them.
  assert.ok(
    result.report?.rows.every((r) => r.status !== 'unknown'),
    JSON.stringify(result.report?.rows.map((r) => r.status)),
  );
  const again = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { FAL_KEY: 'the-right-key', FAL_BASE_URL: simulator.url },
    print: () => {},
    logLine: () => {},
  });
  assert.equal(again.plan?.counts.unknown, 0);
  assert.equal(again.exitCode, 0);
});

test('Runflow: a succeeded, paid run whose output holds no video is logged with its raw output (redacted) and stays owed; the next run downloads it, paying nothing more', async (t) => {
  const simulator = await startSimulator(t);
  const noVideo = { outputs: [{ type: 'image', url: 'https://cdn.example.com/thumb.png?X-Amz-Signature=s3cr3t' }] };
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs/:id'
      ? { status: 200, body: { id: 'ignored', status_code: 'succeeded', cost: '0.420000', output: noVideo } }
      : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const logs: string[] = [];
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(first.exitCode, 1);
  const line = logs.find((l) => l.includes('succeeded but its output holds no video; the row stays owed')) ?? '';
  assert.match(line, /thumb\.png\?…\(redacted\)/, logs.join('\n'));
  assert.doesNotMatch(logs.join('\n'), /s3cr3t/, 'no signature reaches the log');
  assert.equal(first.report?.rows[0]?.status, 'owed');
  assert.equal(first.report?.rows[0]?.actual_usd, 0.42, 'what the provider billed is reported');

  // The simulator's run (one run was created) has its video: re-reading the run brings it home.
  await new Promise((resolve) => setTimeout(resolve, 50));
  const secondLogs: string[] = [];
  const second = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    print: () => {},
    logLine: (l) => secondLogs.push(l),
  });
  assert.equal(second.exitCode, 0, secondLogs.join('\n'));
  assert.equal(second.plan?.counts.download, 1);
  assert.equal(simulator.created.length, 1);
  assert.equal(secondLogs.filter((l) => l.includes('output as received')).length, 1, 'the first succeeded run of the night is logged once, as received');
});

test("fal results: a locked account, a rate answer or a 5xx is not the run's verdict; a 2xx without a video stays owed; a result past retention is failed but counted as billed", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'fal.yaml', fastPipeline().replace('provider: runflow', 'provider: fal'));
  // Each case in its own output folder: fal's request URLs are journaled, so a rerun would ask the first case's proxy again.
  let cases = 0;
  const runWith = async (answer: (n: number) => Scripted) => {
    const proxy = await scriptedProxy(t, simulator.url, (method, key, n) =>
      method === 'GET' && /^GET \/fal-ai\/kling-video\/requests\/[^/]+$/.test(key) ? answer(n) : 'pass',
    );
    const logs: string[] = [];
    const result = await runManifests({
      manifests: [file],
      pipelineFile,
      outDir: path.join(dir, `out-${++cases}`),
      env: { FAL_KEY: 'k', FAL_BASE_URL: proxy.url },
      print: () => {},
      logLine: (l) => logs.push(l),
    });
    return { result, logs };
  };

  const locked = await runWith(() => ({ status: 403, body: { detail: FAL_LOCKED_DETAIL } }));
  assert.equal(locked.result.exitCode, 3);
  assert.equal(locked.result.report?.rows[0]?.status, 'in_flight', 'the paid request is not written off');

  const limited = await runWith((n) => (n === 1 ? { status: 429, body: { detail: 'slow down' } } : 'pass'));
  assert.equal(limited.result.exitCode, 0, limited.logs.join('\n'));
  assert.equal(simulator.created.length, 2, 'a 429 on the result is asked again, not failed and paid again');

  const flaky = await runWith((n) =>
    n === 1
      ? { status: 500, headers: { 'x-fal-error-type': 'runner_disconnected' }, body: { detail: 'Runner disconnected', error_type: 'runner_disconnected' } }
      : 'pass',
  );
  assert.equal(flaky.result.exitCode, 0, 'a 5xx on the result, even typed, is asked again: the run may have succeeded');
  assert.equal(simulator.created.length, 3);

  const owed = await runWith(() => ({ status: 200, body: { videos: [{ url: 'https://fal.media/files/x.mp4?token=s3cr3t' }] } }));
  assert.equal(owed.result.report?.rows[0]?.status, 'owed');
  assert.ok(
    owed.logs.some((l) => l.includes('output holds no video; the row stays owed') && l.includes('x.mp4?…(redacted)')),
    owed.logs.join('\n'),
  );
  assert.doesNotMatch(owed.logs.join('\n'), /s3cr3t/);

  const gone = await runWith(() => ({ status: 404, body: { detail: 'Request not found' } }));
  const row = gone.result.report?.rows[0];
  assert.equal(row?.status, 'failed');
  assert.match(row?.error ?? '', /RESULT_GONE/);
  assert.equal(row?.cost_source, 'estimate', 'may have been billed: counted at the estimate, never as free');
  assert.ok((row?.actual_usd ?? 0) > 0);
});

test('provider text that quotes a presigned URL loses its signature before it reaches the journal, the log or the report', async (t) => {
  const simulator = await startSimulator(t);
  const message = 'could not read https://storage.example.com/in/a.jpg?X-Amz-Signature=s3cr3t&X-Amz-Expires=60';
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs/:id'
      ? { status: 200, body: { id: 'x', status_code: 'failed', cost: '0', failure_code: 'INPUT_VALIDATION_FAILED', failure_message: message } }
      : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(result.exitCode, 1);
  assert.match(result.report?.rows[0]?.error ?? '', /a\.jpg\?…\(redacted\)/);
  const everything = [
    logs.join('\n'),
    await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8'),
    await readFile(path.join(out, 'report.json'), 'utf8'),
    await readFile(path.join(out, 'report.csv'), 'utf8'),
  ].join('\n');
  assert.doesNotMatch(everything, /s3cr3t/);
});

test('a timed-out run re-checked the next night and answered with a status we cannot read stays timed out and re-checked, never written off', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('job_timeout: 30s', 'job_timeout: 100ms'));
  const out = path.join(dir, 'out');
  const run = (baseUrl: string) =>
    runManifests({
      manifests: [file],
      pipelineFile,
      outDir: out,
      env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: baseUrl },
      print: () => {},
      logLine: () => {},
    });
  assert.match((await run(simulator.url)).report?.rows[0]?.error ?? '', /JOB_TIMEOUT/);
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs/:id' ? { status: 200, body: { id: 'x', status_code: 'paused' } } : 'pass',
  );
  const unreadable = await run(proxy.url);
  assert.equal(unreadable.plan?.counts.reattach, 1);
  assert.match(unreadable.report?.rows[0]?.error ?? '', /JOB_TIMEOUT/, 'still the deadline, not the unreadable status');
  // Hold the third night until the provider has finished the run (the test releases it, no timer race).
  while (simulator.run(simulator.created[0]!.id)?.status !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 20));
  const third = await run(simulator.url);
  assert.equal(third.plan?.counts.reattach, 1);
  assert.equal(third.exitCode, 0);
  assert.equal(simulator.created.length, 1);
});

test('Ctrl-C while creates wait for a rate slot: only the create that was sent is journaled as sent; the rerun sends the others once', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 50 });
  const dir = await workspace(t);
  const remote = ['rows:', ...[0, 1, 2].map((i) => `  - {id: r${i}, image: "https://images.example.com/${i}.jpg", prompt: "row ${i}", duration: 3}`)].join(
    '\n',
  );
  const file = await write(dir, 'm.yaml', remote);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('requests_per_minute: 100000', 'requests_per_minute: 2'));
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    signal: controller.signal,
    print: () => {},
    logLine: (l) => (l.includes('submitted as') ? controller.abort() : undefined),
  });
  assert.equal(first.exitCode, 130);
  const journal = (await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8')).split('\n').filter((l) => l.includes('"type":"submitting"'));
  assert.equal(journal.length, 1, 'the creates still waiting for a slot were never sent, and no intent says otherwise');
  assert.equal(simulator.created.length, 1);
  const rerun = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    requestsPerMinute: 100_000,
    print: () => {},
    logLine: () => {},
  });
  assert.equal(rerun.exitCode, 0);
  assert.deepEqual(rerun.plan?.counts.unknown, 0);
  assert.equal(simulator.created.length, 3);
});
