import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { estimateManifests } from '../src/commands/estimate.js';
import { retryRows } from '../src/commands/retry.js';
import { InputError } from '../src/load/problem.js';
import { parseSelection, unmatchedPatterns } from '../src/plan/select.js';
import { rebuildReports } from '../src/commands/report.js';
import { envFor, nightFolder, rowsYaml, runCli, scriptedProxy } from './helpers.js';

const rowsCreated = (created: readonly { metadata: unknown }[]) => created.map((c) => (c.metadata as { clipmill_row: string }).clipmill_row).sort();

test('patterns: <manifest>/<id> with globs, ignoring case; a pattern without a slash is refused', () => {
  const { selection } = parseSelection(['spring/hero-*', '*/Outro'], '--only');
  assert.ok(selection);
  assert.equal(selection.matches('spring/hero-1'), true);
  assert.equal(selection.matches('Spring/HERO-2'), true);
  assert.equal(selection.matches('autumn/outro'), true);
  assert.equal(selection.matches('autumn/hero-1'), false);
  assert.equal(selection.matches('spring/hero.1x'), false, 'a dot is a dot, not any character');
  assert.deepEqual(unmatchedPatterns(selection, ['spring/hero-1']), ['*/Outro']);
  const bad = parseSelection(['hero-1', 'spring/'], '--only');
  assert.equal(bad.selection, undefined);
  assert.deepEqual(
    bad.problems.map((p) => p.field),
    ['hero-1', 'spring/'],
  );
});

test('--only runs the named rows and nothing else; the report still lists every row; a later run does the rest', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(4));
  const lines: string[] = [];
  const first = await night({ only: ['m/r1', 'M/R3'], print: (line) => lines.push(line) });
  assert.equal(first.exitCode, 0, 'the named rows are done: the exit code is about them');
  assert.deepEqual(rowsCreated(simulator.created), ['r1', 'r3']);
  assert.deepEqual(
    first.report?.rows.map((r) => [r.id, r.status]),
    [
      ['r0', 'skipped'],
      ['r1', 'done'],
      ['r2', 'skipped'],
      ['r3', 'done'],
    ],
  );
  assert.match(first.report?.rows[0]?.error ?? '', /not selected tonight/);
  assert.match(lines.join('\n'), /2 of 2 videos done/);
  assert.equal(first.plan?.counts.not_selected, 2);
  assert.equal(existsSync(path.join(out, 'm', 'r0.mp4')), false);

  const estimate = await estimateManifests({ manifests: [path.join(out, '..', 'm.yaml')], outDir: out, only: ['m/r0'], env: {} });
  assert.match(estimate.text, /to pay: 1 rows/);

  const rest = await night();
  assert.equal(rest.exitCode, 0);
  assert.deepEqual(rowsCreated(simulator.created), ['r0', 'r1', 'r2', 'r3'], 'each row paid once');
});

test('--only naming no row is refused before anything is written or sent', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(2));
  await assert.rejects(
    night({ only: ['m/r1', 'm/typo'] }),
    (error: unknown) => error instanceof InputError && error.problems.some((p) => p.field === 'm/typo' && p.message.includes('names no row')),
  );
  assert.equal(simulator.created.length, 0);
  assert.equal(existsSync(path.join(out, '.clipmill')), false, 'no journal, no lock: nothing was started');
});

