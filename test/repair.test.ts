import assert from 'node:assert/strict';
import { appendFile, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { InputError } from '../src/load/problem.js';
import { repairFolder } from '../src/state/repair.js';
import { runManifests } from '../src/commands/run.js';
import { envFor, fastPipeline, runCli, startSimulator, tempDir, workspace, write } from './helpers.js';

const quiet = { print: () => {}, logLine: () => {} };

function manifest(ids: string[]): string {
  return ['rows:', ...ids.map((id, i) => `  - {id: ${id}, image: images/hero-landscape.jpg, prompt: "shot ${id}", duration: ${3 + i}}`)].join('\n');
}

function journalOf(out: string): string {
  return path.join(out, '.clipmill', 'journal.jsonl');
}

test('each downloaded video has a sidecar beside it with its run, request, hash and cost, and no URL', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest(['a']));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(result.exitCode, 0);
  const text = await readFile(path.join(out, 'm', 'a.mp4.json'), 'utf8');
  const sidecar = JSON.parse(text) as Record<string, unknown>;
  const journal = (await readFile(journalOf(out), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const downloaded = journal.find((e) => e.type === 'downloaded');
  assert.deepEqual(Object.keys(sidecar), ['run_id', 'request', 'key', 'sha256', 'bytes', 'seconds', 'mtime_ms', 'cost_micros', 'provider', 'downloaded_at']);
  assert.equal(
    sidecar.mtime_ms,
    (await stat(path.join(out, 'm', 'a.mp4'))).mtimeMs,
    'the video as put in place: a later run trusts it unread while its size and mtime stay so',
  );
  assert.equal(downloaded?.mtimeMs, sidecar.mtime_ms);
  assert.equal(sidecar.run_id, simulator.created[0]?.id);
  assert.equal(sidecar.key, 'm/a');
  assert.equal(sidecar.request, downloaded?.request);
  assert.equal(sidecar.sha256, downloaded?.sha256);
  assert.equal(sidecar.bytes, downloaded?.bytes);
  assert.equal(sidecar.cost_micros, 420_000);
  assert.equal(sidecar.provider, 'runflow');
  assert.doesNotMatch(text, /https?:|signature/);
  assert.deepEqual((await readdir(path.join(out, 'm'))).sort(), ['a.mp4', 'a.mp4.json'], 'no temporary file is left');
});

test('a damaged line in the middle: run refuses with advice to run clipmill repair (never "move aside"); repair keeps the rest, names the line, and a rerun pays nothing again', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const ids = ['a', 'b', 'c', 'd'];
  const file = await write(dir, 'm.yaml', manifest(ids));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  assert.equal((await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet })).exitCode, 0);
  assert.equal(simulator.created.length, 4);

  // A full disk of old left a partial line in the middle: here, the line that recorded b's download.
  const lines = (await readFile(journalOf(out), 'utf8')).split('\n').filter(Boolean);
  const damagedAt = lines.findIndex((l) => l.includes('"type":"downloaded"') && l.includes('"key":"m/b"'));
  lines[damagedAt] = lines[damagedAt]!.slice(0, lines[damagedAt]!.indexOf('"path"'));
  // And a create that got no answer, for a row not in the manifest: repair says it cannot look it up yet.
  lines.push(
    JSON.stringify({
      at: new Date().toISOString(),
      key: 'm/lost',
      request: 'feedbeef',
      type: 'submitting',
      attempt: 1,
      clientRef: 'clipmill-0123456789-feedbeef-a1-00000000',
    }),
  );
  assert.ok(damagedAt > 0 && damagedAt < lines.length - 1, 'the damaged line is in the middle, not a torn tail');
  await writeFile(journalOf(out), `${lines.join('\n')}\n`);

  await assert.rejects(runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet }), (e: unknown) => {
    assert.ok(e instanceof InputError);
    assert.equal(e.problems[0]?.line, damagedAt + 1);
    assert.match(e.problems[0]?.message ?? '', new RegExp(`run \`clipmill repair --out ${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\``));
    assert.doesNotMatch(e.problems[0]?.message ?? '', /move the journal aside/);
    return true;
  });
  const status = await runCli(['status', '--out', out]);
  assert.equal(status.code, 2);
  assert.match(status.stderr, /clipmill repair --out/);
  assert.equal(simulator.apiRequests > 0, true);
  const requestsBefore = simulator.apiRequests;

  const repaired = await repairFolder(out, new Date('2026-11-24T03:00:00Z'));
  const printed = repaired.lines.join('\n');
  assert.equal(repaired.exitCode, 1, printed);
  assert.deepEqual(repaired.damagedLines, [damagedAt + 1]);
  assert.match(printed, new RegExp(`line ${damagedAt + 1}: damaged, skipped \\(it seems to be about m/b\\)`));
  assert.match(printed, /could not recover: 1\n {2}journal line \d+: damaged/);
  assert.deepEqual(repaired.rebuilt, ['m/b'], 'the download the damaged line held is proven by its sidecar');
  assert.match(printed, /m\/b: downloaded m\/b\.mp4, run \S+ \(wrote downloaded\)/);
  assert.match(printed, /already recorded in the journal: 3 videos/);
  assert.deepEqual(repaired.submitting, ['m/lost']);
  assert.match(printed, /looking runs up by client_ref is not part of repair yet/);
  assert.match(printed, /m\/lost \(client_ref clipmill-0123456789-feedbeef-a1-00000000\)/);
  assert.equal(repaired.keptLines, lines.length - 1);
  assert.equal(repaired.keptAs, `${journalOf(out)}.damaged-2026-11-24T03-00-00-000Z`);
  assert.equal(await readFile(repaired.keptAs, 'utf8'), `${lines.join('\n')}\n`, 'the damaged original is kept as it was');
  const after = (await readFile(journalOf(out), 'utf8')).split('\n').filter(Boolean);
  assert.equal(after.length, lines.length, 'every readable line kept, the damaged one replaced by what the sidecar proves');
  for (const line of after) JSON.parse(line);
  assert.equal(simulator.apiRequests, requestsBefore, 'repair sends nothing to the provider');
  assert.deepEqual(
    (await readdir(path.join(out, '.clipmill'))).filter((n) => n.endsWith('.tmp')),
    [],
  );

  const rerun = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(rerun.exitCode, 0);
  assert.equal(rerun.plan?.counts.done, 4);
  assert.equal(simulator.created.length, 4, 'nothing already paid for is paid again');
});

