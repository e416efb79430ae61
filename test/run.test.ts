import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Mp4Inspector } from '../src/infra/mp4.js';
import type { Report } from '../src/report/build.js';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, startSimulator, tempDir, totalUsd, workspace, write } from './helpers.js';

async function mp4Seconds(file: string): Promise<number> {
  const inspector = new Mp4Inspector();
  inspector.push(await readFile(file));
  const facts = inspector.finish();
  assert.ok(!('problem' in facts), `${file}: ${'problem' in facts ? facts.problem : ''}`);
  return facts.durationSeconds;
}

const quiet = { print: () => {}, logLine: () => {} };

test('the example manifests run end to end on the simulator: one playable MP4 per row with its duration, three reports, totals equal to the ledger', async (t) => {
  const simulator = await startSimulator(t, { concurrency: 2 });
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');

  const result = await runManifests({ manifests: [path.join(ROOT, 'manifests')], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });

  assert.equal(result.exitCode, 0);
  const json = await readFile(path.join(out, 'report.json'), 'utf8');
  const report = JSON.parse(json) as Report;
  assert.equal(json, `${JSON.stringify(report, null, 2)}\n`, 'written a row at a time, it reads as one indented JSON document');
  assert.equal((await readFile(path.join(out, 'report.html'), 'utf8')).match(/<article class="card/g)?.length, 10);
  assert.equal(report.totals.rows, 10);
  assert.equal(report.totals.done, 10);
  for (const row of report.rows) {
    assert.equal(row.status, 'done');
    const seconds = await mp4Seconds(path.join(out, row.output!));
    assert.equal(seconds, row.duration, `${row.manifest}/${row.id} lasts ${seconds}s, asked ${row.duration}s`);
    assert.equal(row.cost_source, 'provider');
  }
  assert.deepEqual((await readdir(path.join(out, 'spring-launch'))).filter((f) => f.endsWith('.mp4')).sort(), [
    'hero-sunrise.mp4',
    'launch-shots.mp4',
    'mascot-wave.mp4',
    'product-turntable.mp4',
    'story-spiral.mp4',
  ]);
  assert.equal(report.totals.actual_usd, totalUsd(simulator.billed));
  assert.equal(report.totals.actual_usd, 8.54); // 61 s of video at $0.14/s
  assert.equal(simulator.created.length, 10);
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /10 of 10 videos done/);
  const csv = await readFile(path.join(out, 'report.csv'), 'utf8');
  assert.equal(csv.trim().split('\r\n').length, 11);

  // What went over the wire: duration as a string, audio always explicit, the row key in metadata.
  const story = simulator.created.find((c) => (c.metadata as { clipmill_row?: string }).clipmill_row === 'story-spiral');
  assert.equal(story?.input?.duration, '8');
  assert.equal(story?.input?.generate_audio, true);
  assert.match(story?.input?.start_image_url ?? '', /\/__simulator\/assets\/[0-9a-f-]{36}\?expires=/, 'local images go through the asset upload');
  const shots = simulator.created.find((c) => (c.metadata as { clipmill_row?: string }).clipmill_row === 'launch-shots');
  assert.deepEqual(
    shots?.input?.multi_prompt?.map((s) => s.duration),
    ['4', '3'],
  );
  assert.equal(shots?.input?.prompt, undefined);
  assert.ok(simulator.created.every((c) => typeof c.input?.generate_audio === 'boolean'));
  // The full schema from YAML and from spreadsheet columns: elements, voices, shots.
  const byRow = (id: string) => simulator.created.find((c) => (c.metadata as { clipmill_row?: string }).clipmill_row === id)?.input;
  const mascot = byRow('mascot-wave');
  assert.equal(mascot?.prompt, '@Element1 steps into frame, waves and says <<<voice_1>>> Spring is here!');
  assert.deepEqual(mascot?.voice_ids, ['kling_voice_warm_en']);
  const element = mascot?.elements?.[0];
  assert.ok(element && 'frontal_image_url' in element);
  assert.match(element.frontal_image_url, /\/__simulator\/assets\/[0-9a-f-]{36}\?expires=/);
  assert.equal(element.reference_image_urls.length, 1);
  assert.match(mascot?.end_image_url ?? '', /\/__simulator\/assets\/[0-9a-f-]{36}\?expires=/);
  assert.deepEqual(byRow('opening-two-shots')?.multi_prompt, [
    { prompt: 'Doors open, morning light floods the shop', duration: '3' },
    { prompt: 'Close-up on the welcome sign, confetti falls', duration: '4' },
  ]);
  assert.equal(byRow('opening-two-shots')?.duration, '7');
  const host = byRow('opening-host');
  assert.equal(host?.elements?.[0] && 'reference_image_urls' in host.elements[0] ? host.elements[0].reference_image_urls.length : 0, 2);
  assert.equal(report.money.by_audio_mode.voice.rows, 2);

  // A second run over the same folder pays nothing more.
  const again = await runManifests({ manifests: [path.join(ROOT, 'manifests')], pipelineFile, outDir: out, env: envFor(simulator), ...quiet });
  assert.equal(again.exitCode, 0);
  assert.equal(again.plan?.counts.done, 10);
  assert.equal(simulator.created.length, 10);
});

test('a 422 from the provider fails only that row; the others finish and the run exits 1 with the reason in the report', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(
    dir,
    'mixed.yaml',
    [
      'rows:',
      '  - {id: good-1, image: images/hero-landscape.jpg, prompt: one, duration: 3}',
      '  - {id: unreachable, image: "https://cdn.example.invalid/missing.jpg", prompt: two, duration: 4}',
      '  - {id: good-2, image: images/product-square.png, prompt: three, duration: 5}',
    ].join('\n'),
  );
  const pipelineFile = await write(dir, 'pipeline.yml', fastPipeline());
  const lines: string[] = [];
  const result = await runManifests({
    manifests: [path.join(dir, 'mixed.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: (l) => lines.push(l),
    logLine: () => {},
  });

  assert.equal(result.exitCode, 1);
  const byId = new Map(result.report!.rows.map((r) => [r.id, r]));
  assert.equal(byId.get('good-1')?.status, 'done');
  assert.equal(byId.get('good-2')?.status, 'done');
  const failed = byId.get('unreachable')!;
  assert.equal(failed.status, 'failed');
  assert.equal(failed.actual_usd, 0);
  assert.equal(failed.cost_source, 'not_billed');
  assert.match(failed.error ?? '', /Runflow 422 VALIDATION_ERROR: .*input\.start_image_url: could not be downloaded/);
  assert.ok(
    lines.some((l) => l.includes('mixed.yaml:3') && l.includes('unreachable')),
    lines.join('\n'),
  );
  assert.equal(simulator.created.length, 2);
  assert.equal(result.report!.totals.actual_usd, totalUsd(simulator.billed));
});

test('a model failure is recorded as failed and not billed; a wrong key stops the run with exit 2 and nothing created', async (t) => {
  const failing = await startSimulator(t, { fail_rate: 1 });
  const dir = await workspace(t);
  await write(dir, 'one.yaml', 'rows:\n  - {id: doomed, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yml', fastPipeline());
  const failed = await runManifests({ manifests: [path.join(dir, 'one.yaml')], pipelineFile, outDir: path.join(dir, 'out1'), env: envFor(failing), ...quiet });
  assert.equal(failed.exitCode, 1);
  assert.equal(failed.report?.rows[0]?.status, 'failed');
  assert.match(failed.report?.rows[0]?.error ?? '', /GENERATION_FAILED/);
  assert.deepEqual(failing.billed, []);

  const locked = await startSimulator(t, { api_key: 'the-real-key' });
  const denied = await runManifests({
    manifests: [path.join(dir, 'one.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out2'),
    env: { RUNFLOW_API_KEY: 'wrong-key-123', RUNFLOW_BASE_URL: locked.url },
    ...quiet,
  });
  assert.equal(denied.exitCode, 2);
  assert.match(denied.stopped?.message ?? '', /401 UNAUTHORIZED.*check RUNFLOW_API_KEY/);
  assert.ok(!JSON.stringify(denied.report).includes('wrong-key-123'), 'the key never reaches the report');
  const journal = await readFile(path.join(dir, 'out2', '.clipmill', 'journal.jsonl'), 'utf8');
  assert.ok(!journal.includes('wrong-key-123'), 'the key never reaches the journal');
  assert.deepEqual(locked.created, []);
});

test('--dry-run plans and prices the work but sends nothing', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await tempDir(t);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const lines: string[] = [];
  const result = await runManifests({
    manifests: [path.join(ROOT, 'manifests')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    dryRun: true,
    env: envFor(simulator),
    print: (l) => lines.push(l),
    logLine: () => {},
  });
  assert.equal(result.exitCode, 0);
  assert.equal(result.plan?.counts.submit, 10);
  assert.match(lines.join('\n'), /10 to submit; estimated cost of new submissions \$8\.54\. Nothing was sent\./);
  assert.equal(simulator.apiRequests, 0);
});
