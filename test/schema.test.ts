import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { estimateMicros } from '../src/money/cost.js';
import { loadManifests } from '../src/load/load.js';
import { buildKlingInput, inputSchemaFor, klingV3InputSchema } from '../src/model/kling-v3.js';
import { formatProblem } from '../src/load/problem.js';
import { workspace, write } from './helpers.js';

const runflow = { defaults: new Map(), provider: 'runflow' as const };
const fal = { defaults: new Map(), provider: 'fal' as const };
const shown = (problems: { file: string; line: number; field: string; message: string }[], dir: string) =>
  problems.map((p) => formatProblem({ ...p, file: path.relative(dir, p.file) || p.file }));
const wire = (request: Parameters<typeof buildKlingInput>[0]) =>
  buildKlingInput(request, (ref) => (ref.kind === 'url' ? ref.url : 'data:image/jpeg;base64,AAAA'));

test('shots are 1 to 15 s each and 3 to 15 s together, in YAML and in spreadsheet columns', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'shots.yaml',
    [
      'rows:',
      '  - id: one-and-two', // 2
      '    image: images/hero-landscape.jpg',
      '    multi_prompt: [{prompt: a, duration: 1}, {prompt: b, duration: 2}]',
      '  - id: too-short', // 5
      '    image: images/hero-landscape.jpg',
      '    multi_prompt: [{prompt: a, duration: 1}, {prompt: b, duration: 1}]', // 7
      '  - id: too-long-shot', // 8
      '    image: images/hero-landscape.jpg',
      '    multi_prompt: [{prompt: a, duration: 16}]', // 10
    ].join('\n'),
  );
  await write(
    dir,
    'sheet-shots.csv',
    [
      'id,image,shot_1_prompt,shot_1_duration,shot_2_prompt,shot_2_duration',
      'csv-one-and-two,images/hero-landscape.jpg,a,1,b,2s', // 2
      'csv-too-short,images/hero-landscape.jpg,a,1,b,1', // 3
      'csv-too-long-shot,images/hero-landscape.jpg,a,16,,', // 4
    ].join('\n'),
  );
  const { manifests, problems } = await loadManifests([path.join(dir, 'shots.yaml'), path.join(dir, 'sheet-shots.csv')], runflow);
  assert.deepEqual(shown(problems, dir).sort(), [
    'sheet-shots.csv:3: multi_prompt: shots last 2s together (at least 3s; each shot 1 to 15s)',
    'sheet-shots.csv:4: multi_prompt[1].duration: 16 is out of range (whole seconds from 1 to 15)',
    'shots.yaml:10: multi_prompt[1].duration: 16 is out of range (whole seconds from 1 to 15)',
    'shots.yaml:7: multi_prompt: shots last 2s together (at least 3s; each shot 1 to 15s)',
  ]);
  for (const row of manifests.flatMap((m) => m.rows)) {
    assert.deepEqual(
      row.request.multiPrompt?.map((s) => s.durationSeconds),
      [1, 2],
    );
    assert.equal(row.request.durationSeconds, 3);
    const input = wire(row.request);
    assert.deepEqual(
      input.multi_prompt?.map((s) => s.duration),
      ['1', '2'],
    );
    assert.equal(input.duration, '3');
    assert.equal(inputSchemaFor('fal').safeParse(input).success, true);
  }
  assert.equal(manifests.flatMap((m) => m.rows).length, 2);
});