test('a lost journal with videos on disk: run refuses, repair rebuilds every row from the sidecars, and a rerun creates nothing for them', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest(['a', 'b', 'c']));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const first = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(first.exitCode, 0);
  const cost = first.report?.totals.actual_usd;
  await rm(journalOf(out));

  await assert.rejects(
    runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet }),
    (e: unknown) =>
      e instanceof InputError &&
      /journal is missing or empty, but 3 downloaded videos have a sidecar here .*clipmill repair --out/.test(e.problems[0]?.message ?? ''),
  );
  assert.equal(simulator.created.length, 3);

  const cli = await runCli(['repair', '--out', out]);
  assert.equal(cli.code, 0, cli.stdout + cli.stderr);
  assert.match(cli.stdout, /journal: missing/);
  assert.match(cli.stdout, /rebuilt from sidecars: 3 rows/);
  assert.match(cli.stdout, /m\/a: downloaded m\/a\.mp4, run \S+ \(wrote submitted \+ succeeded \+ downloaded\)/);
  assert.match(cli.stdout, /nothing was lost/);

  const rerun = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(rerun.exitCode, 0);
  assert.equal(rerun.plan?.counts.done, 3);
  assert.equal(simulator.created.length, 3, 'no row is created again');
  assert.equal(rerun.report?.totals.actual_usd, cost, 'the costs come back from the sidecars');

  const again = await repairFolder(out);
  assert.equal(again.exitCode, 0);
  assert.match(again.lines.join('\n'), /the journal needs no repair/);
});

test('repair says what it could not recover: a video without a sidecar, a sidecar that does not match; exit 2 on a folder with nothing to repair from', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', manifest(['a', 'b', 'c']));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  assert.equal((await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), ...quiet })).exitCode, 0);
  await rm(journalOf(out));
  await rm(path.join(out, 'm', 'a.mp4.json'));
  await appendFile(path.join(out, 'm', 'b.mp4'), Buffer.from([0]));

  const result = await repairFolder(out);
  const printed = result.lines.join('\n');
  assert.equal(result.exitCode, 1, printed);
  assert.deepEqual(result.rebuilt, ['m/c']);
  assert.deepEqual(result.unrecovered, ['m/a.mp4', 'm/b.mp4']);
  assert.match(printed, /m\/a\.mp4: no sidecar, and the journal does not record this video/);
  assert.match(printed, /m\/b\.mp4: its sidecar does not match the file \(sha256 or size differ\)/);

  const empty = await tempDir(t);
  const nothing = await runCli(['repair', '--out', empty]);
  assert.equal(nothing.code, 2, nothing.stdout + nothing.stderr);
  assert.match(nothing.stdout, /nothing to repair from/);
  assert.deepEqual(await readdir(empty), [], 'nothing is written to a folder with nothing to repair');
});
