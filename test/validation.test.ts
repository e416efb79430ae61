import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { envFor, fastPipeline, runCli, startSimulator, workspace, write } from './helpers.js';

test('a manifest with a dozen different mistakes gets every message with file:line and field, exit 2, and nothing is sent', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const long = 'x'.repeat(2501);
  await write(
    dir,
    'campaign.yaml',
    [
      'rows:', // 1
      '  - id: too-long', // 2
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 20', // 5: out of range
      '  - id: not-a-number', // 6
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: five', // 9
      '  - id: cfg', // 10
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 5',
      '    cfg_scale: 1.5', // 14
      '  - id: both', // 15
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    multi_prompt: [{prompt: a, duration: 3}]', // 18
      '    shot_type: customize',
      '  - id: neither', // 20
      '    image: images/hero-landscape.jpg',
      '    duration: 5',
      '  - id: cfg', // 23: duplicate of line 10
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 5',
      '  - id: ../escape', // 27
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 5',
      '  - id: missing-image', // 31
      '    image: images/nowhere.jpg', // 32
      '    prompt: hello',
      '    duration: 5',
      '  - id: wordy', // 35
      '    image: images/hero-landscape.jpg',
      `    prompt: ${long}`, // 37
      '    duration: 5',
      '  - id: audio', // 39
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 5',
      '    generate_audio: maybe', // 43
      '  - id: typo', // 44
      '    image: images/hero-landscape.jpg',
      '    promt: hello', // 46
      '    prompt: hello',
      '    duration: 5',
      '  - id: long-shots', // 49
      '    image: images/hero-landscape.jpg',
      '    multi_prompt: [{prompt: a, duration: 10}, {prompt: b, duration: 10}]', // 51
      '    shot_type: sideways', // 52
    ].join('\n'),
  );
  await write(dir, 'screens.csv', 'id,image,prompt,duration\nok-row,images/banner-4x3.jpg,fine,5\nbad-csv,http://example.com/a.jpg,fine,2\n');
  const pipelineFile = await write(await workspace(t), 'pipeline.yaml', fastPipeline());

  const result = await runCli(['run', dir, '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], { env: envFor(simulator), cwd: dir });

  assert.equal(result.code, 2, result.stderr);
  const expected = [
    'campaign.yaml:5: duration: 20 is out of range (whole seconds from 3 to 15)',
    'campaign.yaml:9: duration: "five" is not a whole number of seconds (whole seconds from 3 to 15)',
    'campaign.yaml:14: cfg_scale: "1.5" is not a number from 0 to 1',
    'campaign.yaml:18: prompt: give either prompt or multi_prompt, not both',
    'campaign.yaml:20: prompt: is required (or multi_prompt for a multi-shot video)',
    'campaign.yaml:23: id: "cfg" is already used on line 10 (ids must be unique within a manifest, ignoring case)',
    'campaign.yaml:27: id: "../escape" cannot be used as a file name',
    'campaign.yaml:32: image: "images/nowhere.jpg" does not exist',
    'campaign.yaml:37: prompt: is 2501 characters long (at most 2500)',
    'campaign.yaml:43: generate_audio: "maybe" is not a yes/no value (true or false)',
    'campaign.yaml:46: promt: unknown field',
    'campaign.yaml:51: multi_prompt: shots last 20s together (at most 15s)',
    'campaign.yaml:52: shot_type: "sideways" is not allowed (customize or intelligent)',
    'screens.csv:3: image: "http://example.com/a.jpg": only https URLs or local file paths are accepted',
    'screens.csv:3: duration: 2 is out of range (whole seconds from 3 to 15)',
  ];
  for (const message of expected) assert.ok(result.stderr.includes(message), `missing: ${message}\n--- stderr:\n${result.stderr}`);
  assert.match(result.stderr, /nothing was sent/);
  assert.equal(simulator.apiRequests, 0, 'no request reached the provider');
  assert.deepEqual(simulator.created, []);
});

test('clipmill validate checks without a pipeline or a key and says what is valid', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'ok.yaml',
    'rows:\n  - {id: a, image: images/hero-landscape.jpg, prompt: hi, duration: 5}\n  - {id: b, image: images/story-portrait.jpg, prompt: hi, duration: 7}\n',
  );
  const ok = await runCli(['validate', path.join(dir, 'ok.yaml')], { cwd: dir });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /1 manifests, 2 rows, 12 s of video: valid/);
  const missing = await runCli(['validate', path.join(dir, 'nope.yaml')], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.yaml: no such file or folder/);
});

