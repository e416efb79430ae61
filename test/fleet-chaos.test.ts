import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, fleetKeys } from '../src/fleet/redis.js';
import type { RowState } from '../src/lifecycle/events.js';
import { envFor, fastPipeline, mostAtOnce, rowsYaml, runCli, startCli, startSimulator, totalUsd, workspace, write } from './helpers.js';
import { startRedis } from './redis-server.js';

/** Waits for a condition the test does not control the timing of (a process reaching a point), checking every 20 ms. */
async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(20);
  }
}

test('fleet chaos: two enqueuers at once, kill -9 of a worker between a create and its answer, of Redis, and of a worker mid-wait; the fleet still makes one paid run per row, within the cap, the rate and the budget', async (t) => {
  const server = await startRedis(t);
  // Every create's answer comes 1.5 s after the run is made: a worker killed in that gap leaves only its intent behind.
  const simulator = await startSimulator(t, { latency_ms: 100, concurrency: 10, create_response_delay_ms: 1_500 });
  const dir = await workspace(t);
  const rows = 8;
  const file = await write(dir, 'm.yaml', rowsYaml(rows));
  const pipeline = fastPipeline().replace('concurrency: 4', 'concurrency: 3').replace('requests_per_minute: 100000', 'requests_per_minute: 120');
  const pipelineFile = await write(dir, 'pipeline.yaml', `${pipeline}\nbudget_usd: 5\n`);
  const fleet = ['--redis', server.url, '--queue', 'chaos', '--pipeline', pipelineFile, '--out', path.join(dir, 'out')];
  const env = { ...envFor(simulator), CLIPMILL_FLEET_LOCK_MS: '1500' };
  const worker = () => startCli(['worker', ...fleet, '--until-idle', '--log', 'json'], { env, cwd: dir });
  const redis = await connectRedis(server.url);
  t.after(() => redis.disconnect());
  const states = async () => Object.values(await redis.hgetall(fleetKeys('chaos').rows)).map((json) => JSON.parse(json) as RowState);

  // Two enqueuers add the same rows at once.
  const enqueued = await Promise.all([runCli(['enqueue', file, ...fleet], { env, cwd: dir }), runCli(['enqueue', file, ...fleet], { env, cwd: dir })]);
  for (const e of enqueued) assert.equal(e.code, 0, e.stderr);

  // 1. A worker dies after its first creates reached the provider, before their answers.
  const first = worker();
  await until('a first create at the provider', () => simulator.created.length >= 1);
  first.child.kill('SIGKILL');
  await first.done;
  const intents = (await states()).filter((s) => s.status === 'submitting').length;
  assert.ok(intents >= 1, 'the dead worker left intents, no run ids');

  // 2. Runs are held queued; a second worker takes the rows over and is waiting on runs when Redis dies and comes back.
  simulator.hold();
  const second = worker();
  await until('the second worker waiting on a run', async () => (await states()).some((s) => s.status === 'submitted'));
  await server.restart();
  // 3. Then the second worker dies mid-wait.
  second.child.kill('SIGKILL');
  await second.done;
  simulator.release();

  // 4. Three fresh workers finish the night.
  const finishers = await Promise.all([worker(), worker(), worker()].map((w) => w.done));
  for (const f of finishers) assert.equal(f.code, 0, f.stderr.slice(-2_000));

  assert.equal(simulator.created.length, rows, `runs created: ${simulator.created.length}`);
  assert.equal(simulator.billed.length, rows);
  assert.ok(totalUsd(simulator.billed) <= 5, `billed ${totalUsd(simulator.billed)} over the $5 budget`);
  assert.ok(mostAtOnce(simulator.timeline()) <= 3, `runs at once: ${mostAtOnce(simulator.timeline())}`);
  assert.ok(simulator.statistics().max_requests_in_60s! <= 120, `requests in the busiest 60 s: ${simulator.statistics().max_requests_in_60s}`);
  const videos = (await readdir(path.join(dir, 'out', 'm'))).filter((f) => f.endsWith('.mp4'));
  assert.equal(videos.length, rows);
  assert.ok((await states()).every((s) => s.status === 'downloaded'));
});

test('a worker stopped by SIGTERM mid-wait gives its rows back: the next worker finishes them without creating them again', async (t) => {
  const server = await startRedis(t);
  const simulator = await startSimulator(t, { latency_ms: 50 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(3));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const fleet = ['--redis', server.url, '--queue', 'term', '--pipeline', pipelineFile, '--out', path.join(dir, 'out')];
  const env = { ...envFor(simulator), CLIPMILL_FLEET_LOCK_MS: '1500' };
  const redis = await connectRedis(server.url);
  t.after(() => redis.disconnect());
  const states = async () => Object.values(await redis.hgetall(fleetKeys('term').rows)).map((json) => JSON.parse(json) as RowState);
  assert.equal((await runCli(['enqueue', file, ...fleet], { env, cwd: dir })).code, 0);

  simulator.hold();
  const first = startCli(['worker', ...fleet, '--log', 'json'], { env, cwd: dir });
  await until('three runs waiting', async () => (await states()).filter((s) => s.status === 'submitted').length === 3);
  first.child.kill('SIGTERM');
  assert.equal((await first.done).code, 130);
  simulator.release();

  const second = await runCli(['worker', ...fleet, '--until-idle', '--log', 'json'], { env, cwd: dir });
  assert.equal(second.code, 0, second.stderr.slice(-2_000));
  assert.equal(simulator.created.length, 3);
  assert.ok((await states()).every((s) => s.status === 'downloaded'));
});

test('a worker killed -9 while its videos download in the background: the download jobs kept behind them fetch the videos, nothing is created again', async (t) => {
  const server = await startRedis(t);
  // Every video trickles in over 3 s: the worker is killed while they come in.
  const simulator = await startSimulator(t, { latency_ms: 50, slow_download_rate: 1, slow_download_ms: 3_000 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(3));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const fleet = ['--redis', server.url, '--queue', 'dl', '--pipeline', pipelineFile, '--out', path.join(dir, 'out')];
  const env = { ...envFor(simulator), CLIPMILL_FLEET_LOCK_MS: '1500' };
  const redis = await connectRedis(server.url);
  t.after(() => redis.disconnect());
  const states = async () => Object.values(await redis.hgetall(fleetKeys('dl').rows)).map((json) => JSON.parse(json) as RowState);
  assert.equal((await runCli(['enqueue', file, ...fleet], { env, cwd: dir })).code, 0);

  const first = startCli(['worker', ...fleet, '--log', 'json'], { env, cwd: dir });
  await until('three paid runs downloading', async () => (await states()).filter((s) => s.status === 'succeeded').length === 3);
  first.child.kill('SIGKILL');
  await first.done;

  const second = await runCli(['worker', ...fleet, '--until-idle', '--log', 'json'], { env, cwd: dir });
  assert.equal(second.code, 0, second.stderr.slice(-2_000));
  assert.equal(simulator.created.length, 3);
  assert.ok((await states()).every((s) => s.status === 'downloaded'));
  const videos = (await readdir(path.join(dir, 'out', 'm'))).filter((f) => f.endsWith('.mp4'));
  assert.equal(videos.length, 3);
});
