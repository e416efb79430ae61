import assert from 'node:assert/strict';
import { appendFile, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { LOCK_WATCH_MS, readLockStatus, readStatus } from '../src/commands/status.js';
import { compactJournal } from '../src/state/compact.js';
import { foldJournalFile } from '../src/state/journal-file.js';
import { Journal } from '../src/state/journal.js';
import { acquireLock } from '../src/state/lock.js';
import { InputError } from '../src/load/problem.js';
import { readOwnIdentity } from '../src/state/lock/proc.js';
import type { Report } from '../src/report/build.js';
import type { Status, StatusRow } from '../src/report/status-model.js';
import { renderStatus, ROWS_SHOWN } from '../src/report/status.js';
import { NO_LOCK } from '../src/report/status-lock.js';
import { connectRedis, fleetKeys } from '../src/fleet/redis.js';
import { envFor, fastPipeline, nightFolder, rowsYaml, runCli, startCli, startSimulator, tempDir, workspace, write } from './helpers.js';
import { startRedis } from './redis-server.js';

const cents = (usd: number) => Math.round(usd * 100);

async function until(what: string, check: () => boolean | Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What `run --dry-run` prints as left of the budget (\"$4.16 left\"), or the whole limit when nothing is committed. */
async function dryRunLeft(o: { file: string; pipelineFile: string; out: string; env: NodeJS.ProcessEnv }): Promise<string> {
  const printed: string[] = [];
  await runManifests({ manifests: [o.file], pipelineFile: o.pipelineFile, outDir: o.out, env: o.env, dryRun: true, print: (line) => printed.push(line) });
  const text = printed.join('\n');
  const found = /, (\$\d+\.\d\d) left:/.exec(text)?.[1] ?? /^budget (\$\d+\.\d\d):/m.exec(text)?.[1];
  assert.ok(found, text);
  return found;
}

test('status mid-run: the holder alive, every row of the plan, runs in flight with their ids, money reserved; after the run, money as the report says', async (t) => {
  const { simulator, dir, file, pipelineFile, out, night } = await nightFolder(t, rowsYaml(5), {
    pipeline: 'poll_max_interval: 20ms\nbudget_usd: 20\n',
  });
  await write(dir, 'pipeline.yaml', (await readFile(pipelineFile, 'utf8')).replace('concurrency: 4', 'concurrency: 2'));
  simulator.hold();
  let inFlight!: () => void;
  const twoSubmitted = new Promise<void>((resolve) => (inFlight = resolve));
  let submitted = 0;
  const running = night({ logLine: (line) => void (line.includes('submitted as') && ++submitted === 2 && inFlight()) });
  await twoSubmitted;

  // Mid-run, while the run holds the folder (read from disk as another process would; the CLI itself is run below).
  const mid = await readStatus({ manifests: [], outDir: out, pipelineFile });
  const midText = renderStatus(await readStatus({ manifests: [], outDir: out }));
  const token = (JSON.parse(await readFile(path.join(out, '.clipmill', 'lock'), 'utf8')) as { token: string }).token;
  simulator.release();
  assert.equal(mid.source, 'last_plan');
  assert.deepEqual([mid.lock?.held, mid.lock?.pid, mid.lock?.host, mid.lock?.alive, mid.lock?.judged_by], [true, process.pid, hostname(), true, 'process']);
  assert.ok((mid.lock?.heartbeat_age_seconds ?? 99) < 10);
  assert.ok(!JSON.stringify(mid).includes(token) && !midText.includes(token), 'the lock token is never shown');
  assert.equal(mid.rows.length, 5, 'every row of the plan, journaled or not');
  const flying = mid.rows.filter((r) => r.state === 'in_flight');
  assert.deepEqual(flying.map((r) => r.run_id).sort(), simulator.created.map((c) => c.id).sort());
  assert.deepEqual(
    mid.rows.filter((r) => r.state === 'new').map((r) => r.key),
    ['m/r2', 'm/r3', 'm/r4'],
  );
  assert.ok(flying.every((r) => r.age_seconds !== null && r.age_seconds < 60 && r.reserved_usd === 0.42));
  assert.deepEqual([cents(mid.money.reserved_usd), mid.money.reserved_runs, mid.money.spent_tonight_usd], [84, 2, 0]);
  assert.equal(cents(mid.money.budget?.left_usd ?? 0), 2000 - 84);
  assert.match(midText, new RegExp(`lock: held by pid ${process.pid} on .*; last heartbeat \\d+s ago .*; alive \\(its process runs on this host\\)`));
  assert.match(midText, /m: 5 rows, 2 in flight, 3 pending/);
  assert.match(midText, /reserved\s+\$0\.84\s+2 runs in flight or timed out/);
  assert.match(midText, /in flight\s+m\/r0\s+run [0-9a-f-]{36}; the run holding the folder is waiting for it \(\d+s ago\)/);

  assert.equal((await running).exitCode, 0);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  const cli = await runCli(['status', '--out', out, '--pipeline', pipelineFile, '--json'], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  const after = JSON.parse(cli.stdout) as Status;
  assert.equal(after.lock?.held, false);
  assert.deepEqual(
    after.rows.map((r) => r.state),
    ['done', 'done', 'done', 'done', 'done'],
  );
  assert.equal(cents(after.money.spent_total_usd), cents(report.money.billed_usd));
  assert.equal(cents(after.money.spent_tonight_usd), cents(report.money.this_run_usd));
  assert.deepEqual([after.money.reserved_usd, cents(after.money.budget?.left_usd ?? 0)], [0, 2000 - cents(report.money.billed_usd)]);
  assert.deepEqual(
    after.rows.map((r) => r.cost_usd),
    report.rows.map((r) => r.actual_usd),
  );
  assert.match(renderStatus(after), /lock: no run holds this folder/);
  // --max-cost as run takes it (the lower of it and budget_usd), and every figure in integer micro-dollars too.
  const capped = await runCli(['status', '--out', out, '--pipeline', pipelineFile, '--max-cost', '1', '--json'], { cwd: dir });
  assert.equal(capped.code, 0, capped.stderr);
  const money = (JSON.parse(capped.stdout) as Status).money;
  const billedMicros = Math.round(report.money.billed_usd * 1e6);
  assert.deepEqual(
    [money.budget?.limit_micros, money.spent_total_micros, money.budget?.left_micros, money.reserved_micros],
    [1_000_000, billedMicros, 1_000_000 - billedMicros, 0],
  );
  assert.deepEqual(
    after.rows.map((r) => r.cost_micros),
    after.rows.map((r) => Math.round((r.cost_usd ?? 0) * 1e6)),
  );

  // A row added to the manifest: named, status shows it pending; the next night spends only on it, and "tonight" is that night's.
  await write(dir, 'm.yaml', rowsYaml(6));
  const journal = await readFile(path.join(out, '.clipmill', 'journal.jsonl'));
  const named = await readStatus({ manifests: [file], outDir: out, pipelineFile });
  assert.deepEqual(await readFile(path.join(out, '.clipmill', 'journal.jsonl')), journal, 'status writes nothing');
  const bad = await write(dir, 'bad.yaml', 'rows:\n  - {id: x, image: images/hero-landscape.jpg, duration: 5}\n');
  await assert.rejects(readStatus({ manifests: [bad], outDir: out }), (error: unknown) => {
    assert.ok(error instanceof InputError, 'the manifests named are validated as run does');
    assert.deepEqual([error.problems[0]?.file, error.problems[0]?.line], [bad, 2]);
    return true;
  });
  assert.equal(named.source, 'manifests');
  assert.deepEqual(
    named.rows.map((r) => r.state),
    ['done', 'done', 'done', 'done', 'done', 'new'],
  );
  assert.equal(simulator.created.length, 5, 'status sends nothing');
  const second = await night();
  assert.equal(second.exitCode, 0);
  const last = await readStatus({ manifests: [], outDir: out });
  assert.equal(cents(last.money.spent_tonight_usd), cents(second.report?.money.this_run_usd ?? 0));
  assert.deepEqual([cents(last.money.spent_tonight_usd), cents(last.money.spent_total_usd), last.money.billed_runs], [42, 252, 6]);
});

test("the lock as status reads it: a live holder, a dead one on this host, another host's by watching its heartbeat (never by our clock: unknown, never gone); never the token", async (t) => {
  const out = await tempDir(t);
  const lock = path.join(out, '.clipmill', 'lock');
  await mkdir(path.dirname(lock));
  assert.deepEqual(await readLockStatus(out), NO_LOCK);

  const record = (pid: number, host: string, more = {}) =>
    JSON.stringify({ pid, host, started_at: '2026-11-24T22:00:00.000Z', token: 'feedfacefeedface', ...more });
  // As a run writes it: with its process's start time, so a live pid is told apart from a reused one.
  await writeFile(lock, record(process.pid, hostname(), await readOwnIdentity()));
  const live = await readLockStatus(out);
  assert.deepEqual([live.alive, live.judged_by, live.pid], [true, 'process', process.pid]);

  await writeFile(lock, record(process.pid, hostname()));
  const older = await readLockStatus(out);
  assert.deepEqual([older.alive, older.judged_by], [true, 'heartbeat'], "an older lock without a start time: by its heartbeat, on this host's one clock");
  await writeFile(lock, record(2 ** 22 + 12345, hostname())); // above any pid_max: no such process
  const dead = await readLockStatus(out);
  assert.deepEqual([dead.alive, dead.judged_by], [false, 'process']);
  assert.match(renderStatus(statusWith([], dead)), /gone \(its process no longer runs: the next run takes the lock over\)/);

  // Another host whose clock runs 5 minutes behind ours: its live heartbeat looks 5 minutes old, and moves while status watches it.
  await writeFile(lock, record(4242, 'another-host'));
  const behind = (ms: number) => new Date(Date.now() - 5 * 60_000 + ms);
  await utimes(lock, behind(0), behind(0));
  const waits: number[] = [];
  const beat = async (ms: number) => {
    waits.push(ms);
    await utimes(lock, behind(5_000), behind(5_000));
  };
  const beating = await readLockStatus(out, { pause: beat });
  assert.deepEqual(waits, [LOCK_WATCH_MS], 'status watches one heartbeat (5 s) and a margin');
  assert.equal(LOCK_WATCH_MS, 7_000);
  assert.deepEqual([beating.alive, beating.judged_by, beating.heartbeat_age_seconds], [true, 'watch', null]);
  assert.match(
    renderStatus(statusWith([], beating)),
    /last heartbeat at \S+ by its clock; alive \(on another host: its heartbeat moved while status watched it for \d+ s\)/,
  );

  // Standing still while watched: unknown, never "gone" (a paused VM keeps its lock; a run waits 30 s before taking it over).
  const still = await readLockStatus(out, { watchMs: 20 });
  assert.deepEqual([still.alive, still.judged_by, still.watched_seconds], [null, 'watch', 0]);
  const line = renderStatus(statusWith([], still));
  assert.match(
    line,
    /lock: held by pid 4242 on another-host, since 2026-11-24T22:00:00\.000Z; .*unknown \(on another host, clocks may differ: its heartbeat did not move/,
  );
  assert.doesNotMatch(line, /gone/);
  assert.ok(!JSON.stringify(still).includes('feedface') && !line.includes('feedface'));

  await writeFile(lock, '{"pid": 12');
  assert.match(renderStatus(statusWith([], await readLockStatus(out))), /a lock file is there but cannot be read/);
});

function row(i: number, state: StatusRow['state']): StatusRow {
  return {
    manifest: 'big',
    id: `r${i}`,
    key: `big/r${i}`,
    line: i + 2,
    state,
    label: state === 'failed' ? 'failed' : 'done',
    run_id: `run-${i}`,
    last_event_at: null,
    age_seconds: 3700,
    estimated_usd: 0.42,
    estimated_micros: 420_000,
    cost_usd: state === 'failed' ? 0 : 0.42,
    cost_micros: state === 'failed' ? 0 : 420_000,
    cost_source: state === 'failed' ? 'not_billed' : 'provider',
    reserved_usd: null,
    reserved_micros: null,
    attempts: 1,
    detail: state === 'failed' ? 'MODEL_ERROR: the model failed' : null,
  };
}

function statusWith(rows: StatusRow[], lock = NO_LOCK): Status {
  const done = rows.filter((r) => r.state === 'done').length;
  const counts = { done, damaged: 0, paid: 0, in_flight: 0, unanswered: 0, new: 0, timed_out: 0, failed: rows.length - done };
  return {
    out: '/srv/out',
    source: 'last_plan',
    fleet: null,
    session: '2026-11-24T22:00:00.000Z',
    generated_at: '2026-11-25T06:00:00.000Z',
    lock,
    money: {
      spent_tonight_usd: 1,
      spent_tonight_micros: 1_000_000,
      tonight: { started_at: '2026-11-24T22:00:00.000Z', by: 'run', rows: rows.length, rows_worked: rows.length, rows_left_alone: 0 },
      spent_in_period_usd: 1,
      spent_in_period_micros: 1_000_000,
      period: '12h',
      spent_total_usd: 2,
      spent_total_micros: 2_000_000,
      billed_runs: 3,
      reserved_usd: 0,
      reserved_micros: 0,
      reserved_runs: 0,
      unanswered_usd: 0,
      unanswered_micros: 0,
      unanswered_creates: 0,
      unpriced_rows: 0,
      budget: null,
    },
    manifests: rows.length ? [{ name: 'big', rows: rows.length, counts }] : [],
    rows,
  };
}

test('status --rows lists 150,000 rows (a pure render, no stack overflow)', () => {
  const many = Array.from({ length: 150_000 }, (_, i) => row(i, i % 2 === 0 ? 'failed' : 'done'));
  const all = renderStatus(statusWith(many), { allRows: true });
  assert.equal(all.split('\n').filter((l) => /^ {2}big\/r\d+ /.test(l)).length, 150_000);
  assert.match(all, /big\/r149999 +done/);
  assert.match(renderStatus(statusWith(many)), /150000 rows: --rows lists every row/);
});

test('a long night stays readable: counts, then rows needing attention (capped), every row only with --rows or when few', () => {
  const many = Array.from({ length: 200 }, (_, i) => row(i, i % 3 === 0 ? 'failed' : 'done'));
  const text = renderStatus(statusWith(many));
  assert.match(text, /big: 200 rows, 133 done, 67 failed/);
  assert.equal(text.split('\n').filter((l) => l.startsWith('  failed ')).length, ROWS_SHOWN);
  assert.match(text, /… and 17 more \(--rows lists them all, --json too\)/);
  assert.match(text, /200 rows: --rows lists every row, --json has them all/);
  assert.doesNotMatch(text, /every row:/);
  const all = renderStatus(statusWith(many), { allRows: true });
  assert.equal(all.split('\n').filter((l) => /^ {2}big\/r\d+ /.test(l)).length, 200);
  assert.match(all, /big\/r0 +failed +run-0 +1h01m ago +not billed/);
  assert.match(all, /big\/r1 +done +run-1 +1h01m ago +\$0\.42/);
  const few = renderStatus(statusWith(many.slice(0, 10)));
  assert.match(few, /every row:/);
  assert.match(few, /money:\n {2}spent tonight {2}\$1\.00 .*\n {2}spent in all {3}\$2\.00 +3 billed runs/);
});

test('budget left is what run --dry-run says is left: a run in flight and one timed out are both held; a run in flight of a row the last plan dropped is held at its estimate', async (t) => {
  const { simulator, dir, file, pipelineFile, out, night } = await nightFolder(t, rowsYaml(3), { pipeline: 'budget_usd: 5\n' });
  simulator.hold();
  const interrupt = async (only: string[], submits: number) => {
    const stop = new AbortController();
    let seen = 0;
    await night({ only, signal: stop.signal, logLine: (line) => void (line.includes('submitted as') && ++seen === submits && stop.abort()) });
  };
  await interrupt(['m/r0', 'm/r1'], 2);
  // r0's run passes job_timeout, as a run records it: failed with its run id, which may still finish and be billed.
  const journal = await Journal.open(out);
  const r0 = journal.row('m/r0')!;
  await journal.append({
    type: 'failed',
    key: r0.key,
    request: r0.request,
    runId: r0.runId!,
    code: 'JOB_TIMEOUT',
    message: 'over job_timeout',
    attempt: 1,
    billed: false,
  });
  await journal.close();

  const status = await readStatus({ manifests: [], outDir: out, pipelineFile });
  assert.deepEqual(
    status.rows.map((r) => [r.key, r.state, r.reserved_usd]),
    [
      ['m/r0', 'timed_out', 0.42],
      ['m/r1', 'in_flight', 0.42],
      ['m/r2', 'new', null],
    ],
  );
  assert.equal(await dryRunLeft({ file, pipelineFile, out, env: envFor(simulator) }), '$4.16');
  assert.deepEqual([cents(status.money.reserved_usd), status.money.reserved_runs, cents(status.money.budget?.left_usd ?? 0)], [84, 2, 416]);
  assert.match(renderStatus(status), /budget left +\$4\.16 +of \$5\.00: \$0\.00 spent in its period \(12h\), \$0\.84 reserved/);

  // The manifest loses r1 while its run is in flight: the next plan does not name it, but the provider will bill it.
  await write(dir, 'm.yaml', rowsYaml(3).replace(/\n.*id: r1,.*/, ''));
  await interrupt([], 1);
  const dropped = await readStatus({ manifests: [], outDir: out, pipelineFile });
  assert.deepEqual(
    dropped.rows.map((r) => [r.key, r.state, r.reserved_usd]),
    [
      ['m/r0', 'timed_out', 0.42],
      ['m/r2', 'in_flight', 0.42],
      ['m/r1', 'in_flight', 0.42],
    ],
  );
  assert.deepEqual([cents(dropped.money.reserved_usd), dropped.money.reserved_runs, cents(dropped.money.budget?.left_usd ?? 0)], [126, 3, 500 - 126]);
});

test("budget_period run: status counts the period as run does (each run only its own), mid-run too: left equals run --dry-run's", async (t) => {
  const { simulator, dir, file, pipelineFile, out, night } = await nightFolder(t, rowsYaml(2), { pipeline: 'budget_usd: 5\nbudget_period: run\n' });
  await write(dir, 'pipeline.yaml', (await readFile(pipelineFile, 'utf8')).replace('concurrency: 4', 'concurrency: 1'));
  let submitted = 0;
  let inFlight!: () => void;
  const secondInFlight = new Promise<void>((resolve) => (inFlight = resolve));
  const running = night({
    logLine: (line) => {
      // r0 is paid for; r1's run is held queued once made.
      if (line.includes('succeeded')) simulator.hold();
      if (line.includes('submitted as') && ++submitted === 2) inFlight();
    },
  });
  await secondInFlight;
  const mid = await readStatus({ manifests: [], outDir: out, pipelineFile });
  const left = await dryRunLeft({ file, pipelineFile, out, env: envFor(simulator) });
  simulator.release();
  assert.equal((await running).exitCode, 0);
  assert.equal(cents(mid.money.spent_tonight_usd), 42, 'r0 is billed tonight');
  assert.deepEqual([mid.money.budget?.period, mid.money.budget?.spent_in_period_usd, cents(mid.money.reserved_usd)], ['run', 0, 42]);
  assert.equal(`$${(mid.money.budget?.left_usd ?? 0).toFixed(2)}`, left);
  assert.match(renderStatus(mid), /budget left +\$4\.58 +of \$5\.00: budget_period run: a run counts only what it spends itself/);
});

test("a fleet's budget is read from Redis: the enqueuer's limit, the workers' reservations and the committed sum", async (t) => {
  const server = await startRedis(t);
  const simulator = await startSimulator(t, { latency_ms: 20, concurrency: 10 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(3));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline('budget_usd: 5\n').replace('concurrency: 4', 'concurrency: 2'));
  const out = path.join(dir, 'out');
  const fleetArgs = ['--redis', server.url, '--queue', 'st', '--pipeline', pipelineFile, '--out', out];
  const env = envFor(simulator);
  const enqueued = await runCli(['enqueue', file, ...fleetArgs], { env, cwd: dir });
  assert.equal(enqueued.code, 0, enqueued.stderr);
  simulator.hold();
  const worker = startCli(['worker', ...fleetArgs, '--until-idle', '--log', 'json'], { env, cwd: dir });
  t.after(() => worker.child.kill());
  await until('two runs queued', () => simulator.created.length === 2);
  const redis = await connectRedis(server.url);
  t.after(() => redis.disconnect());
  const keys = fleetKeys('st');
  await until('two reservations', async () => (await redis.hlen(keys.reserved)) === 2);

  // No --pipeline: the budget is the one the enqueuer set for the fleet's workers.
  const fleet = { redisUrl: server.url, queue: 'st' };
  const mid = await readStatus({ manifests: [], outDir: out, fleet });
  const committed = Number(await redis.hget(keys.budget, 'committed'));
  const reserved = Object.values(await redis.hgetall(keys.reserved)).reduce((sum, micros) => sum + Number(micros), 0);
  simulator.release();
  assert.equal((await worker.done).code, 0);
  assert.deepEqual([mid.money.budget?.limit_usd, mid.money.budget?.counted_by, mid.money.reserved_runs], [5, 'fleet', 2]);
  assert.equal(mid.money.reserved_usd, reserved / 1e6);
  assert.equal(mid.money.budget?.left_usd, 5 - committed / 1e6);
  assert.deepEqual(
    mid.rows.filter((r) => r.reserved_usd !== null).map((r) => r.state),
    ['in_flight', 'in_flight'],
  );
  const midText = renderStatus(mid);
  assert.match(midText, /reserved +\$0\.84 +2 rows with a reservation open in the fleet's budget \(Redis\)/);
  // The words are a fleet's: its workers wait for the runs (no "next run"), and the plan is the last enqueue's.
  assert.match(
    midText,
    /^status of fleet "st" \(its journal in Redis; videos in .*\): rows of the fleet's last plan \(enqueued \S+\), and any other row its journal knows/,
  );
  assert.match(midText, /in flight +m\/r\d +run \S+; the fleet's workers wait for it \(a job a worker drops is re-attached by the worker that takes it\)/);
  assert.doesNotMatch(midText, /next run/);
  const named = await readStatus({ manifests: [file], pipelineFile, outDir: out, fleet });
  assert.equal(named.source, 'manifests');
  assert.match(renderStatus(named), /^status of fleet "st" .*: rows of the manifests named, as the fleet's journal knows them/);

  const after = await readStatus({ manifests: [], outDir: out, fleet });
  assert.deepEqual([after.money.reserved_usd, cents(after.money.spent_total_usd)], [0, 126]);
  assert.deepEqual([cents(after.money.budget?.spent_in_period_usd ?? 0), cents(after.money.budget?.left_usd ?? 0)], [126, 500 - 126]);
});

test("a row's age survives compaction: each compacted row state keeps the time of the row's last event, not the compaction's", async (t) => {
  const { simulator, out, night } = await nightFolder(t, rowsYaml(3));
  assert.equal((await night()).exitCode, 0);
  // Night 2 on one more row, stopped while its run is in flight.
  await write(path.dirname(out), 'm.yaml', rowsYaml(4));
  simulator.hold();
  const stop = new AbortController();
  await night({ signal: stop.signal, logLine: (line) => void (line.includes('submitted as') && stop.abort()) });
  const before = await readStatus({ manifests: [], outDir: out });

  const lock = await acquireLock(out);
  const hourLater = new Date(Date.now() + 3_600_000);
  const compacted = await compactJournal(out, hourLater).finally(() => lock.release());
  assert.ok(compacted, 'the journal was compacted');
  const lines = (await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8')).trim().split('\n');
  assert.equal(lines.filter((line) => line.includes('"type":"row_state"')).length, 4);
  const after = await readStatus({ manifests: [], outDir: out });
  assert.deepEqual(
    after.rows.map((r) => [r.key, r.state, r.last_event_at]),
    before.rows.map((r) => [r.key, r.state, r.last_event_at]),
  );
  assert.ok(after.rows.every((r) => r.last_event_at !== hourLater.toISOString() && (r.age_seconds ?? 99) < 60));
});

test('"spent tonight" says which run it is: a morning run --only counts its own, beside the budget period; a run holding the folder with no plan yet counts nothing of the night before', async (t) => {
  const { out, night, dir } = await nightFolder(t, rowsYaml(3));
  assert.equal((await night()).exitCode, 0);
  await write(dir, 'm.yaml', rowsYaml(4));
  assert.equal((await night({ only: ['m/r3'] })).exitCode, 0);
  const morning = await readStatus({ manifests: [], outDir: out });
  assert.deepEqual([cents(morning.money.spent_tonight_usd), cents(morning.money.spent_in_period_usd), morning.money.period], [42, 168, '12h']);
  assert.deepEqual(morning.money.tonight, { started_at: morning.session, by: 'run', rows: 4, rows_worked: 1, rows_left_alone: 0 });
  assert.match(
    renderStatus(morning),
    /spent tonight +\$0\.42 +billed runs created since the last run started, at \S+ \(clipmill run, or run --only\/retry: it worked on 1 of its 4 rows\); \$1\.68 in the last 12h \(budget_period\)/,
  );

  // A run takes the folder: its lock is there (a live process of this host), its plan not yet.
  const started = new Date().toISOString();
  const record = { pid: process.pid, host: hostname(), started_at: started, token: 'feedfacefeedface', ...(await readOwnIdentity()) };
  await writeFile(path.join(out, '.clipmill', 'lock'), JSON.stringify(record));
  const starting = await readStatus({ manifests: [], outDir: out });
  assert.deepEqual([starting.money.spent_tonight_usd, starting.money.tonight.by, starting.money.tonight.started_at], [0, 'unplanned', started]);
  assert.match(
    renderStatus(starting),
    /spent tonight +\$0\.00 +the run holding the folder \(started \S+\) has not recorded its plan yet: it has sent nothing; \$1\.68 in the last 12h/,
  );
});

test('a journal read while a run appends: its unfinished last line is left out, never the whole folder; a journal that cannot be read is an error, not "no rows"', async (t) => {
  const { out, night } = await nightFolder(t, rowsYaml(2));
  assert.equal((await night()).exitCode, 0);
  const file = path.join(out, '.clipmill', 'journal.jsonl');
  const lines = (await readFile(file, 'utf8')).trim().split('\n').length;
  // A run's next line, half written.
  await appendFile(file, '{"type":"submitting","at":"2026-11-25T07:00:00.000Z","key":"m/r9","requ');
  const torn = await readFile(file);
  const types: string[] = [];
  assert.equal(await foldJournalFile(file, (event) => types.push(event.type), { appending: true }), true, 'streamed up to the last whole line');
  assert.equal(types.length, lines);
  assert.equal(await foldJournalFile(file, () => {}), false, 'the writer itself (under the lock) still sees a torn tail, to cut it');
  const status = await readStatus({ manifests: [], outDir: out });
  assert.deepEqual(
    status.rows.map((r) => [r.key, r.state]),
    [
      ['m/r0', 'done'],
      ['m/r1', 'done'],
    ],
  );
  assert.deepEqual(await readFile(file), torn, 'status cuts nothing: the run is still writing that line');

  // A journal that is there but cannot be read is an error, never an empty folder.
  const broken = await tempDir(t);
  await mkdir(path.join(broken, '.clipmill', 'journal.jsonl'), { recursive: true });
  await assert.rejects(Journal.events(broken), { code: 'EISDIR' });
  await assert.rejects(readStatus({ manifests: [], outDir: broken }), { code: 'EISDIR' });
});
