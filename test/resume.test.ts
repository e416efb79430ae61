import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { LockedError } from '../src/state/lock.js';
import type { Report } from '../src/report/build.js';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };

function manifest(rows: { id: string; prompt: string; duration: number }[]): string {
  return ['rows:', ...rows.map((r) => `  - {id: ${r.id}, image: images/hero-landscape.jpg, prompt: "${r.prompt}", duration: ${r.duration}}`)].join('\n');
}

test('a paid video that could not be downloaded is fetched on resume from a fresh URL read from the run again (the journal keeps no URL); never generated twice', async (t) => {
  const simulator = await startSimulator(t, { url_ttl_ms: 50, truncate_rate: 1 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest([{ id: 'clip', prompt: 'sunrise', duration: 4 }]));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');

  const first = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(first.exitCode, 1, 'every download is cut short: the paid video cannot be fetched tonight');
  assert.equal(first.report?.rows[0]?.status, 'owed');
  assert.match(first.report?.rows[0]?.error ?? '', /paid for, not downloaded yet/);
  assert.equal(first.report?.rows[0]?.actual_usd, 0.56, 'what was billed is reported even before the download');

  simulator.options.truncate_rate = 0;
  await new Promise((resolve) => setTimeout(resolve, 80)); // any URL seen by the first run (50 ms) has expired
  const journal = await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8');
  assert.doesNotMatch(journal, /__simulator\/files|signature=/, 'presigned video URLs are never journaled');
  const logs: string[] = [];
  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: (l) => logs.push(l) });
  assert.equal(second.exitCode, 0);
  assert.equal(second.plan?.counts.download, 1);
  assert.ok(
    logs.some((l) => l.includes('downloaded m/clip.mp4')),
    logs.join('\n'),
  );
  assert.equal(simulator.created.length, 1);
  assert.deepEqual((await readdir(path.join(out, 'm'))).sort(), ['clip.mp4', 'clip.mp4.json']);
});

test('a create that times out after the provider made the run is found in the run list: one run, not two', async (t) => {
  const simulator = await startSimulator(t, { create_response_delay_ms: 400 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest([{ id: 'slow-create', prompt: 'waves', duration: 5 }]));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 150ms'));
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(result.exitCode, 0, logs.join('\n'));
  assert.equal(simulator.created.length, 1);
  assert.equal(simulator.billed.length, 1);
  assert.ok(
    logs.some((l) => l.includes('re-attached, not resubmitted')),
    logs.join('\n'),
  );
  assert.equal(result.report?.rows[0]?.run_id, simulator.created[0]?.id);
});

test('a row edited in the manifest is generated again and its earlier video is kept beside the new one', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const file = await write(
    dir,
    'm.yaml',
    manifest([
      { id: 'hero', prompt: 'first idea', duration: 3 },
      { id: 'steady', prompt: 'unchanged', duration: 3 },
    ]),
  );
  assert.equal((await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet })).exitCode, 0);
  const firstVideo = await readFile(path.join(out, 'm', 'hero.mp4'));

  await write(
    dir,
    'm.yaml',
    manifest([
      { id: 'hero', prompt: 'second idea', duration: 6 },
      { id: 'steady', prompt: 'unchanged', duration: 3 },
    ]),
  );
  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(second.exitCode, 0);
  assert.deepEqual(second.plan?.counts, { done: 1, reattach: 0, download: 0, submit: 1, failed: 0, unknown: 0, over_budget: 0, not_selected: 0 });
  const files = (await readdir(path.join(out, 'm'))).filter((f) => f.endsWith('.mp4')).sort();
  assert.equal(files.length, 3, files.join(', '));
  const archived = files.find((f) => /^hero\.[0-9a-f]{8}\.mp4$/.test(f));
  assert.ok(archived, files.join(', '));
  assert.deepEqual(await readFile(path.join(out, 'm', archived)), firstVideo);
  const hero = second.report?.rows.find((r) => r.id === 'hero');
  assert.equal(hero?.changed, true);
  assert.equal(hero?.duration, 6);
  assert.equal(simulator.created.length, 3);
});

