import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { parseCsvManifest } from '../src/load/csv.js';
import { loadManifests } from '../src/load/load.js';
import { parseYamlManifest } from '../src/load/yaml.js';
import { formatProblem } from '../src/load/problem.js';
import { workspace, write } from './helpers.js';

const noDefaults = { defaults: new Map() };

function cells(rows: ReturnType<typeof parseCsvManifest>['rows']) {
  return rows.map((r) => ({ line: r.line, ...Object.fromEntries([...r.fields].map(([k, v]) => [k, v.value])) }));
}

test('CSV from Excel (semicolon, BOM, CRLF, stray header spaces, quoted ; and line breaks, blank rows) reads every row on its own line', () => {
  const text =
    '\uFEFF id ; Image ;Prompt  ; duration ;Generate Audio\r\n' +
    'a;images/hero-landscape.jpg;"Pan left; then right";5;TRUE\r\n' +
    'b;images/hero-landscape.jpg;"Line one\r\nline two, with a comma";6;FALSE\r\n' +
    ';;;;\r\n' +
    'c;images/hero-landscape.jpg;"Say ""hello""";7;no\r\n' +
    '\r\n\r\n';
  const { rows, problems } = parseCsvManifest(Buffer.from(text, 'utf8'), 'promo.csv');
  assert.deepEqual(problems, []);
  assert.deepEqual(cells(rows), [
    { line: 2, id: 'a', image: 'images/hero-landscape.jpg', prompt: 'Pan left; then right', duration: '5', generate_audio: 'TRUE' },
    { line: 3, id: 'b', image: 'images/hero-landscape.jpg', prompt: 'Line one\nline two, with a comma', duration: '6', generate_audio: 'FALSE' },
    { line: 6, id: 'c', image: 'images/hero-landscape.jpg', prompt: 'Say "hello"', duration: '7', generate_audio: 'no' },
  ]);
});

test('CSV from Google Sheets (comma, LF, no BOM, no final newline) and LibreOffice (sep= line, Windows-1252)', () => {
  const sheets = parseCsvManifest(Buffer.from('id,image,prompt,duration\nx,a.png,"One, two",3\ny,a.png,Three,4'), 'sheets.csv');
  assert.deepEqual(cells(sheets.rows), [
    { line: 2, id: 'x', image: 'a.png', prompt: 'One, two', duration: '3' },
    { line: 3, id: 'y', image: 'a.png', prompt: 'Three', duration: '4' },
  ]);
  // "Café" in Windows-1252 is 43 61 66 E9: not valid UTF-8.
  const legacy = Buffer.concat([Buffer.from('sep=;\r\nid;image;prompt;duration\r\nz;a.png;Caf'), Buffer.from([0xe9]), Buffer.from(';5\r\n')]);
  const parsed = parseCsvManifest(legacy, 'legacy.csv');
  assert.deepEqual(cells(parsed.rows), [{ line: 3, id: 'z', image: 'a.png', prompt: 'Café', duration: '5' }]);
});

test('CSV saved as UTF-16 "Unicode text" with tabs reads the same', () => {
  const text = 'id\timage\tprompt\tduration\r\nu\ta.png\tÜber den Wolken\t8\r\n';
  const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
  assert.deepEqual(cells(parseCsvManifest(bytes, 'u16.csv').rows), [{ line: 2, id: 'u', image: 'a.png', prompt: 'Über den Wolken', duration: '8' }]);
});

test('CSV problems name the line: an unclosed quote, a cell without a header, a duplicated column', () => {
  const unclosed = parseCsvManifest(Buffer.from('id,prompt\na,"never closed\nb,fine\n'), 'bad.csv');
  assert.equal(unclosed.problems.length, 1);
  assert.match(formatProblem(unclosed.problems[0]!), /^bad\.csv:\d+: CSV syntax: /);
  const extra = parseCsvManifest(Buffer.from('id,prompt,prompt\na,b,c,stray\n'), 'extra.csv');
  assert.deepEqual(extra.problems.map(formatProblem), [
    'extra.csv:1: prompt: column appears twice in the header',
    'extra.csv:2: column 4: "stray" is in a column without a header name',
  ]);
});

test('YAML manifest keeps the line of each row and field, and reports syntax errors with their line', () => {
  const parsed = parseYamlManifest('defaults:\n  duration: 5\nrows:\n  - id: a\n    prompt: hi\n  - id: b\n    prompt: there\n', 'm.yaml');
  assert.deepEqual(parsed.problems, []);
  assert.deepEqual(
    parsed.rows.map((r) => [r.line, r.fields.get('prompt')?.line]),
    [
      [4, 5],
      [6, 7],
    ],
  );
  assert.equal(parsed.defaults.get('duration')?.value, 5);
  const broken = parseYamlManifest('rows:\n  - id: a\n    prompt: x\n    prompt: y\n', 'broken.yaml');
  assert.deepEqual(broken.problems.map(formatProblem), ['broken.yaml:4: YAML syntax: Map keys must be unique']);
});

