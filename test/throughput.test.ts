import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { nextPollDelayMs, RunTimeModel } from '../src/execute/polling.js';
import { runManifests } from '../src/commands/run.js';
import { newGateState, penalise, reserveSlot, RATE_WINDOW_MS } from '../src/execute/rate-gate.js';
import { fastPipeline, scriptedProxy, startSimulator, totalUsd, workspace, write } from './helpers.js';

function maxInWindow(times: readonly number[]): number {
  let best = 0;
  let start = 0;
  for (let end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= RATE_WINDOW_MS) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

test('rate gate: with work always waiting, no 60-second window exceeds the limit and the rate achieved is the limit', () => {
  const state = newGateState(120);
  const slots = Array.from({ length: 1000 }, () => reserveSlot(state, 0));
  assert.equal(maxInWindow(slots), 120);
  const perMinute = (slots.length - 1) / ((slots.at(-1)! - slots[0]!) / 60_000);
  assert.ok(perMinute >= 0.99 * 120 && perMinute <= 120, `achieved ${perMinute.toFixed(1)}/min`);
});

test('rate gate: a 429 holds everybody off, halves the rate, and the rate recovers; a burst after a pause still respects the window', () => {
  const state = newGateState(60);
  reserveSlot(state, 0);
  penalise(state, 1000, 5000);
  const afterPenalty = reserveSlot(state, 1000);
  assert.equal(afterPenalty, 6000, 'nobody sends during the hold-off');
  assert.equal(reserveSlot(state, 1000) - afterPenalty, 2000, 'then at half the rate (2 s apart instead of 1 s)');
  const later = reserveSlot(state, 120_000);
  assert.equal(reserveSlot(state, 120_000) - later, 1000, 'recovered after 30 s');

  const bursty = newGateState(10);
  const times = [...Array.from({ length: 10 }, () => reserveSlot(bursty, 0)), ...Array.from({ length: 30 }, () => reserveSlot(bursty, 59_000))];
  assert.equal(maxInWindow(times), 10);
});

test('poll timing: a run is polled when it should be done, often just after, less as it drags on; queued runs wait a full run time', () => {
  const bounds = { floorMs: 100, ceilingMs: 60_000 };
  assert.equal(nextPollDelayMs({ now: 0, state: 'queued' }, bounds), 100, 'nothing learned: start at the floor');
  assert.equal(nextPollDelayMs({ now: 0, state: 'running', previousDelayMs: 400 }, bounds), 600, 'and widen');
  assert.equal(nextPollDelayMs({ now: 0, state: 'queued', expectedRunMs: 90_000 }, bounds), 60_000, 'a guess never waits beyond the ceiling');
  assert.equal(
    nextPollDelayMs({ now: 10_000, state: 'running', startedAtMs: 0, expectedRunMs: 90_000 }, bounds),
    80_900,
    'a known start: one poll just after the expected end (1% margin)',
  );
  assert.equal(nextPollDelayMs({ now: 90_900, state: 'running', startedAtMs: 0, expectedRunMs: 90_000 }, bounds), 4_500, 'overdue: 5% of a run');
  assert.equal(nextPollDelayMs({ now: 150_900, state: 'running', startedAtMs: 0, expectedRunMs: 90_000 }, bounds), 10_500, 'then less often');
  assert.equal(nextPollDelayMs({ now: 0, state: 'queued', expectedRunMs: 30_000 }, bounds), 30_300);
  assert.equal(
    nextPollDelayMs({ now: 0, state: 'queued', justCreated: true, expectedRunMs: 30_000, expectedQueueMs: 2_000 }, bounds),
    32_320,
    'just created: its wait to start too',
  );
  assert.equal(
    nextPollDelayMs({ now: 0, state: 'queued', justCreated: true, expectedRunMs: 90_000 }, bounds),
    90_900,
    'just created with a learned run time: not cut by the ceiling (that would cost a second poll per row)',
  );
});

test('run time model: learns a fixed latency, and time proportional to seconds of video', () => {
  const fixed = new RunTimeModel();
  for (const s of [3, 8, 15, 5]) fixed.observe(s, 1500);
  assert.equal(Math.round(fixed.expectedMs(10)!), 1500);
  const proportional = new RunTimeModel();
  for (const s of [3, 5, 10, 15]) proportional.observe(s, 20_000 + 10_000 * s);
  assert.equal(Math.round(proportional.expectedMs(8)!), 100_000);
  assert.equal(new RunTimeModel().expectedMs(5), undefined);
  assert.equal(new RunTimeModel().expectedQueueMs(), undefined, 'no queue wait until a provider tells one');
  for (const queueMs of [40, 60, 3_600_000]) fixed.observe(5, 1500, queueMs);
  assert.equal(fixed.expectedQueueMs(), 60, 'the median: one run that waited an hour moves it little');
});

test('a 429 without Retry-After then a 201 makes one run; a reset poll and a 503 with an HTTP-date Retry-After are retried; the row completes', async (t) => {
  const simulator = await startSimulator(t);
  const retryAt = new Date(Date.now() + 3_600_000).toUTCString();
  const proxy = await scriptedProxy(t, simulator.url, (_m, key, n) => {
    if (key.endsWith('/runs') && key.startsWith('POST') && n === 1) return { status: 429, body: { code: 'RATE_LIMITED', message: 'slow down', errors: null } };
    if (key === 'GET /v1/runs/:id' && n === 1) return 'reset';
    if (key === 'GET /v1/runs/:id' && n === 2)
      return { status: 503, headers: { 'retry-after': retryAt }, body: { code: 'MODEL_UNAVAILABLE', message: 'busy', errors: null } };
    return 'pass';
  });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('max_attempts: 3', 'max_attempts: 4'));
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(result.exitCode, 0, `${logs.join('\n')}\n${proxy.seen.join('\n')}`);
  assert.equal(simulator.created.length, 1, 'the 429 create made nothing, and the retry made exactly one run');
  assert.ok(
    logs.some((l) => l.includes('Runflow 429 RATE_LIMITED: slow down; nothing was created, retrying')),
    logs.join('\n'),
  );
  // The one-hour Retry-After was honoured up to the cap (retry.max_delay, 50 ms here), not ignored and not waited out.
  assert.deepEqual(proxy.seen.filter((s) => s.startsWith('GET /v1/runs/:id')).slice(0, 3), [
    'GET /v1/runs/:id #1 reset',
    'GET /v1/runs/:id #2 503',
    'GET /v1/runs/:id #3 pass',
  ]);
});

