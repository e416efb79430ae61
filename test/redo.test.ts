import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { estimateManifests } from '../src/commands/estimate.js';
import { InputError } from '../src/load/problem.js';
import type { Row } from '../src/load/row.js';
import type { Report } from '../src/report/build.js';
import { latestMarks, parseMarks, renderMarks, withMark, writeMarks, type Mark } from '../src/review/marks.js';
import { redoChain, withNote } from '../src/review/redo.js';
import { nightFolder, rowsYaml } from './helpers.js';

const AT = '2026-01-02T03:04:05.000Z';
const mark = (key: string, request: string, verdict: Mark['verdict'], note?: string): Mark => ({ key, request, verdict, ...(note && { note }), at: AT });
const rowsCreated = (created: readonly { metadata: unknown }[]) => created.map((c) => (c.metadata as { clipmill_row: string }).clipmill_row);
const reportOf = async (out: string) => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
const rowOf = (report: Report, id: string) => report.rows.find((r) => r.id === id)!;

test('review.json: one mark per line, read back; the later mark for a version wins; a bad file names its line and field', () => {
  const marks = [mark('m/a', '0123456789abcdef', 'approved'), mark('m/b', 'fedcba9876543210', 'redo', 'brighter')];
  const text = renderMarks(marks);
  assert.equal(text.split('\n').length, 5, '[, two marks, ], and the final newline');
  assert.deepEqual(parseMarks(text, 'review.json'), marks);

  const changed = withMark(marks, mark('m/a', '0123456789abcdef', 'redo', 'slower'));
  assert.equal(changed.length, 2, 'one mark per version: a new verdict replaces the old');
  assert.equal(latestMarks([...marks, mark('m/a', '0123456789abcdef', 'redo', 'x')]).get('m/a\u00000123456789abcdef')?.verdict, 'redo');

  assert.throws(
    () => parseMarks('[{"key":', '/out/review.json'),
    (e: unknown) => e instanceof InputError && e.problems[0]?.file === '/out/review.json' && e.problems[0].message.includes('not JSON'),
  );
  const bad = renderMarks([marks[0]!, { ...mark('m/b', 'fedcba9876543210', 'redo'), note: '  ' }]);
  assert.throws(
    () => parseMarks(bad, 'review.json'),
    (e: unknown) =>
      e instanceof InputError && e.problems[0]?.line === 3 && e.problems[0].field === '[1].[note]' && e.problems[0].message.includes('needs a note'),
  );
  assert.throws(
    () => parseMarks('[{"key":"m/a","request":"nothex","verdict":"ok","at":"x"}]', 'review.json'),
    (e: unknown) => e instanceof InputError && e.problems.length === 3,
  );
});

test('the redo rule: notes chain version by version; an approval or a mark of another version changes nothing', () => {
  const row = {
    manifest: 'm',
    id: 'a',
    file: 'm.yaml',
    line: 2,
    idDerived: false,
    request: { prompt: 'sunrise', durationSeconds: 5, generateAudio: false },
  } as Row;
  const hashOf = (r: Row) => `h:${r.request.prompt}`;
  const chain = redoChain(
    row,
    latestMarks([mark('m/a', 'h:sunrise', 'redo', 'warmer'), mark('m/a', 'h:sunrise\n\nwarmer', 'redo', 'slower'), mark('m/b', 'h:sunrise', 'redo', 'no')]),
    hashOf,
  );
  assert.equal(chain.row.request.prompt, 'sunrise\n\nwarmer\n\nslower');
  assert.deepEqual(chain.notes, ['warmer', 'slower']);
  assert.equal(redoChain(row, latestMarks([mark('m/a', 'h:sunrise', 'approved')]), hashOf).row, row);
  assert.equal(redoChain(row, latestMarks([mark('m/a', 'h:other', 'redo', 'x')]), hashOf).row, row);
  const shots = withNote(
    {
      ...row.request,
      prompt: undefined,
      multiPrompt: [
        { prompt: 'one', durationSeconds: 2 },
        { prompt: 'two', durationSeconds: 3 },
      ],
    } as never,
    'n',
  );
  assert.deepEqual(
    shots.multiPrompt?.map((s) => s.prompt),
    ['one\n\nn', 'two\n\nn'],
    'a multi-shot row: the note goes to every shot',
  );
});