test('defaults apply pipeline < manifest < row, and spreadsheet values are coerced', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'a.yaml',
    [
      'defaults:',
      '  duration: 6',
      '  generate_audio: yes',
      'rows:',
      '  - image: images/hero-landscape.jpg',
      '    prompt: one',
      '  - image: images/hero-landscape.jpg',
      '    prompt: two',
      '    duration: "9s"',
      '    cfg_scale: "0,3"',
      '    generate_audio: "No"',
    ].join('\n'),
  );
  const pipelineDefaults = new Map([
    ['negative_prompt', { value: 'blurry', file: path.join(dir, 'p.yaml'), line: 3 }],
    ['duration', { value: 4, file: path.join(dir, 'p.yaml'), line: 4 }],
  ]);
  const { manifests, problems } = await loadManifests([path.join(dir, 'a.yaml')], { defaults: pipelineDefaults });
  assert.deepEqual(problems, []);
  const [first, second] = manifests[0]!.rows;
  assert.deepEqual([first!.request.durationSeconds, first!.request.generateAudio, first!.request.negativePrompt], [6, true, 'blurry']);
  assert.deepEqual([second!.request.durationSeconds, second!.request.generateAudio, second!.request.cfgScale], [9, false, 0.3]);
  assert.match(first!.id, /^row-[0-9a-f]{10}$/, 'a row without an id gets a stable derived one');
  assert.notEqual(first!.id, second!.id);
});

test('a folder loads every .yaml, .yml and .csv in it, each as its own manifest', async (t) => {
  const dir = await workspace(t);
  await write(dir, 'one.yaml', 'rows:\n  - image: images/hero-landscape.jpg\n    prompt: a\n    duration: 3\n');
  await write(dir, 'two.yml', 'rows:\n  - image: images/hero-landscape.jpg\n    prompt: b\n    duration: 4\n');
  await write(dir, 'three.csv', 'image,prompt,duration\nimages/hero-landscape.jpg,c,5\n');
  await write(dir, 'notes.txt', 'not a manifest');
  const { manifests, problems } = await loadManifests([dir], noDefaults);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    manifests.map((m) => [m.name, m.rows.length]),
    [
      ['one', 1],
      ['three', 1],
      ['two', 1],
    ],
  );
});

test('images are checked from their bytes: too small, too wide, not an image', async (t) => {
  const dir = await workspace(t);
  // A PNG header is enough for the size check: signature, IHDR length and type, width, height.
  const png = (w: number, h: number) =>
    Buffer.concat(
      [Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.from(new Uint32Array([0, 0]).buffer), Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0])].map(
        (b, i) => (i === 1 ? Buffer.from([w >> 24, (w >> 16) & 255, (w >> 8) & 255, w & 255, h >> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255]) : b),
      ),
    );
  await write(dir, 'small.png', png(200, 200));
  await write(dir, 'wide.png', png(3000, 1000));
  await write(dir, 'fake.png', '<html>not an image</html>');
  await write(
    dir,
    'm.yaml',
    ['rows:', ...['small.png', 'wide.png', 'fake.png'].map((f, i) => `  - {id: r${i}, image: ${f}, prompt: p, duration: 5}`)].join('\n'),
  );
  const { problems } = await loadManifests([path.join(dir, 'm.yaml')], noDefaults);
  const shown = problems.map((p) => `${p.line}: ${p.field}: ${p.message}`);
  assert.equal(shown.length, 3, shown.join('\n'));
  assert.match(shown[0]!, /^2: image: "small\.png" is 200x200 px \(each side at least 300 px\)/);
  assert.match(shown[1]!, /^3: image: "wide\.png" is 3000x1000 px, aspect ratio 3\.00 \(allowed 0\.4 to 2\.5\)/);
  assert.match(shown[2]!, /^4: image: "fake\.png" is not an image/);
});