test('under the fault mix (5xx, 429, resets, cut downloads) every row completes, none is paid twice, and the report matches the ledger', async (t) => {
  const simulator = await startSimulator(t, { error_rate: 0.1, rate_limit_rate: 0.05, reset_rate: 0.02, truncate_rate: 0.05, seed: 7 });
  const dir = await workspace(t);
  const rows = Array.from({ length: 30 }, (_, i) => `  - {id: r${i}, image: images/hero-landscape.jpg, prompt: "shot ${i}", duration: ${3 + (i % 13)}}`);
  const file = await write(dir, 'm.yaml', ['rows:', ...rows].join('\n'));
  const pipelineFile = await write(
    dir,
    'pipeline.yaml',
    fastPipeline()
      .replace('max_attempts: 3', 'max_attempts: 6')
      .replace('concurrency: 4', 'concurrency: 10')
      .replace('request_timeout: 5s', 'request_timeout: 1s'),
  );
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: simulator.url },
    print: () => {},
    logLine: () => {},
  });
  assert.equal(result.exitCode, 0);
  assert.equal(result.report?.totals.done, 30);
  const perRow = new Map<string, number>();
  for (const e of simulator.billed)
    perRow.set((e.metadata as { clipmill_row: string }).clipmill_row, (perRow.get((e.metadata as { clipmill_row: string }).clipmill_row) ?? 0) + 1);
  assert.equal(perRow.size, 30);
  assert.ok(
    [...perRow.values()].every((n) => n === 1),
    'every row billed exactly once',
  );
  assert.equal(simulator.created.length, 30, 'creates whose answer was lost were found again, not repeated');
  assert.ok(
    simulator.stats.errors + simulator.stats.resets + simulator.stats.rateLimitedRandom + simulator.stats.truncatedDownloads > 5,
    'faults were injected',
  );
  assert.equal(result.report?.totals.actual_usd, totalUsd(simulator.billed));
});

test('job_timeout: a run still running at its deadline is recorded as timed out, and the next run finds it finished instead of paying again', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: slow, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('job_timeout: 30s', 'job_timeout: 100ms'));
  const run = () =>
    runManifests({
      manifests: [file],
      pipelineFile,
      outDir: path.join(dir, 'out'),
      env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: simulator.url },
      print: () => {},
      logLine: () => {},
    });
  const first = await run();
  assert.equal(first.exitCode, 1);
  assert.match(first.report?.rows[0]?.error ?? '', /JOB_TIMEOUT: run [0-9a-f-]{36} did not finish running within 100ms \(job_timeout\)/);
  await new Promise((resolve) => setTimeout(resolve, 350));
  const second = await run();
  assert.equal(second.plan?.counts.reattach, 1);
  assert.equal(second.exitCode, 0);
  assert.equal(simulator.created.length, 1);
});

test('Ctrl-C ends every wait at once: a run polling every 30 s stops within moments', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 60_000 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: long, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('poll_interval: 10ms', 'poll_interval: 30s'));
  const controller = new AbortController();
  const started = performance.now();
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: simulator.url },
    signal: controller.signal,
    print: () => {},
    logLine: (l) => {
      if (l.includes('submitted as')) controller.abort();
    },
  });
  assert.equal(result.exitCode, 130);
  assert.ok(performance.now() - started < 5000, 'did not wait for the 30 s poll');
  assert.equal(result.report?.rows[0]?.status, 'in_flight');
});

test('a run whose status cannot be read stays in flight (it may still be billed) and the next run re-attaches to it', async (t) => {
  const simulator = await startSimulator(t);
  const proxy = await scriptedProxy(t, simulator.url, (_m, key) =>
    key === 'GET /v1/runs/:id' ? { status: 200, body: { id: 'run_0000', status_code: 'mystery' } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    print: () => {},
    logLine: () => {},
  });
  assert.equal(first.exitCode, 1);
  assert.equal(first.report?.rows[0]?.status, 'in_flight', 'not written off as failed');
  const second = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: simulator.url },
    retryFailed: true,
    print: () => {},
    logLine: () => {},
  });
  assert.equal(second.exitCode, 0);
  assert.equal(second.plan?.counts.reattach, 1);
  assert.equal(simulator.created.length, 1, 'never paid twice, even with --retry-failed');
});
