import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { Command, CommanderError } from 'commander';
import { errorLines, exitCodeOf } from '../src/cli/exit.js';
import { addSimulateCommand, knobsFrom } from '../src/cli/simulate.js';
import { describeAllowed, parseFlagValue, settingField, SETTING_FLAGS } from '../src/config/flags.js';
import { defaultPipeline, resolvePipeline } from '../src/config/pipeline.js';
import { ApiError } from '../src/infra/errors.js';
import { InputError } from '../src/load/problem.js';
import { EXIT } from '../src/report/summary.js';
import { JournalWriteError } from '../src/state/disk-write.js';
import { LockContestedError, LockedError } from '../src/state/lock.js';
import { simulatorOptionsSchema } from '../src/simulator/options.js';
import { runCli, startCli, tempDir, write } from './helpers.js';

test('a flag that overrides a pipeline setting is checked by that setting: the error names the flag and what it allows', async (t) => {
  const dir = await tempDir(t);
  const manifest = await write(dir, 'm.yaml', 'rows:\n  - {id: a, image: nope.jpg, prompt: hi, duration: 5}\n');
  const cases: [string[], RegExp][] = [
    [['run', manifest, '--concurrency', '0'], /--concurrency must be a whole number from 1 to 1000/],
    [['run', manifest, '--concurrency', '1001'], /--concurrency must be a whole number from 1 to 1000/],
    [['run', manifest, '--rpm', 'many'], /--rpm must be a whole number from 1 to 100000/],
    [['estimate', manifest, '--max-cost', '0'], /--max-cost must be a number above 0/],
    [['status', '--out', ''], /--out must be a non-empty text/],
    [['audit', '--since', '3 fortnights'], /--since: "3 fortnights" is not a duration \(like 500ms, 5s, 20m, 1h\)/],
    [['simulate', '--fail-rate', '1.5'], /--fail-rate must be a number from 0 to 1/],
    [['simulate', '--rpm', '-1'], /--rpm must be a whole number, at least 0/],
  ];
  for (const [args, message] of cases) {
    const result = await runCli(args, { cwd: dir });
    assert.equal(result.code, EXIT.invalid, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
  // The same limits as the pipeline file's: the flag's edge value is the file's.
  const pipeline = await write(dir, 'p.yaml', 'concurrency: 1001\n');
  const fromFile = await runCli(['validate', manifest, '--pipeline', pipeline], { cwd: dir });
  assert.equal(fromFile.code, EXIT.invalid);
  assert.match(fromFile.stderr, /p\.yaml:1: concurrency: Too big: expected number to be <=1000/);
});

test('what a field allows, in words, read from the schema', () => {
  assert.equal(describeAllowed(settingField(SETTING_FLAGS.concurrency.path)), 'a whole number from 1 to 1000');
  assert.equal(describeAllowed(settingField(SETTING_FLAGS.maxCostUsd.path)), 'a number above 0');
  assert.equal(describeAllowed(settingField(SETTING_FLAGS.outDir.path)), 'a non-empty text');
  assert.equal(describeAllowed(simulatorOptionsSchema.shape.protocol), 'one of runflow, fal');
  assert.equal(describeAllowed(simulatorOptionsSchema.shape.seed), 'a whole number');
  assert.deepEqual(parseFlagValue(settingField(['lost_after']), '90m'), { ok: true, input: '90m', output: 90 * 60_000 });
  assert.deepEqual(parseFlagValue(settingField(['concurrency']), ' '), { ok: false, message: 'must be a whole number from 1 to 1000' });
  assert.deepEqual(parseFlagValue(settingField(['lost_after']), '10ms'), { ok: false, message: '"10ms" is too short (at least 50ms)' });
});

test('the pipeline is built once from the file, the flags and the environment, and frozen', async (t) => {
  const dir = await tempDir(t);
  const file = await write(
    dir,
    'p.yaml',
    'provider: runflow\nconcurrency: 2\nbudget_usd: 10\noutput:\n  dir: night\nnotify:\n  webhook_url: https://hooks.example/a\n',
  );
  const env = { CLIPMILL_WEBHOOK_URL: 'https://hooks.example/b', RUNFLOW_BASE_URL: 'http://127.0.0.1:9', FAL_BASE_URL: 'https://fal.example' };

  const plain = await resolvePipeline({ pipelineFile: file }, {});
  assert.equal(plain.concurrency, 2);
  assert.equal(plain.budgetMicros, 10_000_000);
  assert.equal(plain.outputDir, 'night');
  assert.equal(plain.notifyWebhookUrl, 'https://hooks.example/a');
  assert.equal(plain.file, path.resolve(file));

  const overridden = await resolvePipeline({ pipelineFile: file, concurrency: 7, requestsPerMinute: 30, outDir: 'elsewhere', maxCostUsd: 4 }, env);
  assert.equal(overridden.concurrency, 7);
  assert.equal(overridden.requestsPerMinute, 30);
  assert.equal(overridden.outputDir, 'elsewhere');
  assert.equal(overridden.budgetMicros, 4_000_000, '--max-cost below budget_usd applies');
  assert.equal((await resolvePipeline({ pipelineFile: file, maxCostUsd: 40 }, {})).budgetMicros, 10_000_000, '--max-cost never raises budget_usd');
  assert.equal((await resolvePipeline({ maxCostUsd: 3 }, {})).budgetMicros, 3_000_000);
  assert.equal(overridden.notifyWebhookUrl, 'https://hooks.example/b', 'the environment wins over the file');
  assert.equal(overridden.baseUrl, 'http://127.0.0.1:9', "only the pipeline's own provider's base URL applies");

  assert.ok(Object.isFrozen(overridden) && Object.isFrozen(overridden.retry) && Object.isFrozen(overridden.allowedHosts));
  assert.throws(() => {
    (overridden as { concurrency: number }).concurrency = 1;
  }, TypeError);
  assert.deepEqual(defaultPipeline(), await resolvePipeline({}, {}));
});

test('bad overrides and environment values are reported together, named by their flag or variable', async () => {
  await assert.rejects(resolvePipeline({ concurrency: 0, requestsPerMinute: 1.5 }, { CLIPMILL_WEBHOOK_URL: 'http://hooks.example/x' }), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.deepEqual(
      e.problems.map((p) => `${p.file}: ${p.message}`),
      [
        '--concurrency: must be a whole number from 1 to 1000',
        '--rpm: must be a whole number from 1 to 100000',
        'CLIPMILL_WEBHOOK_URL: http://hooks.example must be https (plain http only for loopback addresses)',
      ],
    );
    return true;
  });
  await assert.rejects(resolvePipeline({ pipelineFile: '/nonexistent/pipeline.yaml' }, {}), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT', 'the read error is kept as the cause');
    return true;
  });
});

