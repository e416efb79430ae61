import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { FleetBudget } from '../src/fleet/budget.js';
import { FleetGate } from '../src/fleet/gate.js';
import { checkDurability, connectRedis, fleetKeys } from '../src/fleet/redis.js';
import type { InputError } from '../src/load/problem.js';
import { FleetStore, LeaseLostError } from '../src/fleet/store.js';
import { envFor, fastPipeline, mostAtOnce, nightFolder, rowsYaml, runCli, startSimulator, workspace, write } from './helpers.js';
import { startRedis } from './redis-server.js';

test('a fleet: two enqueuers adding the same rows at once and three workers make one paid run per row, never over the account cap', async (t) => {
  const redis = await startRedis(t);
  const simulator = await startSimulator(t, { latency_ms: 60, concurrency: 10 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(12));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('concurrency: 4', 'concurrency: 3'));
  const fleet = ['--redis', redis.url, '--queue', 'night1', '--pipeline', pipelineFile, '--out', path.join(dir, 'out')];
  const env = envFor(simulator);

  const enqueued = await Promise.all([runCli(['enqueue', file, ...fleet], { env, cwd: dir }), runCli(['enqueue', file, ...fleet], { env, cwd: dir })]);
  for (const e of enqueued) assert.equal(e.code, 0, e.stderr);
  assert.match(enqueued[0].stdout, /enqueued 12 rows on fleet "night1"/);
  assert.equal(simulator.apiRequests, 0, 'enqueue sends nothing to the provider');

  const workers = await Promise.all([1, 2, 3].map(() => runCli(['worker', ...fleet, '--until-idle', '--log', 'json'], { env, cwd: dir })));
  for (const w of workers) assert.equal(w.code, 0, w.stderr);

  assert.equal(simulator.created.length, 12, 'one create per row');
  assert.equal(simulator.billed.length, 12);
  assert.ok(mostAtOnce(simulator.timeline()) <= 3, `runs at once: ${mostAtOnce(simulator.timeline())}`);
  const videos = (await readdir(path.join(dir, 'out', 'm'))).filter((f) => f.endsWith('.mp4'));
  assert.equal(videos.length, 12);

  // The fleet's journal says the same, and comes out beside the reports.
  const status = await runCli(['status', ...fleet], { env, cwd: dir });
  assert.match(status.stdout, /m: 12 rows, 12 done/);
  const report = await runCli(['report', ...fleet], { env, cwd: dir });
  assert.equal(report.code, 0, report.stderr);
  const ledger = (await readFile(path.join(dir, 'out', 'ledger.csv'), 'utf8')).trim().split('\n').slice(1);
  assert.equal(ledger.length, 12);
  const journal = (await readFile(path.join(dir, 'out', 'journal.jsonl'), 'utf8')).trim().split('\n');
  assert.equal(journal.filter((line) => (JSON.parse(line) as { type: string }).type === 'downloaded').length, 12);

  // Enqueued again: every row is done in the fleet journal, so nothing is added and nothing is paid.
  const again = await runCli(['enqueue', file, ...fleet], { env, cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /12 done/);
  assert.match(again.stdout, /enqueued 0 rows/);

  // A single-machine run on the fleet's folder would not know the fleet's runs: refused, nothing sent.
  const requests = simulator.apiRequests;
  const local = await runCli(['run', file, '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], { env, cwd: dir });
  assert.equal(local.code, 2);
  assert.match(local.stderr, /holds the videos of fleet "night1".*could pay for them again/);
  assert.equal(simulator.apiRequests, requests);
});

test("a row's lease: one holder at a time, and a worker whose lease was taken cannot write the row's events", async (t) => {
  const server = await startRedis(t);
  const [a, b] = await Promise.all([connectRedis(server.url), connectRedis(server.url)]);
  t.after(() => {
    a.disconnect();
    b.disconnect();
  });
  const keys = fleetKeys('leases');
  const first = new FleetStore(a, keys, 'first');
  const second = new FleetStore(b, keys, 'second');
  assert.equal((await first.lease('m/r1', 60_000)).held, true);
  const refused = await second.lease('m/r1');
  assert.equal(refused.held, false);
  assert.ok(!refused.held && refused.retryInMs > 50_000, 'told when to look again');
  await first.append({ type: 'submitting', key: 'm/r1', request: 'q1', attempt: 1, clientRef: 'ref-1' });
  await first.release('m/r1');

  const taken = await second.lease('m/r1');
  assert.ok(taken.held && taken.state?.status === 'submitting' && taken.state.clientRef === 'ref-1', 'the new holder sees the intent');
  // The first worker, late, tries to record a run for the row it no longer holds.
  assert.equal((await first.lease('m/r1')).held, false);
  await assert.rejects(first.append({ type: 'submitted', key: 'm/r1', request: 'q1', runId: 'run-1' }), LeaseLostError);
  assert.equal(second.row('m/r1')?.runId, undefined);

  // A create's intent holds the row at least as long as the create could take to be answered, renewals or not.
  const holding = new FleetStore(a, keys, 'holding', 1_000, 30_000);
  assert.equal((await holding.lease('m/r3')).held, true);
  await holding.append({ type: 'submitting', key: 'm/r3', request: 'q3', attempt: 1, clientRef: 'ref-3' });
  assert.ok(await holding.renew('m/r3'));
  assert.ok((await a.pttl(keys.lease('m/r3'))) > 20_000, 'the hold stands');

  // Two jobs of one worker on the same row (a row job handing over to its download job): one at a time here too.
  assert.equal((await second.lease('m/r2')).held, true);
  assert.equal((await second.lease('m/r2')).held, false);
});

test('the shared budget: workers racing for the last dollars reserve exactly what fits, and bills settle in integer micro-dollars', async (t) => {
  const server = await startRedis(t);
  const clients = await Promise.all([connectRedis(server.url), connectRedis(server.url), connectRedis(server.url)]);
  t.after(() => clients.forEach((c) => c.disconnect()));
  const keys = fleetKeys('budget');
  await FleetBudget.open(clients[0], keys, { limitMicros: 4_000_000, spentMicros: 0, lastEventId: '0-0' });
  // Ten rows on three workers, each row leased by the worker that reserves it, each reserving $1.
  const stores = clients.map((c, i) => new FleetStore(c, keys, `w${i}`));
  const rows = Array.from({ length: 10 }, (_, i) => ({ key: `m/r${i}`, store: stores[i % 3]! }));
  for (const row of rows) assert.equal((await row.store.lease(row.key)).held, true);
  const budgets = stores.map((s, i) => new FleetBudget(clients[i]!, keys, 4_000_000, (key) => s.tokenOf(key)));
  const granted = await Promise.all(rows.map((row, i) => budgets[i % 3]!.reserve(row.key, 1_000_000)));
  assert.equal(granted.filter(Boolean).length, 4);
  // A job run again keeps its reservation: no second dollar.
  const at = granted.indexOf(true);
  const first = rows[at]!;
  const own = budgets[at % 3]!;
  assert.equal(await own.reserve(first.key, 1_000_000), true);
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '4000000');
  // A worker that does not hold the row settles nothing.
  assert.equal(await budgets[(at + 1) % 3]!.settle(first.key, 1_000_000, 0), false);
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '4000000');
  // Billed 840,000 micro-dollars instead of the million reserved: 160,000 come back.
  assert.equal(await own.settle(first.key, 1_000_000, 840_000), false);
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '3840000');
  // Its worker died before recording the bill: the next worker re-attaches and settles again, counted once.
  await own.commit(first.key, 1_000_000);
  assert.equal(await own.settle(first.key, 1_000_000, 840_000), false);
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '3840000');

  // A new night re-bases on what the journal says was spent, only with nothing in flight and no event since it was read.
  await FleetBudget.open(clients[0], keys, { limitMicros: 4_000_000, spentMicros: 840_000, lastEventId: '0-0' });
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '3840000', 'three reservations are still open');
  for (const [i, row] of rows.entries()) if (granted[i] && row !== first) await budgets[i % 3]!.settle(row.key, 1_000_000, 0);
  await FleetBudget.open(clients[0], keys, { limitMicros: 4_000_000, spentMicros: 840_000, lastEventId: '0-0' });
  assert.equal(await clients[0].hget(keys.budget, 'committed'), '840000');
});