test('a video element may carry a voice_id (YAML voice_id, CSV element_N_voice) that reaches the wire; an image set may not', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'voices.yaml',
    [
      'rows:',
      '  - id: talking-mascot', // 2
      '    image: images/hero-landscape.jpg',
      '    prompt: "@Element1 says hello"',
      '    duration: 5',
      '    generate_audio: true',
      '    elements:',
      '      - {video: "https://cdn.example.com/mascot.mp4", voice_id: kling_voice_warm_en}',
      '  - id: voiced-image', // 9
      '    image: images/hero-landscape.jpg',
      '    prompt: "@Element1 waves"',
      '    duration: 5',
      '    generate_audio: true',
      '    elements:', // 14
      '      - {frontal_image: images/story-portrait.jpg, reference_images: [images/banner-4x3.jpg], voice_id: v1}',
      '  - id: mute-voice', // 16
      '    image: images/hero-landscape.jpg',
      '    prompt: "@Element1 waves"',
      '    duration: 5',
      '    elements:', // 20
      '      - {video: "https://cdn.example.com/mascot.mp4", voice_id: v1}',
    ].join('\n'),
  );
  await write(
    dir,
    'sheet-voices.csv',
    [
      'id,image,prompt,duration,generate_audio,element_1_frontal,element_1_references,element_1_voice,element_2_video,element_2_voice',
      'csv-mascot,images/hero-landscape.jpg,@Element1 and @Element2 talk,6,yes,images/story-portrait.jpg,images/banner-4x3.jpg,,https://cdn.example.com/host.mp4,kling_voice_calm_en', // 2
      'csv-voiced-image,images/hero-landscape.jpg,@Element1 talks,6,yes,images/story-portrait.jpg,images/banner-4x3.jpg,v1,,', // 3
    ].join('\n'),
  );
  const { manifests, problems } = await loadManifests([path.join(dir, 'voices.yaml'), path.join(dir, 'sheet-voices.csv')], fal);
  assert.deepEqual(shown(problems, dir).sort(), [
    'sheet-voices.csv:3: element_1_voice: only a video element has a voice (fill element_1_video, or clear element_1_voice; an image-set element takes no voice)',
    'voices.yaml:14: elements[1].voice_id: only a video element has a voice ({video, voice_id}); an image set (frontal_image + reference_images) takes none',
    'voices.yaml:20: elements[1].voice_id: a voice needs generate_audio: true',
  ]);
  const rows = new Map(manifests.flatMap((m) => m.rows).map((r) => [r.id, r.request]));
  assert.deepEqual([...rows.keys()].sort(), ['csv-mascot', 'talking-mascot']);

  const yamlInput = wire(rows.get('talking-mascot')!);
  assert.deepEqual(yamlInput.elements, [{ video_url: 'https://cdn.example.com/mascot.mp4', voice_id: 'kling_voice_warm_en' }]);
  assert.equal(yamlInput.voice_ids, undefined);
  const csvInput = wire(rows.get('csv-mascot')!);
  assert.deepEqual(csvInput.elements?.[1], { video_url: 'https://cdn.example.com/host.mp4', voice_id: 'kling_voice_calm_en' });
  assert.ok(csvInput.elements?.[0] && 'frontal_image_url' in csvInput.elements[0] && !('voice_id' in csvInput.elements[0]));
  for (const input of [yamlInput, csvInput]) {
    assert.equal(inputSchemaFor('fal').safeParse(input).success, true);
    assert.equal(inputSchemaFor('runflow').safeParse(input).success, true);
  }

  // The voice is part of what the row asks for: another voice is another derived id.
  await write(
    dir,
    'ids.yaml',
    [
      'rows:',
      ...['v1', 'v2'].map(
        (v) =>
          `  - {image: images/hero-landscape.jpg, prompt: "@Element1", duration: 5, generate_audio: true, elements: [{video: "https://cdn.example.com/m.mp4", voice_id: ${v}}]}`,
      ),
    ].join('\n'),
  );
  const ids = await loadManifests([path.join(dir, 'ids.yaml')], fal);
  assert.deepEqual(ids.problems, []);
  const [a, b] = ids.manifests[0]!.rows;
  assert.notEqual(a!.id, b!.id);
});

