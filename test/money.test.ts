import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Report } from '../src/report/build.js';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, runCli, startSimulator, tempDir, workspace, write } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };
const EXAMPLES = path.join(ROOT, 'manifests');
const micros = (usd: number) => Math.round(usd * 1e6);
const ledgerMicros = (entries: { usd: number }[]) => entries.reduce((sum, e) => sum + micros(e.usd), 0);

test('clipmill estimate of the examples equals the hand-computed figure, split by audio mode, and counts nothing once done', async (t) => {
  const dir = await tempDir(t);
  // fal's list prices: $0.112/s silent, $0.168/s with audio, $0.196/s with voice. The examples hold 32 s silent, 18 s with audio, 11 s with voice.
  const pipelineFile = await write(
    dir,
    'fal-prices.yaml',
    `${fastPipeline()}\npricing:\n  silent_usd_per_second: 0.112\n  audio_usd_per_second: 0.168\n  voice_usd_per_second: 0.196\n`,
  );
  const out = path.join(dir, 'out');
  const cli = await runCli(['estimate', EXAMPLES, '--pipeline', pipelineFile, '--out', out, '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const json = JSON.parse(cli.stdout) as {
    total: { rows: number; to_pay: { micros: number; seconds: number }; by_audio_mode: Record<string, { micros: number; seconds: number }> };
  };
  assert.equal(json.total.rows, 10);
  assert.equal(json.total.to_pay.seconds, 61);
  assert.equal(json.total.by_audio_mode.silent?.micros, 32 * 112_000);
  assert.equal(json.total.by_audio_mode.audio?.micros, 18 * 168_000);
  assert.equal(json.total.by_audio_mode.voice?.micros, 11 * 196_000);
  assert.equal(json.total.to_pay.micros, 8_764_000);

  const text = await runCli(['estimate', EXAMPLES, '--pipeline', pipelineFile, '--out', out]);
  assert.match(
    text.stdout,
    /total\s+10 rows, 0 done; to pay: 10 rows, 61 s, \$8\.76 \(silent 6 rows\/32 s\/\$3\.58, audio 2 rows\/18 s\/\$3\.02, voice 2 rows\/11 s\/\$2\.16\)/,
  );

  const simulator = await startSimulator(t, { price_usd_per_second: 0.112, audio_price_usd_per_second: 0.168, voice_price_usd_per_second: 0.196 });
  const run = await runManifests({ manifests: [EXAMPLES], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(run.exitCode, 0);
  assert.equal(micros(run.report!.totals.actual_usd), 8_764_000);
  const after = await runCli(['estimate', EXAMPLES, '--pipeline', pipelineFile, '--out', out, '--json']);
  assert.equal((JSON.parse(after.stdout) as { total: { done: number; to_pay: { micros: number } } }).total.to_pay.micros, 0);
});

test('a budget below the estimate refuses to start with exit 3 and the numbers, and nothing reaches the provider', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', `${fastPipeline()}\nbudget_usd: 10\n`);
  const cli = await runCli(['run', EXAMPLES, '--pipeline', pipelineFile, '--out', path.join(dir, 'out'), '--max-cost', '5'], { env: envFor(simulator) });
  assert.equal(cli.code, 3, cli.stderr);
  assert.match(cli.stdout, /refusing to start new rows: the remaining work is estimated at \$8\.54, over the budget of \$5\.00\. Nothing was sent/);
  assert.equal(simulator.apiRequests, 0);
  assert.deepEqual(simulator.created, []);
});

test('--partial runs the rows that fit, in manifest order, and bills at most the budget', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const result = await runManifests({
    manifests: [EXAMPLES],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    maxCostUsd: 3,
    partial: true,
    ...quiet,
  });
  // retail-screens comes first: 6 s + 10 s + 4 s = $2.80; spring-launch's first row ($0.70) would pass $3.
  assert.equal(result.exitCode, 3);
  assert.deepEqual(
    result.report!.rows.filter((r) => r.status === 'done').map((r) => r.id),
    ['banner-pan', 'banner-voiceover', 'hero-short'],
  );
  assert.ok(ledgerMicros(simulator.billed) <= 3_000_000);
  assert.equal(ledgerMicros(simulator.billed), 2_800_000);
  assert.match(result.report!.rows.find((r) => r.id === 'hero-sunrise')?.error ?? '', /did not fit the budget/);
});

test('running out of credit mid-run stops submitting, lets runs in flight finish and exits 3; a rerun with more credit completes without paying twice', async (t) => {
  const simulator = await startSimulator(t, { credit_usd: 3, concurrency: 2 });
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('concurrency: 4', 'concurrency: 2'));
  const out = path.join(dir, 'out');
  const first = await runManifests({ manifests: [EXAMPLES], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(first.exitCode, 3);
  assert.match(first.stopped?.message ?? '', /402 INSUFFICIENT_CREDIT.*top up/);
  const billedFirst = ledgerMicros(simulator.billed);
  assert.ok(billedFirst > 0 && billedFirst <= 3_000_000);
  assert.equal(simulator.billed.length, simulator.created.length, 'runs in flight were allowed to finish');

  simulator.options.credit_usd = 100;
  const second = await runManifests({ manifests: [EXAMPLES], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(second.exitCode, 0);
  const perRow = new Map<string, number>();
  for (const e of simulator.billed)
    perRow.set((e.metadata as { clipmill_row: string }).clipmill_row, (perRow.get((e.metadata as { clipmill_row: string }).clipmill_row) ?? 0) + 1);
  assert.equal(perRow.size, 10);
  assert.ok([...perRow.values()].every((n) => n === 1));

  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(micros(report.totals.actual_usd), ledgerMicros(simulator.billed), 'the report matches the ledger to the micro-dollar');
  assert.equal(micros(report.money.earlier_runs_usd), billedFirst);
  assert.equal(micros(report.money.this_run_usd), ledgerMicros(simulator.billed) - billedFirst);
});

test('a prompt that a spreadsheet would run as a formula is neutralised in report.csv', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(
    dir,
    'm.csv',
    'id,image,prompt,duration\nevil,images/hero-landscape.jpg,"=HYPERLINK(""http://evil.example"",""click"")",3\nplus,images/hero-landscape.jpg,+1 555 0100 calls,3\n',
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const result = await runManifests({ manifests: [path.join(dir, 'm.csv')], pipelineFile, outDir: path.join(dir, 'out'), env: envFor(simulator), ...quiet });
  assert.equal(result.exitCode, 0);
  const csv = await readFile(path.join(dir, 'out', 'report.csv'), 'utf8');
  assert.ok(csv.includes(`"'=HYPERLINK(""http://evil.example"",""click"")"`), csv);
  assert.ok(csv.includes(`'+1 555 0100 calls`), csv);
  assert.ok(!/[,\n]=HYPERLINK/.test(csv));
});