test('elements and voices: references in prompts must exist, videos are https, voices need audio; CSV numbered columns read as lists', async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'm.yaml',
    [
      'rows:',
      '  - id: two-elements', // 2
      '    image: images/hero-landscape.jpg',
      '    prompt: "@Element1 meets @Element3 and says <<<voice_2>>> hi"', // 4
      '    duration: 5',
      '    generate_audio: true',
      '    voice_ids: [v1]',
      '    elements:',
      '      - {frontal_image: images/story-portrait.jpg, reference_images: [images/banner-4x3.jpg]}',
      '      - {video: "http://example.com/clip.mp4"}', // 10 (reported at the elements key, line 8)
      '  - id: mute-voice', // 11
      '    image: images/hero-landscape.jpg',
      '    prompt: hello',
      '    duration: 5',
      '    voice_ids: [v1, v2, v3]', // 15
      '  - id: no-refs', // 16
      '    image: images/hero-landscape.jpg',
      '    prompt: p',
      '    duration: 5',
      '    elements:',
      '      - {frontal_image: images/story-portrait.jpg, reference_images: []}', // 21 → at line 20
    ].join('\n'),
  );
  const { problems } = await loadManifests([path.join(dir, 'm.yaml')], noDefaults);
  const shown = problems.map((p) => `${p.line}: ${p.field}: ${p.message}`);
  assert.deepEqual(
    shown.sort(),
    [
      "15: voice_ids: must be 1 to 2 voice ids (from Kling's create-voice endpoint)",
      '20: elements[1].reference_images: needs 1 to 3 images, got 0',
      '8: elements[2].video: "http://example.com/clip.mp4" must be an https URL of a 3 to 10 second video',
    ].sort(),
  );

  await write(
    dir,
    'ok.yaml',
    'rows:\n  - {id: r, image: images/hero-landscape.jpg, prompt: "@Element1 meets @Element3 <<<voice_2>>>", duration: 5, generate_audio: true, voice_ids: [v1], elements: [{frontal_image: images/story-portrait.jpg, reference_images: [images/banner-4x3.jpg]}, {video: "https://cdn.example.com/c.mp4"}]}\n  - {id: s, image: images/hero-landscape.jpg, prompt: "<<<voice_1>>>", duration: 5, voice_ids: [v1]}\n',
  );
  const refs = await loadManifests([path.join(dir, 'ok.yaml')], noDefaults);
  assert.deepEqual(
    refs.problems.map((p) => `${p.line}: ${p.field}: ${p.message}`),
    [
      '2: prompt: refers to @Element3 but the row has 2 elements',
      '2: prompt: refers to <<<voice_2>>> but the row has 1 voice (voice_ids)',
      '3: voice_ids: voices need generate_audio: true',
    ],
  );

  await write(
    dir,
    'sheet.csv',
    'id,image,shot_1_prompt,shot_1_duration,shot_2_prompt,shot_2_duration,element_1_frontal,element_1_references,element_2_video,voice_1,generate_audio\nx,images/hero-landscape.jpg,Wide,3,@Element2 close <<<voice_1>>>,4,images/story-portrait.jpg,images/banner-4x3.jpg | images/product-square.png,https://cdn.example.com/v.mp4,v9,yes\n',
  );
  const sheet = await loadManifests([path.join(dir, 'sheet.csv')], noDefaults);
  assert.deepEqual(sheet.problems, []);
  const request = sheet.manifests[0]!.rows[0]!.request;
  assert.deepEqual(request.multiPrompt, [
    { prompt: 'Wide', durationSeconds: 3 },
    { prompt: '@Element2 close <<<voice_1>>>', durationSeconds: 4 },
  ]);
  assert.equal(request.durationSeconds, 7);
  assert.deepEqual(
    request.elements?.map((e) => (e.kind === 'images' ? e.references.length : e.url)),
    [2, 'https://cdn.example.com/v.mp4'],
  );
  assert.deepEqual(request.voiceIds, ['v9']);
});

test("a typo in a manifest's defaults is an error with its line; a row choosing multi_prompt is not overruled by a default prompt", async (t) => {
  const dir = await workspace(t);
  await write(
    dir,
    'd.yaml',
    [
      'defaults:',
      '  generate_audo: true',
      '  prompt: a default prompt',
      'rows:',
      '  - id: shots',
      '    image: images/hero-landscape.jpg',
      '    multi_prompt: [{prompt: a, duration: 3}, {prompt: b, duration: 4}]',
      '    shot_type: intelligent',
      '  - id: plain',
      '    image: images/hero-landscape.jpg',
      '    duration: 5',
      '    shot_type: customize',
    ].join('\n'),
  );
  const { manifests, problems } = await loadManifests([path.join(dir, 'd.yaml')], noDefaults);
  assert.deepEqual(
    problems.map((p) => `${p.line}: ${p.field}: ${p.message.split(' (')[0]}`),
    ['2: defaults.generate_audo: not a row field that can have a default', '12: shot_type: only applies to multi_prompt rows'],
  );
  assert.equal(manifests[0]?.rows.find((r) => r.id === 'shots')?.request.multiPrompt?.length, 2);
});
