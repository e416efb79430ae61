import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Report } from '../src/report/build.js';
import { runManifests } from '../src/commands/run.js';
import { envFor, fastPipeline, runCli, startSimulator, workspace, write, rowsYaml } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };
const micros = (usd: number) => Math.round(usd * 1e6);
const billedMicros = (entries: { usd: number }[]) => entries.reduce((sum, e) => sum + micros(e.usd), 0);
/** n rows of 3 s each: $0.42 at the pipeline's $0.14/s. */
const rows = (n: number, from = 0) => rowsYaml(n, { from });

test("the budget is the night's: three reruns in one period spend at most the budget, and re-attached runs count", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(4));
  const pipelineFile = await write(dir, 'pipeline.yaml', `${fastPipeline()}\nbudget_usd: 2\n`);
  const out = path.join(dir, 'out');
  const run = (extra: Partial<Parameters<typeof runManifests>[0]> = {}) =>
    runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), partial: true, ...quiet, ...extra });
  assert.equal((await run()).exitCode, 0, 'four rows, $1.68 of $2');
  await write(dir, 'm.yaml', rows(8));
  const second = await run();
  assert.equal(second.exitCode, 3, 'only $0.32 is left in the period: no new row fits');
  assert.equal(second.plan?.counts.over_budget, 4);
  await write(dir, 'm.yaml', rows(12));
  await run();
  assert.equal(billedMicros(simulator.billed), 1_680_000, 'three invocations, one budget');

  const text = await runCli(['estimate', file, '--pipeline', pipelineFile, '--out', out]);
  assert.match(text.stdout, /budget \$2\.00, \$1\.68 already spent or committed in its period, \$0\.32 left: the estimate is \$3\.04 over/);

  // A budget per invocation (budget_period: run) gives each its own $2, as before.
  const perRun = await write(dir, 'per-run.yaml', `${fastPipeline()}\nbudget_usd: 2\nbudget_period: run\n`);
  const fresh = await runManifests({ manifests: [file], pipelineFile: perRun, outDir: out, env: envFor(simulator), partial: true, ...quiet });
  assert.equal(fresh.plan?.counts.submit, 4, 'r4..r7 fit a fresh $2');
});

test('runs in flight from a killed run count against the budget of the rerun', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(3));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('concurrency: 4', 'concurrency: 2'));
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  let submitted = 0;
  await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    signal: controller.signal,
    print: () => {},
    logLine: (l) => (l.includes('submitted as') && ++submitted === 2 ? controller.abort() : undefined),
  });
  assert.equal(simulator.created.length, 2, 'two runs exist, $0.84, not yet billed');
  const lines: string[] = [];
  const rerun = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    maxCostUsd: 1,
    print: (l) => lines.push(l),
    logLine: () => {},
  });
  assert.equal(rerun.exitCode, 3, lines.join('\n'));
  assert.match(lines.join('\n'), /over the budget of \$1\.00, of which \$0\.84 is already spent or committed.* Runs already made are still fetched/);
  assert.equal(simulator.created.length, 2, 'the third row was not created: $0.84 + $0.42 would pass $1');
  assert.equal(rerun.plan?.counts.reattach, 2, 'the runs in flight are not held back by the budget');
});

test("a provider billing above the pipeline's price: flagged, the runs in flight are re-priced and later reservations use the price seen", async (t) => {
  const simulator = await startSimulator(t, { price_usd_per_second: 0.28 }); // twice the pipeline's $0.14/s
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(4));
  // One run at a time: the bound holds exactly. With more in flight, those already created before the first bill are billed at the new price (README: Money).
  const pipelineFile = await write(
    dir,
    'pipeline.yaml',
    `${fastPipeline().replace('concurrency: 4', 'concurrency: 1')}\nbudget_usd: 2\ndefaults:\n  generate_audio: false\n`,
  );
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(result.exitCode, 3);
  assert.ok(billedMicros(simulator.billed) <= 2_000_000, `billed ${billedMicros(simulator.billed)}`);
  assert.equal(simulator.billed.length, 2, '$0.84 + $0.84; a third would pass $2');
  assert.ok(
    logs.some((l) => /cost_alert|more than 1\.5× its estimate/.test(l)),
    logs.join('\n'),
  );
  assert.ok(result.report?.rows.some((r) => r.cost_alert));
});

test("the report equals the invoice: an edited row's earlier run stays billed in report.json and ledger.csv, one line per billed run", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(2));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  await write(dir, 'm.yaml', rows(2).replace('prompt: "row 0"', 'prompt: "row 0, second idea"'));
  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(second.exitCode, 0);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(micros(report.money.billed_usd), billedMicros(simulator.billed), 'every billed run, as the provider billed it');
  assert.equal(report.billed_runs.length, 3);
  assert.equal(report.billed_runs.filter((r) => r.superseded).length, 1);
  assert.equal(micros(report.money.superseded_usd), 420_000);
  const ledger = (await readFile(path.join(out, 'ledger.csv'), 'utf8'))
    .replace(/^\uFEFF/, '')
    .trim()
    .split('\r\n');
  assert.equal(ledger[0], 'run_id,created_at,night,manifest,id,request,seconds,audio_mode,cost_usd,cost_source,estimated_usd,superseded');
  assert.equal(ledger.length, 4);
  assert.deepEqual(new Set(ledger.slice(1).map((l) => l.split(',')[0])), new Set(simulator.billed.map((b) => b.id)));
  const rebuilt = await runCli(['report', '--out', out]);
  assert.equal(rebuilt.code, 0);
  assert.equal((JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report).billed_runs.length, 3, 'clipmill report rebuilds the same ledger');
});

test('"done" is a file: a deleted video that cannot be fetched again is owed in every report, exit 1, with what to do', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(1));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  assert.equal((await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet })).exitCode, 0);
  await rm(path.join(out, 'm', 'r0.mp4'));
  simulator.options.truncate_rate = 1; // every download is cut short tonight
  const printed: string[] = [];
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: (l) => printed.push(l), logLine: () => {} });
  assert.equal(result.exitCode, 1);
  assert.equal(result.report?.rows[0]?.status, 'owed');
  assert.match(result.report?.rows[0]?.error ?? '', /missing or changed on disk and could not be fetched again: run again/);
  assert.match(printed.join('\n'), /1 paid videos are owed/);
  const html = await readFile(path.join(out, 'report.html'), 'utf8');
  assert.doesNotMatch(html, /<video[^>]+r0\.mp4/, 'no dead player');
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /`m\/r0` .*owed/);
  assert.equal(simulator.created.length, 1);
});

test('with several runs in flight when the first bill shows a higher price, their reservations grow at once and no new create is sent past the budget', async (t) => {
  const simulator = await startSimulator(t, { price_usd_per_second: 0.28, concurrency: 2, latency_ms: 50 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows(8));
  const pipelineFile = await write(
    dir,
    'pipeline.yaml',
    `${fastPipeline().replace('concurrency: 4', 'concurrency: 2')}\nbudget_usd: 2\ndefaults:\n  generate_audio: false\n`,
  );
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: path.join(dir, 'out'), env: envFor(simulator), partial: true, ...quiet });
  assert.equal(result.exitCode, 3);
  // Two creates go out at the estimate ($0.42 each) before any bill; after the first bill ($0.84) the second is re-priced and at most one more fits.
  assert.ok(billedMicros(simulator.billed) <= 2_000_000, `billed ${billedMicros(simulator.billed)}`);
  assert.ok(simulator.created.length <= 3, `${simulator.created.length} runs created`);
});