test('clipmill simulate has a flag for every knob of the simulator schema, and the old names still work', () => {
  const program = new Command().exitOverride();
  addSimulateCommand(program);
  const simulate = program.commands.find((c) => c.name() === 'simulate')!;
  const flags = new Set(simulate.options.map((o) => o.long));
  for (const knob of Object.keys(simulatorOptionsSchema.shape)) {
    if (knob !== 'protocol') assert.ok(flags.has(`--${knob.replaceAll('_', '-')}`), knob);
  }
  for (const old of [
    '--port',
    '--latency-ms',
    '--concurrency',
    '--fail-rate',
    '--cancel-rate',
    '--error-rate',
    '--rate-limit-rate',
    '--reset-rate',
    '--truncate-rate',
    '--slow-download-rate',
    '--slow-download-ms',
    '--rpm',
    '--url-ttl-ms',
    '--credit-usd',
    '--price-usd-per-second',
    '--audio-price-usd-per-second',
    '--voice-price-usd-per-second',
    '--api-key',
    '--create-response-delay-ms',
    '--create-commit-delay-ms',
    '--list-page-size',
    '--list-empty-pages',
    '--list-delay-ms',
    '--result-ttl-scale',
    '--seed',
  ]) {
    assert.ok(flags.has(old), old);
  }
  simulate.parseOptions(['--rpm', '30', '--latency-ms', '120', '--credit-usd', '2.5', '--api-key', 'k']);
  assert.deepEqual(knobsFrom(simulate.opts()), { latency_ms: 120, requests_per_minute: 30, credit_usd: 2.5, api_key: 'k' });
});