test('a Redis that could lose an acknowledged write is refused before anything is enqueued or sent', async (t) => {
  const server = await startRedis(t);
  const redis = await connectRedis(server.url);
  t.after(() => redis.disconnect());
  await checkDurability(redis);
  await redis.config('SET', 'appendfsync', 'everysec');
  await assert.rejects(checkDurability(redis), (error: InputError) =>
    (error.problems[0]?.message ?? '').includes("appendfsync everysec: a crash could lose a create's record"),
  );
});

test('the shared request gate: three workers together never pass the limit in any window, on Redis time', async (t) => {
  const server = await startRedis(t);
  const clients = await Promise.all([connectRedis(server.url), connectRedis(server.url), connectRedis(server.url)]);
  t.after(() => clients.forEach((c) => c.disconnect()));
  const keys = fleetKeys('gate');
  const windowMs = 300;
  const gates = clients.map((c) => new FleetGate(c, keys, 4, windowMs));
  const admitted: number[] = [];
  const signal = new AbortController().signal;
  await Promise.all(Array.from({ length: 12 }, (_, i) => gates[i % 3]!.take(signal).then(() => admitted.push(Date.now()))));
  admitted.sort((x, y) => x - y);
  // The 5th admission comes at least a window after the 1st (less the time an answer takes to arrive here).
  for (let i = 4; i < admitted.length; i++)
    assert.ok(admitted[i]! - admitted[i - 4]! >= windowMs - 50, `admissions ${i - 4} and ${i}: ${admitted[i]! - admitted[i - 4]!} ms apart`);
});

test('a folder a single machine ran is not given to a fleet: the fleet would not know its runs', async (t) => {
  const server = await startRedis(t);
  const { simulator, file, pipelineFile, out, night, dir } = await nightFolder(t, rowsYaml(2));
  assert.equal((await night()).exitCode, 0);
  const enqueued = await runCli(['enqueue', file, '--redis', server.url, '--queue', 'mixed', '--pipeline', pipelineFile, '--out', out], {
    env: envFor(simulator),
    cwd: dir,
  });
  assert.equal(enqueued.code, 2);
  assert.match(enqueued.stderr, /single-machine journal: a fleet would not know its runs/);
});
