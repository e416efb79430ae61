import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, noisePng, runCli, scriptedProxy, startSimulator, workspace, write } from './helpers.js';

test('every local image goes through the asset upload once per content, across a crash and a resume; the journal keeps asset ids, never signed URLs', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 150 });
  const dir = await workspace(t);
  const big = noisePng(1000, 700);
  assert.ok(big.length > 2_000_000 && big.length < 2_200_000, `${big.length} bytes`);
  await write(dir, 'images/big.png', big);
  await write(
    dir,
    'm.yaml',
    [
      'rows:',
      '  - {id: a, image: images/big.png, prompt: one, duration: 3}',
      '  - {id: b, image: images/big.png, prompt: two, duration: 4}',
      '  - {id: c, image: images/big.png, end_image: images/hero-landscape.jpg, prompt: three, duration: 5}',
      '  - {id: d, image: images/hero-landscape.jpg, prompt: four, duration: 6}',
    ].join('\n'),
  );
  // A create cut off by the kill is looked up a request timeout after the one it may have taken: keep it short.
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 1s'));
  const out = path.join(dir, 'out');
  const args = ['run', path.join(dir, 'm.yaml'), '--pipeline', pipelineFile, '--out', out, '--log', 'json'];

  // First run: killed (SIGKILL) as soon as the first upload is recorded. Its creates are answered 429 (nothing made, retry in a
  // minute), so however late the kill lands, the rows that use the uploaded image are still to be sent by the rerun.
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'POST' && key === 'POST /v1/runs' ? { status: 429, headers: { 'retry-after': '60' } } : 'pass',
  );
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH, ...envFor(simulator), RUNFLOW_BASE_URL: proxy.url },
  });
  child.stderr.on('data', (d: Buffer) => {
    if (d.toString().includes('"event":"uploaded"')) child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, s) => resolve(s)));
  assert.equal(signal, 'SIGKILL');
  const uploadedBeforeCrash = simulator.stats.uploads;
  const confirmedBeforeCrash = simulator.stats.confirmations;
  const journaled = (await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8')).split('\n').filter((l) => l.includes('"type":"uploaded"')).length;
  assert.ok(journaled >= 1);

  const rerun = await runCli(args, { env: envFor(simulator), cwd: dir });
  assert.equal(rerun.code, 0, rerun.stderr);
  // An upload cut off before it was journaled is sent again (uploads are free); a journaled one never is.
  assert.equal(simulator.stats.uploads - uploadedBeforeCrash, 2 - journaled, 'after the crash, only the images not yet journaled are sent');
  assert.equal(simulator.stats.confirmations - confirmedBeforeCrash, 2 - journaled, 'after the crash, one asset record per image not yet journaled');
  assert.ok(simulator.stats.assetReads >= 1, 'the image uploaded before the crash got a fresh URL from GET /v1/assets/{id}');
  const byRow = new Map(simulator.created.map((c) => [(c.metadata as { clipmill_row: string }).clipmill_row, c.input!]));
  for (const row of ['a', 'b', 'c', 'd']) assert.match(byRow.get(row)!.start_image_url, /\/__simulator\/assets\/[0-9a-f-]{36}\?expires=/, row);
  assert.match(byRow.get('c')!.end_image_url ?? '', /\/__simulator\/assets\//, 'a small image is uploaded too: inline is opt-in');
  const journal = await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8');
  assert.equal(journal.split('\n').filter((l) => l.includes('"type":"uploaded"')).length, 2);
  assert.doesNotMatch(journal, /signature=|__simulator\/(assets|files)/, 'no presigned URL is journaled');
});

test('inline_images: true sends local images under about 1 MiB as data: URIs and uploads only the larger ones', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(dir, 'images/big.png', noisePng(1000, 700));
  await write(dir, 'm.yaml', 'rows:\n  - {id: a, image: images/big.png, end_image: images/hero-landscape.jpg, prompt: one, duration: 3}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline('inline_images: true'));
  const result = await runManifests({
    manifests: [path.join(dir, 'm.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: () => {},
    logLine: () => {},
  });
  assert.equal(result.exitCode, 0);
  assert.equal(simulator.stats.uploads, 1);
  assert.match(simulator.created[0]!.input!.start_image_url, /\/__simulator\/assets\//);
  assert.match(simulator.created[0]!.input!.end_image_url ?? '', /^data:image\/jpeg;base64,/);
});

test('images that are too small, too wide, too heavy, or text named .png are refused before anything is sent', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(dir, 'images/small.png', noisePng(200, 200));
  await write(dir, 'images/wide.png', noisePng(1300, 500));
  await write(dir, 'images/heavy.png', noisePng(2000, 1700));
  await write(dir, 'images/notes.png', 'these are my notes, not a picture\n');
  await write(
    dir,
    'm.csv',
    ['id,image,prompt,duration', 'small,images/small.png,p,5', 'wide,images/wide.png,p,5', 'heavy,images/heavy.png,p,5', 'text,images/notes.png,p,5'].join(
      '\n',
    ),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const result = await runCli(['run', path.join(dir, 'm.csv'), '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], {
    env: envFor(simulator),
    cwd: dir,
  });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /m\.csv:2: image: "images\/small\.png" is 200x200 px \(each side at least 300 px\)/);
  assert.match(result.stderr, /m\.csv:3: image: "images\/wide\.png" is 1300x500 px, aspect ratio 2\.60 \(allowed 0\.4 to 2\.5\)/);
  assert.match(result.stderr, /m\.csv:4: image: "images\/heavy\.png" is 10\.2 MB \(at most 10 MB\)/);
  assert.match(result.stderr, /m\.csv:5: image: "images\/notes\.png" is not an image/);
  assert.equal(simulator.apiRequests, 0);
});

test('the upload flow follows Runflow: no Authorization header on the presigned PUT, content type and size declared', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(dir, 'images/big.png', noisePng(900, 900, 7));
  await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/big.png, prompt: p, duration: 3}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const result = await runManifests({
    manifests: [path.join(dir, 'm.yaml')],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    print: () => {},
    logLine: () => {},
  });
  // The simulator refuses a PUT that carries Authorization, a wrong content type or size: the run completing is the check.
  assert.equal(result.exitCode, 0);
  assert.equal(simulator.stats.uploads, 1);
});