test('every error of ours says how the CLI exits; anything else is an internal error, exit 4, never 1', () => {
  const io = new JournalWriteError('/out/.clipmill/journal.jsonl', Object.assign(new Error('no space'), { code: 'ENOSPC' }));
  assert.equal(exitCodeOf(new InputError([])), EXIT.invalid);
  assert.equal(exitCodeOf(new LockedError({ pid: 1, host: 'h', started_at: 'now' } as never, '/out/.clipmill/lock')), EXIT.invalid);
  assert.equal(exitCodeOf(io), EXIT.invalid);
  assert.equal(exitCodeOf(new LockContestedError('/out/.clipmill/lock')), EXIT.invalid, 'a lock other runs keep racing for is a busy folder, not a bug');
  assert.equal(exitCodeOf(new ApiError('fatal', 'UNAUTHORIZED', 'refused')), EXIT.rowsFailed);
  assert.equal(exitCodeOf(new CommanderError(0, 'commander.helpDisplayed', '')), EXIT.ok);
  assert.equal(exitCodeOf(new CommanderError(1, 'commander.unknownOption', '')), EXIT.invalid);
  assert.equal(exitCodeOf(new TypeError("Cannot read properties of undefined (reading 'x')")), EXIT.internal);
  assert.equal(exitCodeOf('a string thrown'), EXIT.internal);
  assert.equal(EXIT.internal, 4);

  const network = new Error('socket hang up');
  assert.equal(new ApiError('transient', 'ECONNRESET', 'reset', { cause: network }).cause, network);
  assert.equal(io.cause instanceof Error && io.cause.message, 'no space');

  const bug = new TypeError('boom');
  assert.deepEqual(errorLines(bug, false).length, 1);
  assert.match(errorLines(bug, false)[0]!, /^clipmill: internal error: TypeError: boom\. clipmill did not expect this \(exit 4\): please report it/);
  assert.match(errorLines(bug, true).join('\n'), /at .*config\.test\.ts/, 'the stack only with --debug');
});

test('an unexpected error exits 4 from the real CLI, in one line without the stack (unless --debug) and without secrets', async (t) => {
  const dir = await tempDir(t);
  const secret = 'sk-live-0123456789';
  // An output folder that is a file: the lock's mkdir fails with ENOTDIR, which no code of clipmill expects.
  await mkdir(path.join(dir, secret));
  const notAFolder = path.join(dir, secret, 'out');
  await writeFile(notAFolder, 'a file, not a folder');
  const env = { RUNFLOW_API_KEY: secret };

  const plain = await runCli(['report', '--out', notAFolder], { env });
  assert.equal(plain.code, EXIT.internal, plain.stderr);
  const lines = plain.stderr.trim().split('\n');
  assert.equal(lines.length, 1, plain.stderr);
  assert.match(
    lines[0]!,
    /^clipmill: internal error: ENOTDIR: not a directory, mkdir '.*\[redacted\]\/out\/\.clipmill'\. clipmill did not expect this \(exit 4\): please report it/,
  );
  assert.match(lines[0]!, /running the same command again resumes/);
  assert.doesNotMatch(plain.stderr, new RegExp(secret));

  for (const debug of [
    { args: ['--debug'], env: {} },
    { args: [], env: { CLIPMILL_DEBUG: '1' } },
  ]) {
    const traced = await runCli(['report', '--out', notAFolder, ...debug.args], { env: { ...env, ...debug.env } });
    assert.equal(traced.code, EXIT.internal);
    assert.match(traced.stderr, /\n\s+at .*acquire/, 'the stack');
    assert.doesNotMatch(traced.stderr, new RegExp(secret));
  }
});

test('a pipeline file with a YAML mistake is reported at the line of the mistake, not where the parser gave up', async (t) => {
  const dir = await tempDir(t);
  const file = await write(dir, 'pipeline.yaml', 'provider: runflow\noutput:\n  dir: "nightly\nconcurrency: 4\nrequests_per_minute: 60\n');
  await assert.rejects(resolvePipeline({ pipelineFile: file }, {}), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.equal(e.problems[0]?.line, 3, JSON.stringify(e.problems));
    assert.match(e.problems[0]?.message ?? '', /YAML syntax/);
    return true;
  });
});

test('a reader that goes away early (clipmill run --help | head) is not a crash: exit 0, no EPIPE stack', async () => {
  const { child, done } = startCli(['run', '--help']);
  // Closed before the child writes: its help text meets a pipe with no reader.
  child.stdout?.destroy();
  const result = await done;
  assert.equal(result.code, 0, result.stderr);
  assert.doesNotMatch(result.stderr, /EPIPE|Unhandled/);
});