test('a live lock refuses a second run; a lock left by a dead process is taken over with a warning', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest([{ id: 'one', prompt: 'p', duration: 3 }]));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const lockFile = path.join(out, '.clipmill', 'lock');
  await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), dryRun: true, ...quiet });

  const { mkdir } = await import('node:fs/promises');
  await mkdir(path.dirname(lockFile), { recursive: true });
  await writeFile(lockFile, JSON.stringify({ pid: process.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z' }));
  await assert.rejects(
    runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet }),
    (e: unknown) => e instanceof LockedError && /another clipmill run \(pid \d+/.test(e.message),
  );
  assert.equal(simulator.apiRequests, 0);

  const cli = await runCli(['run', file, '--pipeline', pipelineFile, '--out', out], { env: envFor(simulator), cwd: dir });
  assert.equal(cli.code, 2);
  assert.match(cli.stderr, /is using this output folder/);

  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => dead.on('exit', resolve));
  await writeFile(lockFile, JSON.stringify({ pid: dead.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z' }));
  const logs: string[] = [];
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: (l) => logs.push(l) });
  assert.equal(result.exitCode, 0);
  assert.ok(
    logs.some((l) => l.includes(`took over the lock of a run that is gone (pid ${dead.pid}`)),
    logs.join('\n'),
  );
  await assert.rejects(readFile(lockFile), /ENOENT/, 'the lock is released at the end');
});

test('SIGINT stops the run with exit 130 and a resume hint; status shows the rows in flight; a rerun completes without paying twice', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 1500, concurrency: 10 });
  const dir = await workspace(t);
  const rows = Array.from({ length: 6 }, (_, i) => ({ id: `r${i}`, prompt: `shot ${i}`, duration: 3 + i }));
  const file = await write(dir, 'm.yaml', manifest(rows));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('concurrency: 4', 'concurrency: 6'));
  const out = path.join(dir, 'out');
  const args = ['run', file, '--pipeline', pipelineFile, '--out', out, '--log', 'json'];

  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...envFor(simulator) },
  });
  let stdout = '';
  let submitted = 0;
  let interrupted = false;
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    submitted += d
      .toString()
      .split('\n')
      .filter((l) => l.includes('"event":"submitted"')).length;
    if (submitted >= 6 && !interrupted) interrupted = child.kill('SIGINT'); // once: a second Ctrl-C quits at once
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 130, stdout);
  assert.match(stdout, /interrupted: run the same command again to resume/);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(report.totals.in_flight, 6, 'the reports are written on the way out');

  const status = await runCli(['status', '--out', out], { cwd: dir });
  assert.equal(status.code, 0);
  assert.match(status.stdout, /m: 6 rows, 6 in flight/);
  assert.match(status.stdout, /in flight\s+m\/r0\s+run [0-9a-f-]{36}; the next run re-attaches to it/);

  const rerun = await runCli(args, { env: envFor(simulator), cwd: dir });
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.match(rerun.stderr, /"message":"0 done, 6 in flight re-attached/);
  assert.equal(simulator.created.length, 6, 'no row was submitted twice');
  assert.equal((await readdir(path.join(out, 'm'))).filter((f) => f.endsWith('.mp4')).length, 6);
});

test('a downloaded video deleted since is fetched again from the same run; failed rows wait for --retry-failed', async (t) => {
  const simulator = await startSimulator(t, { fail_rate: 0 });
  const dir = await workspace(t);
  const file = await write(
    dir,
    'm.yaml',
    manifest([
      { id: 'kept', prompt: 'p', duration: 3 },
      { id: 'flaky', prompt: 'q', duration: 4 },
    ]),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const run = (extra: { retryFailed?: boolean } = {}) =>
    runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet, ...extra });

  simulator.options.fail_rate = 1;
  const first = await run();
  assert.equal(first.exitCode, 1);
  assert.deepEqual(
    first.report?.rows.map((r) => r.status),
    ['failed', 'failed'],
  );

  simulator.options.fail_rate = 0;
  const untouched = await run();
  assert.deepEqual(untouched.plan?.counts.failed, 2, 'failed rows are not resubmitted without asking');
  assert.equal(simulator.created.length, 2);

  const retried = await run({ retryFailed: true });
  assert.equal(retried.exitCode, 0);
  assert.equal(simulator.created.length, 4);
  assert.equal(retried.report?.rows[0]?.attempts, 2);

  const { rm } = await import('node:fs/promises');
  await rm(path.join(out, 'm', 'kept.mp4'));
  await writeFile(path.join(out, 'm', 'flaky.mp4'), 'damaged');
  const repaired = await run();
  assert.equal(repaired.exitCode, 0);
  assert.equal(repaired.plan?.counts.download, 2);
  assert.equal(simulator.created.length, 4, 'a lost file is downloaded again, not generated again');
  assert.equal((await readFile(path.join(out, 'm', 'flaky.mp4'))).length, repaired.report?.rows[1]?.bytes);
});
