import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

const ESC = '\u001b';

async function fourRows(t: Parameters<typeof workspace>[0]) {
  const dir = await workspace(t);
  const file = await write(
    dir,
    'm.yaml',
    ['rows:', ...[3, 4, 5, 6].map((d, i) => `  - {id: r${i}, image: images/hero-landscape.jpg, prompt: "shot ${i}", duration: ${d}}`)].join('\n'),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('concurrency: 4', 'concurrency: 2'));
  return { dir, file, pipelineFile };
}

test('on a terminal (a pty via script(1)) the live block redraws in place; piped, the log has no escape codes', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 400 });
  const { dir, file, pipelineFile } = await fourRows(t);
  const cli = [
    'node',
    '--import',
    JSON.stringify(import.meta.resolve('tsx')),
    JSON.stringify(path.join(ROOT, 'src/cli.ts')),
    'run',
    JSON.stringify(file),
    '--pipeline',
    JSON.stringify(pipelineFile),
  ];
  // script(1) gives the run a pseudo-terminal; stty gives it a size, as a real terminal has.
  const tty = spawn('script', ['-qfec', `stty cols 120 rows 40; ${[...cli, '--out', JSON.stringify(path.join(dir, 'tty'))].join(' ')}`, '/dev/null'], {
    cwd: dir,
    env: { PATH: process.env.PATH, TERM: 'xterm-256color', ...envFor(simulator) },
  });
  let screen = '';
  tty.stdout.on('data', (d: Buffer) => (screen += d.toString()));
  const code = await new Promise<number | null>((resolve) => tty.on('close', resolve));
  assert.equal(code, 0, screen);
  const frames = screen.split('clipmill  [').length - 1;
  assert.ok(frames >= 3, `the block was drawn ${frames} times`);
  assert.ok(screen.includes(`${ESC}[`), 'cursor movement to redraw in place');
  assert.match(screen, /done 4 {2}in flight 0 \(queued 0, running 0\)/);
  assert.match(screen, /spent \$2\.52 of \$2\.52 estimated/);
  assert.ok(!/submitted as [0-9a-f-]{36}/.test(screen), 'one line per event is for logs, not for the terminal');

  const piped = await runCli(['run', file, '--pipeline', pipelineFile, '--out', path.join(dir, 'piped')], { env: envFor(simulator), cwd: dir });
  assert.equal(piped.code, 0);
  assert.ok(!piped.stderr.includes(ESC) && !piped.stdout.includes(ESC), 'no escape codes when piped');
  assert.match(piped.stderr, /r0: submitted as [0-9a-f-]{36}/);
  assert.match(piped.stderr, /r0: run [0-9a-f-]{36} running/);
  assert.match(piped.stdout, /4 of 4 videos done, 0 failed, 0 skipped in \d+s\ncost \$2\.52: \$2\.52 this run/);
  assert.match(piped.stdout, /all rows done \(exit 0\)/);
});

test("--log json: every line is one JSON object, with every row's final state", async (t) => {
  const simulator = await startSimulator(t, { fail_rate: 0 });
  const { dir, file, pipelineFile } = await fourRows(t);
  await write(dir, 'bad.yaml', 'rows:\n  - {id: nope, image: "https://x.example.invalid/a.jpg", prompt: p, duration: 3}\n');
  const result = await runCli(['run', file, path.join(dir, 'bad.yaml'), '--pipeline', pipelineFile, '--out', path.join(dir, 'out'), '--log', 'json'], {
    env: envFor(simulator),
    cwd: dir,
  });
  assert.equal(result.code, 1);
  const lines = result.stderr.trim().split('\n');
  const events = lines.map(
    (line) => JSON.parse(line) as { time: string; level: string; event: string; manifest?: string; row?: string; details: Record<string, unknown> },
  );
  assert.ok(
    events.every(
      (e) => typeof e.time === 'string' && ['info', 'warn', 'error'].includes(e.level) && typeof e.event === 'string' && typeof e.details === 'object',
    ),
  );
  const finals = events.filter((e) => e.event === 'row_final').map((e) => `${e.manifest}/${e.row}:${String(e.details.status)}`);
  assert.deepEqual(finals.sort(), ['bad/nope:failed', 'm/r0:done', 'm/r1:done', 'm/r2:done', 'm/r3:done']);
});

test('a log that is not a terminal says the run is alive at every heartbeat', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const { dir, file, pipelineFile } = await fourRows(t);
  const lines: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    heartbeatMs: 100,
    print: () => {},
    logLine: (l) => lines.push(l),
  });
  assert.equal(result.exitCode, 0);
  const beats = lines.filter((l) => l.includes('alive: '));
  assert.ok(beats.length >= 2, lines.join('\n'));
  assert.match(
    beats[0]!,
    /alive: \d+\/4 rows \(\d+ done, 0 failed, \d+ queued, \d+ running, \d+ downloading\); spent \$[\d.]+ of \$2\.52; elapsed \d+m\d\ds, ETA/,
  );
});