test('voice_ids on a fal pipeline (row, CSV voice_N, manifest defaults, pipeline defaults) are refused where written; Runflow takes them', async (t) => {
  const dir = await workspace(t);
  const rowsYaml = [
    'rows:',
    '  - id: voiced', // 2
    '    image: images/hero-landscape.jpg',
    '    prompt: "<<<voice_1>>> hello"',
    '    duration: 5',
    '    generate_audio: true',
    '    voice_ids: [kling_voice_warm_en]', // 7
  ].join('\n');
  await write(dir, 'row.yaml', rowsYaml);
  await write(
    dir,
    'sheet.csv',
    'id,image,prompt,duration,generate_audio,voice_1\nsheet-voiced,images/hero-landscape.jpg,<<<voice_1>>> hi,5,yes,kling_voice_warm_en\n',
  );
  await write(
    dir,
    'defaults.yaml',
    [
      'defaults:',
      '  generate_audio: true',
      '  voice_ids: [kling_voice_warm_en]',
      'rows:',
      '  - {id: d1, image: images/hero-landscape.jpg, prompt: "<<<voice_1>>> one", duration: 5}',
      '  - {id: d2, image: images/hero-landscape.jpg, prompt: "<<<voice_1>>> two", duration: 5}',
    ].join('\n'),
  );
  const files = ['row.yaml', 'sheet.csv', 'defaults.yaml'].map((f) => path.join(dir, f));

  const onFal = await loadManifests(files, fal);
  const message =
    "voice_ids: fal's schema for this model has no voice_ids (only Runflow takes them): remove them, or use a video element with voice_id, or run this manifest with a Runflow pipeline";
  assert.deepEqual(shown(onFal.problems, dir).sort(), [`defaults.yaml:3: ${message}`, `row.yaml:7: ${message}`, `sheet.csv:2: ${message}`]);
  assert.deepEqual(
    onFal.manifests.flatMap((m) => m.rows),
    [],
  );

  // A simulator speaking fal's protocol is fal; one speaking Runflow's is Runflow.
  const simulatorFal = await loadManifests([path.join(dir, 'row.yaml')], { defaults: new Map(), provider: 'simulator', simulator: { protocol: 'fal' } });
  assert.deepEqual(shown(simulatorFal.problems, dir), [`row.yaml:7: ${message}`]);
  const simulatorRunflow = await loadManifests([path.join(dir, 'row.yaml')], {
    defaults: new Map(),
    provider: 'simulator',
    simulator: { protocol: 'runflow' },
  });
  assert.deepEqual(simulatorRunflow.problems, []);

  // A pipeline default is reported once, at the pipeline file's line.
  const pipelineFile = path.join(dir, 'fal.yaml');
  const pipelineDefaults = new Map([['voice_ids', { value: ['kling_voice_warm_en'], file: pipelineFile, line: 4 }]]);
  await write(
    dir,
    'plain.yaml',
    'rows:\n  - {id: p1, image: images/hero-landscape.jpg, prompt: hi, duration: 5, generate_audio: true}\n  - {id: p2, image: images/hero-landscape.jpg, prompt: ho, duration: 5, generate_audio: true}\n',
  );
  const fromPipeline = await loadManifests([path.join(dir, 'plain.yaml')], { ...fal, defaults: pipelineDefaults });
  assert.deepEqual(shown(fromPipeline.problems, dir), [`fal.yaml:4: ${message}`]);

  const onRunflow = await loadManifests(files, runflow);
  assert.deepEqual(onRunflow.problems, []);
  const requests = onRunflow.manifests.flatMap((m) => m.rows.map((r) => r.request));
  assert.equal(requests.length, 4);
  assert.ok(requests.every((r) => r.voiceIds?.[0] === 'kling_voice_warm_en' && wire(r).voice_ids?.[0] === 'kling_voice_warm_en'));
  // Without a provider (as before), Runflow's schema applies.
  assert.deepEqual((await loadManifests(files, { defaults: new Map() })).problems, []);
});

