import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, nightFolder, rowsYaml, runCli, startSimulator, tempDir, webhook, workspace, write } from './helpers.js';

test('the completion notice is posted as JSON chat tools accept; a failing webhook is a warning, not a failed run', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const ok = await webhook(t, 200);
  const pipelineOk = await write(dir, 'ok.yaml', `${fastPipeline()}\nnotify:\n  webhook_url: ${ok.url}\n`);
  const first = await runManifests({
    manifests: [file],
    pipelineFile: pipelineOk,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: () => {},
    logLine: () => {},
  });
  assert.equal(first.exitCode, 0);
  assert.equal(ok.bodies.length, 1);
  const notice = ok.bodies[0] as {
    text: string;
    content: string;
    clipmill: { done: number; rows: number; exit_code: number; this_run_usd: number; report: string };
  };
  assert.match(notice.text, /^clipmill OK: 1\/1 videos done, 0 failed; spent \$0\.70 tonight/);
  assert.equal(notice.content, notice.text);
  assert.deepEqual([notice.clipmill.done, notice.clipmill.rows, notice.clipmill.exit_code, notice.clipmill.this_run_usd], [1, 1, 0, 0.7]);
  assert.match(notice.clipmill.report, /report\.html$/);

  const broken = await webhook(t, 500);
  const pipelineBroken = await write(dir, 'broken.yaml', `${fastPipeline()}\nnotify:\n  webhook_url: ${broken.url}\n`);
  const logs: string[] = [];
  const second = await runManifests({
    manifests: [file],
    pipelineFile: pipelineBroken,
    outDir: path.join(dir, 'out2'),
    env: envFor(simulator),
    print: () => {},
    logLine: (l) => logs.push(l),
  });
  assert.equal(second.exitCode, 0, 'a refused notice does not fail the run');
  assert.ok(
    logs.some((l) => /WARN the completion notice to http:\/\/127\.0\.0\.1:\d+ was refused \(HTTP 500\)/.test(l)),
    logs.join('\n'),
  );
  assert.ok(!logs.join('\n').includes('secret-token'), 'the webhook path (a secret) is never logged');
});

test('the scheduling units in pipeline/schedule run a valid clipmill command with the production pipeline', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await tempDir(t);
  const units = ['clipmill.cron', 'clipmill.service', 'github-actions-nightly.yml'];
  for (const unit of units) {
    const text = await readFile(path.join(ROOT, 'pipeline', 'schedule', unit), 'utf8');
    const command = /npx clipmill (run [^|\n]*?)(?:\s*>>|\s*\|\||\n|$)/.exec(text)?.[1];
    assert.ok(command, `${unit} has a clipmill run command`);
    assert.match(command, /--pipeline pipeline\/nightly\.yaml/, `${unit} uses the production pipeline`);
    const args = command
      .split(/\s+/)
      .filter(Boolean)
      .map((a) => (a === 'out' || a.endsWith('/out') ? path.join(dir, unit) : a));
    // The same command, as a dry run from the repository, must be accepted as it is written.
    const result = await runCli([...args, '--dry-run'], { env: envFor(simulator), cwd: ROOT });
    assert.equal(result.code, 0, `${unit}: ${result.stderr}`);
    assert.match(result.stdout, /dry run: 0 done, .* 10 to submit/);
  }
  assert.equal(simulator.apiRequests, 0);
});

test('a dry run needs no API key: it plans and prices the night and sends nothing', async (t) => {
  const dir = await tempDir(t);
  const result = await runCli(['run', 'manifests', '--pipeline', 'pipeline/nightly.yaml', '--out', path.join(dir, 'out'), '--dry-run'], { env: {}, cwd: ROOT });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /dry run: 0 done, .* 10 to submit/);
  const withoutDryRun = await runCli(['run', 'manifests', '--pipeline', 'pipeline/nightly.yaml', '--out', path.join(dir, 'out')], { env: {}, cwd: ROOT });
  assert.equal(withoutDryRun.code, 2);
  assert.match(withoutDryRun.stderr, /needs an API key: set RUNFLOW_API_KEY/);
});

test('with --log json every line on stdout and stderr is JSON, the summary a final event, an input error one event', async (t) => {
  const { simulator, file, pipelineFile, out, dir } = await nightFolder(t, rowsYaml(2));
  const result = await runCli(['run', file, '--pipeline', pipelineFile, '--out', out, '--log', 'json'], { env: envFor(simulator), cwd: dir });
  assert.equal(result.code, 0, result.stderr);
  const parse = (text: string) =>
    text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { event: string; level: string; details: Record<string, unknown> });
  const stdout = parse(result.stdout);
  const stderr = parse(result.stderr);
  assert.ok(stderr.some((e) => e.event === 'downloaded'));
  const summary = stdout.at(-1)!;
  assert.equal(summary.event, 'summary');
  assert.equal(summary.details.exit_code, 0);
  assert.equal((summary.details.totals as { done: number }).done, 2);

  await write(dir, 'bad.yaml', 'rows:\n  - {id: x, prompt: "no image", duration: 3}\n');
  const refused = await runCli(['run', path.join(dir, 'bad.yaml'), '--pipeline', pipelineFile, '--out', out, '--log', 'json'], {
    env: envFor(simulator),
    cwd: dir,
  });
  assert.equal(refused.code, 2);
  const [error, ...more] = parse(refused.stderr);
  assert.equal(more.length, 0);
  assert.equal(error?.level, 'error');
  assert.match((error as unknown as { message: string }).message, /bad\.yaml:2.*image/);
});