test('a bad pipeline file is reported with its line before anything else, and a missing key is named', async (t) => {
  const dir = await workspace(t);
  await write(dir, 'ok.yaml', 'rows:\n  - {id: a, image: images/hero-landscape.jpg, prompt: hi, duration: 5}\n');
  await write(dir, 'bad.yaml', 'provider: runflow\nconcurrency: 0\nretry:\n  max_attempt: 3\n');
  const bad = await runCli(['run', path.join(dir, 'ok.yaml'), '--pipeline', path.join(dir, 'bad.yaml')], { cwd: dir, env: { RUNFLOW_API_KEY: 'k' } });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /bad\.yaml:2: concurrency: /);
  assert.match(bad.stderr, /bad\.yaml:4: retry: unknown key max_attempt/);
  await write(dir, 'nightly.yaml', 'provider: runflow\n');
  const noKey = await runCli(['run', path.join(dir, 'ok.yaml'), '--pipeline', path.join(dir, 'nightly.yaml')], { cwd: dir, env: {} });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /set RUNFLOW_API_KEY in the environment/);
});

test('a folder of manifests is one night: one bad manifest stops it all, unless --skip-invalid runs the others and lists it', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  await write(dir, 'de.yaml', 'rows:\n  - {id: de-1, image: images/hero-landscape.jpg, prompt: Hallo, duration: 3}\n');
  await write(dir, 'fr.csv', 'id,image,prompt,duration\nfr-1,images/hero-landscape.jpg,Bonjour,4\nfr-2,images/banner-4x3.jpg,Salut,3\n');
  await write(dir, 'it.yaml', 'rows:\n  - {id: it-1, image: images/missing.jpg, prompt: Ciao, duration: 3}\n');
  const pipelineFile = await write(await workspace(t), 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');

  const strict = await runCli(['run', dir, '--pipeline', pipelineFile, '--out', out], { env: envFor(simulator), cwd: dir });
  assert.equal(strict.code, 2);
  assert.match(strict.stderr, /it\.yaml:2: image: "images\/missing\.jpg" does not exist/);
  assert.equal(simulator.apiRequests, 0);

  const lenient = await runCli(['run', dir, '--pipeline', pipelineFile, '--out', out, '--skip-invalid'], { env: envFor(simulator), cwd: dir });
  assert.equal(lenient.code, 2, lenient.stderr);
  assert.match(lenient.stderr, /skipping 1 invalid manifest \(--skip-invalid\): it\.yaml/);
  assert.match(lenient.stdout, /3 of 3 videos done/);
  assert.match(lenient.stdout, /skipped invalid manifests \(fix them and run again\): it\.yaml/);
  assert.equal(simulator.created.length, 3);
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  assert.match(md, /\| de \| 1 \| 1 \|/);
  assert.match(md, /\| fr \| 2 \| 2 \|/);
});

test('clipmill validate with a fal pipeline refuses voice_ids at their line (row, CSV column, pipeline default); a Runflow pipeline takes them', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'voices.yaml',
    [
      'rows:',
      '  - id: voiced',
      '    image: images/hero-landscape.jpg',
      '    prompt: "<<<voice_1>>> hello"',
      '    duration: 5',
      '    generate_audio: true',
      '    voice_ids: [kling_voice_warm_en]',
      '  - id: element-voice',
      '    image: images/hero-landscape.jpg',
      '    prompt: "@Element1 hello"',
      '    duration: 5',
      '    generate_audio: true',
      '    elements: [{video: "https://cdn.example.com/host.mp4", voice_id: kling_voice_warm_en}]',
    ].join('\n'),
  );
  await write(
    dir,
    'sheet.csv',
    'id,image,prompt,duration,generate_audio,voice_1\nsheet-voiced,images/hero-landscape.jpg,<<<voice_1>>> hi,5,yes,kling_voice_warm_en\n',
  );
  const pipelines = await workspace(t);
  await write(pipelines, 'fal.yaml', 'provider: fal\ndefaults:\n  generate_audio: true\n  voice_ids: [kling_voice_warm_en]\n');
  await write(pipelines, 'runflow.yaml', 'provider: runflow\ndefaults:\n  generate_audio: true\n  voice_ids: [kling_voice_warm_en]\n');

  const onFal = await runCli(['validate', dir, '--pipeline', path.join(pipelines, 'fal.yaml')], { cwd: dir });
  assert.equal(onFal.code, 2, onFal.stderr);
  const why =
    "voice_ids: fal's schema for this model has no voice_ids (only Runflow takes them): remove them, or use a video element with voice_id, or run this manifest with a Runflow pipeline";
  for (const where of [`${path.join(pipelines, 'fal.yaml')}:4`, 'voices.yaml:7', 'sheet.csv:2']) {
    assert.ok(onFal.stderr.includes(`${where}: ${why}`), `missing at ${where}\n--- stderr:\n${onFal.stderr}`);
  }
  assert.ok(!onFal.stderr.includes('voices.yaml:13'), 'an element voice_id is fine on fal');

  const onRunflow = await runCli(['validate', dir, '--pipeline', path.join(pipelines, 'runflow.yaml')], { cwd: dir });
  assert.equal(onRunflow.code, 0, onRunflow.stderr);
  assert.match(onRunflow.stdout, /2 manifests, 3 rows, 15 s of video: valid/);
});