test('the wire schemas: fal refuses voice_ids and takes an element voice_id; shots "1".."15", 3 to 15 s together', () => {
  const base = { start_image_url: 'https://cdn.example.com/a.png', duration: '5', generate_audio: true };
  const withVoices = { ...base, prompt: '<<<voice_1>>> hi', voice_ids: ['v1'] };
  assert.equal(inputSchemaFor('runflow').safeParse(withVoices).success, true);
  assert.equal(klingV3InputSchema.safeParse(withVoices).success, true);
  const refused = inputSchemaFor('fal').safeParse(withVoices);
  assert.equal(refused.success, false);
  assert.deepEqual(
    refused.error?.issues.map((i) => [i.code, ...(i.code === 'unrecognized_keys' ? i.keys : [])]),
    [['unrecognized_keys', 'voice_ids']],
  );
  const elementVoice = { ...base, prompt: '@Element1 hi', elements: [{ video_url: 'https://cdn.example.com/m.mp4', voice_id: 'v1' }] };
  for (const protocol of ['fal', 'runflow'] as const) {
    const schema = inputSchemaFor(protocol);
    assert.equal(schema.safeParse(elementVoice).success, true, protocol);
    assert.equal(
      schema.safeParse({ ...elementVoice, elements: [{ video_url: 'https://cdn.example.com/m.mp4', voice_id: '' }] }).success,
      false,
      `${protocol}: an empty voice_id`,
    );
    const frontal = { frontal_image_url: 'https://cdn.example.com/f.png', reference_image_urls: ['https://cdn.example.com/r.png'] };
    assert.equal(schema.safeParse({ ...elementVoice, elements: [{ ...frontal, voice_id: 'v1' }] }).success, false, `${protocol}: a voice on an image set`);
    const shots = (...durations: string[]) => ({
      ...base,
      duration: undefined,
      shot_type: 'customize',
      multi_prompt: durations.map((duration, i) => ({ prompt: `shot ${i + 1}`, duration })),
    });
    assert.equal(schema.safeParse(shots('1', '2')).success, true, `${protocol}: 1 s + 2 s`);
    assert.equal(schema.safeParse(shots('15')).success, true, `${protocol}: one 15 s shot`);
    assert.equal(schema.safeParse(shots('1', '1')).success, false, `${protocol}: 2 s together`);
    assert.equal(schema.safeParse(shots('10', '6')).success, false, `${protocol}: 16 s together`);
    assert.equal(schema.safeParse(shots('16')).success, false, `${protocol}: a 16 s shot`);
    assert.equal(schema.safeParse(shots('0', '5')).success, false, `${protocol}: a 0 s shot`);
  }
});

test('an element voice_id with audio is priced at the voice rate', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'priced.yaml',
    [
      'rows:',
      '  - {id: voiced, image: images/hero-landscape.jpg, prompt: "@Element1 hi", duration: 10, generate_audio: true, elements: [{video: "https://cdn.example.com/m.mp4", voice_id: v1}]}',
      '  - {id: audio, image: images/hero-landscape.jpg, prompt: "@Element1 hi", duration: 10, generate_audio: true, elements: [{video: "https://cdn.example.com/m.mp4"}]}',
    ].join('\n'),
  );
  const { manifests, problems } = await loadManifests([path.join(dir, 'priced.yaml')], fal);
  assert.deepEqual(problems, []);
  const pricing = { silentMicrosPerSecond: 112_000, audioMicrosPerSecond: 168_000, voiceMicrosPerSecond: 196_000 };
  assert.deepEqual(
    manifests[0]!.rows.map((r) => [r.id, estimateMicros(r.request, pricing)]),
    [
      ['voiced', 1_960_000],
      ['audio', 1_680_000],
    ],
  );
  const video = { kind: 'video' as const, url: 'https://cdn.example.com/m.mp4', voiceId: 'v1' };
  assert.equal(estimateMicros({ durationSeconds: 10, generateAudio: false, elements: [video] }, pricing), 1_120_000, 'no audio, no voice');
});