test('clipmill retry submits only the named failed rows, within the budget; done rows are left with the reason', async (t) => {
  const { simulator, night, out, pipelineFile } = await nightFolder(t, rowsYaml(3));
  simulator.options.fail_rate = 1;
  assert.equal((await night()).exitCode, 1);
  simulator.options.fail_rate = 0;
  const quiet = { pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: () => {} };

  const poor = await retryRows(['m/r1'], { ...quiet, maxCostUsd: 0.1 });
  assert.equal(poor.exitCode, 3, 'a retry over the budget is refused');
  assert.equal(simulator.created.length, 3, 'nothing sent');

  const retried = await retryRows(['m/r1'], quiet);
  assert.equal(retried.exitCode, 0);
  assert.deepEqual(rowsCreated(simulator.created), ['r0', 'r1', 'r1', 'r2']);
  assert.deepEqual(
    retried.report?.rows.map((r) => r.status),
    ['failed', 'done', 'failed'],
  );

  const logged: string[] = [];
  const again = await retryRows(['m/r*'], { ...quiet, logLine: (line) => logged.push(line) });
  assert.match(logged.join('\n'), /m\/r1 is done: nothing to retry/);
  assert.deepEqual(rowsCreated(simulator.created), ['r0', 'r0', 'r1', 'r1', 'r2', 'r2'], 'the other failed rows, once each');
  assert.equal(again.exitCode, 0);
});

test('clipmill retry from the command line: rows named, manifests read from the journal; a folder with no run says so', async (t) => {
  const { simulator, night, out, pipelineFile } = await nightFolder(t, rowsYaml(2));
  const empty = await runCli(['retry', 'm/r0', '--pipeline', pipelineFile, '--out', path.join(out, '..', 'empty')], { env: envFor(simulator) });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /no run is recorded in this folder/);

  simulator.options.fail_rate = 1;
  await night();
  simulator.options.fail_rate = 0;
  const cli = await runCli(['retry', 'm/r0', '--pipeline', pipelineFile, '--out', out], { env: envFor(simulator) });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /1 of 1 videos done/);
  assert.deepEqual(rowsCreated(simulator.created), ['r0', 'r0', 'r1']);
});

test('--only still finishes runs in flight of other rows (never paid again), and clipmill report keeps "not selected"', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(3));
  simulator.hold();
  const stop = new AbortController();
  const stopped = await night({ only: ['m/r0'], signal: stop.signal, logLine: (line) => void (line.includes('submitted as') && stop.abort()) });
  assert.equal(stopped.exitCode, 130);
  simulator.release();
  const second = await night({ only: ['m/r1'] });
  assert.equal(second.exitCode, 0);
  assert.deepEqual(rowsCreated(simulator.created), ['r0', 'r1'], 'r0 re-attached, not created again');
  assert.deepEqual(
    second.report?.rows.map((r) => r.status),
    ['done', 'done', 'skipped'],
  );
  const rebuilt = await rebuildReports(out);
  assert.match(rebuilt.report.rows[2]?.error ?? '', /not selected tonight/);
});

test('a lost create left out by --only still counts against the budget: the run that may exist is money', async (t) => {
  const { simulator, night } = await nightFolder(t, rowsYaml(3));
  let lose = true;
  // r1's create is cut after sending and the run list cannot be read: its run may exist, nobody can tell tonight.
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    lose && method === 'POST' && key.endsWith('/image-to-video/runs') ? 'reset' : lose && key === 'GET /v1/runs' ? { status: 500 } : 'pass',
  );
  const viaProxy = { env: { RUNFLOW_API_KEY: 'test-key', RUNFLOW_BASE_URL: proxy.url } };
  const lost = await night({ ...viaProxy, only: ['m/r1'] });
  assert.equal(lost.report?.rows[1]?.status, 'unknown');
  lose = false;
  assert.equal((await night({ ...viaProxy, only: ['m/r0'] })).exitCode, 0);
  const lines: string[] = [];
  const refused = await night({ ...viaProxy, only: ['m/r2'], maxCostUsd: 1, print: (line) => lines.push(line) });
  assert.equal(refused.exitCode, 3, lines.join('\n'));
  assert.match(lines.join('\n'), /\$0\.84 is already spent or committed/);
  assert.deepEqual(rowsCreated(simulator.created), ['r0'], 'r2 was not sent: $0.42 spent + $0.42 maybe spent + $0.42 > $1.00');
});