test('a redo mark: the next run makes exactly that row again with the note, keeps the earlier video; later runs do nothing', async (t) => {
  const { simulator, night, out, file, pipelineFile, edit } = await nightFolder(t, rowsYaml(3));
  assert.equal((await night()).exitCode, 0);
  const first = await reportOf(out);
  const before = rowOf(first, 'r1');
  await writeMarks(out, [mark('m/r0', rowOf(first, 'r0').request, 'approved'), mark('m/r1', before.request, 'redo', 'make the sky bluer')]);

  const estimate = await estimateManifests({ manifests: [file], pipelineFile, outDir: out, env: {} });
  assert.equal(estimate.plan.counts.submit, 1, 'estimate sees the redo row');
  const dry = await night({ dryRun: true });
  assert.equal(dry.plan?.counts.submit, 1, 'so does a dry run');
  assert.equal(simulator.created.length, 3, 'neither sends anything');

  const redo = await night();
  assert.equal(redo.exitCode, 0);
  assert.deepEqual(rowsCreated(simulator.created.slice(3)), ['r1'], 'only the redo row is submitted');
  assert.equal(simulator.created[3]?.input?.prompt, 'row 1\n\nmake the sky bluer', 'its prompt ends with the note');
  const after = rowOf(await reportOf(out), 'r1');
  assert.notEqual(after.request, before.request);
  assert.equal(after.prompt, 'row 1\n\nmake the sky bluer');
  assert.equal(after.changed, true);
  assert.equal(after.earlier_output, `m/r1.${before.request.slice(0, 8)}.mp4`);
  assert.equal((await readFile(path.join(out, after.earlier_output))).length, before.bytes, 'the earlier video is kept');
  assert.ok(existsSync(path.join(out, 'm', 'r1.mp4')));

  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 4, 'a third run submits nothing: the row with its note is done');
  await writeMarks(out, withMark(JSON.parse(await readFile(path.join(out, 'review.json'), 'utf8')) as Mark[], mark('m/r1', after.request, 'approved')));
  await night();
  assert.equal(simulator.created.length, 4, 'approving the new version changes nothing');

  await edit(rowsYaml(3).replace('prompt: "row 1"', 'prompt: "row 1, at dusk"'));
  await night();
  assert.deepEqual(rowsCreated(simulator.created.slice(4)), ['r1']);
  assert.equal(simulator.created[4]?.input?.prompt, 'row 1, at dusk', 'the manifest edit wins: the old notes are dropped');
});

test('a redo the budget cannot pay for is refused and nothing is sent', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(2));
  await night();
  const first = await reportOf(out);
  await writeMarks(out, [mark('m/r0', rowOf(first, 'r0').request, 'redo', 'again')]);
  const refused = await night({ maxCostUsd: first.totals.actual_usd + rowOf(first, 'r0').estimated_usd / 2 });
  assert.equal(refused.exitCode, 3);
  assert.equal(simulator.created.length, 2, 'nothing sent');
  assert.equal((await night()).exitCode, 0, 'with room in the budget, it runs');
  assert.equal(simulator.created.length, 3);
});

test('a corrupt review.json, or notes that make a prompt too long: an input error naming review.json and the row, nothing sent', async (t) => {
  const long = `rows:\n  - {id: r0, image: images/hero-landscape.jpg, prompt: "${'x'.repeat(2400)}", duration: 3}\n`;
  const { simulator, night, out } = await nightFolder(t, long);
  await night();
  const request = rowOf(await reportOf(out), 'r0').request;
  await writeMarks(out, [mark('m/r0', request, 'redo', 'y'.repeat(200))]);
  await assert.rejects(
    night(),
    (e: unknown) =>
      e instanceof InputError &&
      e.problems[0]?.file.endsWith('review.json') === true &&
      e.problems[0].field === 'm/r0' &&
      e.problems[0].message.includes('2602 characters'),
  );
  await writeFile(path.join(out, 'review.json'), '[{"key": "m/r0",');
  await assert.rejects(night(), (e: unknown) => e instanceof InputError && e.problems[0]?.file.endsWith('review.json') === true);
  assert.equal(simulator.created.length, 1);
});
