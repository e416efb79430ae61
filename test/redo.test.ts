import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { estimateManifests } from '../src/commands/estimate.js';
import { retryRows } from '../src/commands/retry.js';
import { InputError } from '../src/load/problem.js';
import type { Row } from '../src/load/row.js';
import type { Report } from '../src/report/build.js';
import { latestMarks, parseMarks, renderMarks, withMark, writeMarks, type Mark } from '../src/review/marks.js';
import { effectiveRow, reviewStandingOf, withNote } from '../src/review/redo.js';
import { checkPostedMark, notRedoable, verdictsFor } from '../src/review/posted.js';
import { forgetRow } from '../src/commands/forget.js';
import { Journal } from '../src/state/journal.js';
import type { RowState } from '../src/lifecycle/events.js';
import { enqueueManifests } from '../src/fleet/enqueue.js';
import { repairWithProvider } from '../src/state/repair.js';
import { startRedis } from './redis-server.js';
import { envFor, fastPipeline, nightFolder, rowsYaml, runCli, silentServer, startCli, write } from './helpers.js';

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
  for (const hidden of ['\u200b', '\u202e', '\u2066', '\u00ad', '\u0000', '\u0085'])
    assert.throws(
      () => parseMarks(renderMarks([mark('m/a', '0123456789abcdef', 'redo', `slower${hidden} please`)]), 'review.json'),
      (e: unknown) => e instanceof InputError && e.problems[0]?.field === '[0].[note]' && e.problems[0].message.includes('invisible character'),
      `${JSON.stringify(hidden)} is refused`,
    );
  assert.equal(parseMarks(renderMarks([mark('m/a', '0123456789abcdef', 'redo', 'slower\n\tplease')]), 'review.json')[0]?.note, 'slower\n\tplease');
});

const ROW = {
  manifest: 'm',
  id: 'a',
  file: 'm.yaml',
  line: 2,
  idDerived: false,
  request: { prompt: 'sunrise', durationSeconds: 5, generateAudio: false },
} as Row;
const hashOf = (r: Row) => `h:${r.request.prompt}`;
const stateAt = (request: string, status: RowState['status'] = 'downloaded'): RowState => ({ key: 'm/a', request, status, attempts: 1, runId: 'run' });

test('the redo rule: notes chain version by version; an approval or a mark of another version changes nothing', () => {
  const chain = effectiveRow(
    ROW,
    latestMarks([mark('m/a', 'h:sunrise', 'redo', 'warmer'), mark('m/a', 'h:sunrise\n\nwarmer', 'redo', 'slower'), mark('m/b', 'h:sunrise', 'redo', 'no')]),
    {},
    hashOf,
  );
  assert.equal(chain.row.request.prompt, 'sunrise\n\nwarmer\n\nslower');
  assert.deepEqual(chain.notes, ['warmer', 'slower']);
  assert.deepEqual(chain.row.review, { base: 'h:sunrise', notes: ['warmer', 'slower'] }, "the row carries what tonight's plan records");
  assert.equal(effectiveRow(ROW, latestMarks([mark('m/a', 'h:sunrise', 'approved')]), {}, hashOf).row, ROW);
  assert.equal(effectiveRow(ROW, latestMarks([mark('m/a', 'h:other', 'redo', 'x')]), {}, hashOf).row, ROW);
  const shots = withNote(
    {
      ...ROW.request,
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

test('the redo rule: notes the journal acted on are permanent; a later mark on a version it moved past changes nothing', () => {
  const recorded = { base: 'h:sunrise', notes: ['warmer', 'slower'] };
  const none = latestMarks([]);
  const at = (request: string, marks = none) => effectiveRow(ROW, marks, { state: stateAt(request), recorded }, hashOf);
  assert.equal(at('h:sunrise\n\nwarmer').row.request.prompt, 'sunrise\n\nwarmer', 'review.json lost: the version the journal is at is kept');
  assert.equal(at('h:sunrise\n\nwarmer\n\nslower').row.request.prompt, 'sunrise\n\nwarmer\n\nslower');
  const approvedBase = latestMarks([mark('m/a', 'h:sunrise', 'approved')]);
  assert.equal(at('h:sunrise\n\nwarmer', approvedBase).row.request.prompt, 'sunrise\n\nwarmer', 'a stale approval of the old version does not take it back');
  const otherNote = latestMarks([mark('m/a', 'h:sunrise', 'redo', 'colder')]);
  assert.equal(at('h:sunrise\n\nwarmer', otherNote).row.request.prompt, 'sunrise\n\nwarmer', 'nor a note rewritten since');
  const further = latestMarks([mark('m/a', 'h:sunrise\n\nwarmer', 'redo', 'wider')]);
  assert.equal(at('h:sunrise\n\nwarmer', further).row.request.prompt, 'sunrise\n\nwarmer\n\nwider', 'a mark on the current version chains on');
  assert.equal(at('h:sunrise', approvedBase).row, ROW, 'the journal never moved past the base (the redo never ran): the approval counts');
  assert.equal(at('h:elsewhere').row, ROW, 'a state at no version of the notes: nothing is permanent');
  const edited = { ...ROW, request: { ...ROW.request, prompt: 'dusk' } };
  assert.equal(effectiveRow(edited, none, { state: stateAt('h:sunrise\n\nwarmer'), recorded }, hashOf).row, edited, 'an edited row drops the notes');
});

test('a redo mark: the next run makes exactly that row again with the note, keeps the earlier video; later runs do nothing', async (t) => {
  const { simulator, night, out, file, pipelineFile, edit } = await nightFolder(t, rowsYaml(3));
  assert.equal((await night()).exitCode, 0);
  const first = await reportOf(out);
  const before = rowOf(first, 'r1');
  // The simulator's videos of one duration are byte-identical: the earlier one is told apart by its file (inode) and its run.
  const firstVideo = await stat(path.join(out, 'm', 'r1.mp4'));
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
  const kept = await stat(path.join(out, after.earlier_output));
  assert.equal(kept.ino, firstVideo.ino, 'the earlier video is kept: the very file the first run downloaded, moved aside');
  assert.equal(kept.mtimeMs, firstVideo.mtimeMs);
  assert.notEqual((await stat(path.join(out, 'm', 'r1.mp4'))).ino, firstVideo.ino, 'the new video is another file');
  const sidecar = JSON.parse(await readFile(path.join(out, 'm', 'r1.mp4.json'), 'utf8')) as { run_id: string };
  assert.equal(sidecar.run_id, after.run_id);
  assert.notEqual(after.run_id, before.run_id, "the new video is the redo's run");
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

test('the redo rule: a version whose run may still be billed is kept (held), never abandoned; done, failed or never run is redone', () => {
  const marks = latestMarks([mark('m/a', 'h:sunrise', 'redo', 'warmer')]);
  const failure = (code: string) => ({ failure: { code, message: '', billed: false } });
  const cases: [string, Partial<RowState>, boolean, string | undefined][] = [
    ['in flight', { status: 'submitted' }, true, 'in_flight'],
    ['a lost create', { status: 'submitting' }, true, 'unanswered'],
    ['paid, not downloaded', { status: 'succeeded' }, true, 'paid'],
    ['downloaded, the file damaged', { status: 'downloaded' }, false, 'damaged'],
    ['timed out', { status: 'failed', ...failure('JOB_TIMEOUT') }, true, 'timed_out'],
    [
      'a lost create forgotten by hand (clipmill forget), never looked up',
      { status: 'failed', clientRefs: ['c1'], ...failure('FORGOTTEN') },
      true,
      'forgotten_create',
    ],
    ['a lost run forgotten by hand (no create left to look up)', { status: 'failed', ...failure('FORGOTTEN') }, true, undefined],
    ['done', { status: 'downloaded' }, true, undefined],
    ['failed for good', { status: 'failed', ...failure('VALIDATION_ERROR') }, true, undefined],
    ['never run', { status: 'pending' }, true, undefined],
  ];
  for (const [name, state, outputIntact, held] of cases) {
    const effective = effectiveRow(ROW, marks, { state: { ...stateAt('h:sunrise'), ...state } as RowState, outputIntact }, hashOf);
    assert.equal(effective.held, held, name);
    assert.equal(effective.row.request.prompt, held === undefined ? 'sunrise\n\nwarmer' : 'sunrise', name);
  }
  assert.equal(effectiveRow(ROW, marks, {}, hashOf).row.request.prompt, 'sunrise\n\nwarmer', 'no journal state: nothing can be billed');
});

test('a redo marked on a timed-out row waits: the next run checks the old run and submits no new version, and says why; the run after applies it', async (t) => {
  const { simulator, night, out, dir } = await nightFolder(t, rowsYaml(1), { simulator: { latency_ms: 300 } });
  await write(dir, 'pipeline.yaml', fastPipeline().replace('job_timeout: 30s', 'job_timeout: 100ms'));
  await night();
  const first = rowOf(await reportOf(out), 'r0');
  assert.match(first.error ?? '', /JOB_TIMEOUT/);
  await writeMarks(out, [mark('m/r0', first.request, 'redo', 'make the sky bluer')]);
  // The provider finishes the timed-out run (the test waits for it: no timer race).
  while (simulator.run(simulator.created[0]!.id)?.status !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 20));
  const lines: string[] = [];
  const second = await night({ logLine: (line) => lines.push(line) });
  assert.equal(second.plan?.counts.reattach, 1, 'the old run is checked');
  assert.equal(second.plan?.counts.submit, 0);
  assert.equal(simulator.created.length, 1, 'no new version is submitted while the old run may be billed');
  assert.match(lines.join('\n'), /m\/r0: its redo note in .*review\.json is not applied tonight: its run timed out and may still finish/);
  assert.equal(rowOf(await reportOf(out), 'r0').status, 'done', 'its video is fetched from the run that was paid');
  await night();
  assert.equal(simulator.created.length, 2, 'once done, the redo runs');
  assert.equal(simulator.created[1]?.input?.prompt, 'row 0\n\nmake the sky bluer');
});

test('a redo acted on is permanent: approving the old version afterwards (a stale page, a hand edit) pays nothing again', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(2));
  await night();
  const before = rowOf(await reportOf(out), 'r1');
  await writeMarks(out, [mark('m/r1', before.request, 'redo', 'make the sky bluer')]);
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3);
  // One mark per version: the approval replaces the redo, as a page loaded before the night would have sent it.
  await writeMarks(out, [mark('m/r1', before.request, 'approved')]);
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3, 'nothing is submitted: the journal has moved past the approved version');
  assert.equal(rowOf(await reportOf(out), 'r1').prompt, 'row 1\n\nmake the sky bluer', 'the row stays at its redone version');
});

test('review.json lost after a redo night: the journal keeps the notes, and the next run submits nothing', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(2));
  await night();
  await writeMarks(out, [mark('m/r1', rowOf(await reportOf(out), 'r1').request, 'redo', 'make the sky bluer')]);
  await night();
  assert.equal(simulator.created.length, 3);
  await rm(path.join(out, 'review.json'));
  const dry = await night({ dryRun: true });
  assert.equal(dry.plan?.counts.submit, 0, 'a dry run sees the redone version too');
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3, 'the original prompt is not submitted again');
  assert.equal(rowOf(await reportOf(out), 'r1').prompt, 'row 1\n\nmake the sky bluer');
  const estimate = await estimateManifests({
    manifests: [path.join(path.dirname(out), 'm.yaml')],
    pipelineFile: path.join(path.dirname(out), 'pipeline.yaml'),
    outDir: out,
    env: {},
  });
  assert.equal(estimate.plan.counts.submit, 0, 'nor does estimate count it');
});

test('the journal lost after a redo night: clipmill repair <manifests> looks the redone version up, not the original, and the next run pays nothing', async (t) => {
  const { simulator, night, out, file, pipelineFile } = await nightFolder(t, rowsYaml(2));
  await night();
  await writeMarks(out, [mark('m/r1', rowOf(await reportOf(out), 'r1').request, 'redo', 'make the sky bluer')]);
  await night();
  const redone = rowOf(await reportOf(out), 'r1');
  await rm(path.join(out, '.clipmill', 'journal.jsonl'));
  const repaired = await repairWithProvider({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), sinceMs: Date.now() - 3_600_000 });
  assert.doesNotMatch(repaired.lines.join('\n'), /m\/r1: run .* found at the provider/, "the original version's run is not journaled over the redone one");
  const next = await night();
  assert.equal(next.exitCode, 0);
  assert.equal(simulator.created.length, 3, 'nothing paid again');
  const row = rowOf(await reportOf(out), 'r1');
  assert.equal(row.request, redone.request, 'the row stays at its redone version');
  assert.equal(row.run_id, redone.run_id);
});

test("clipmill enqueue ignores review.json, and says so: a fleet's rows are not reviewed", async (t) => {
  const redis = await startRedis(t);
  const { simulator, out, file, pipelineFile } = await nightFolder(t, rowsYaml(2));
  const request = (await estimateManifests({ manifests: [file], pipelineFile, outDir: out, env: {} })).plan.items[0]!.request;
  await mkdir(out, { recursive: true });
  await writeMarks(out, [mark('m/r0', request, 'redo', 'make the sky bluer')]);
  const lines: string[] = [];
  const enqueued = await enqueueManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    redisUrl: redis.url,
    queue: 'q',
    print: (l) => lines.push(l),
  });
  assert.equal(enqueued.exitCode, 0);
  assert.deepEqual(
    enqueued.plan?.items.map((i) => i.row.request.prompt),
    ['row 0', 'row 1'],
    'no note is applied',
  );
  assert.match(lines.join('\n'), /review\.json: ignored: clipmill enqueue does not apply review marks/);
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

test('a note that does not fit the prompt: that row keeps its version, with a warning naming it and review.json; the rest of the night runs', async (t) => {
  const yaml = `rows:\n  - {id: r0, image: images/hero-landscape.jpg, prompt: "${'x'.repeat(2400)}", duration: 3}\n  - {id: r1, image: images/hero-landscape.jpg, prompt: "row 1", duration: 3}\n`;
  const { simulator, night, out } = await nightFolder(t, yaml);
  await night();
  const first = await reportOf(out);
  await writeMarks(out, [mark('m/r0', rowOf(first, 'r0').request, 'redo', 'y'.repeat(200)), mark('m/r1', rowOf(first, 'r1').request, 'redo', 'bluer')]);
  const lines: string[] = [];
  const second = await night({ logLine: (line) => lines.push(line) });
  assert.equal(second.exitCode, 0);
  assert.deepEqual(rowsCreated(simulator.created.slice(2)), ['r1'], 'only the row whose note fits is made again');
  assert.match(
    lines.join('\n'),
    /m\/r0: its redo note in .*review\.json is not applied tonight: it would make the prompt of .*m\.yaml:2 2602 characters, over the model's 2500; the row keeps its current version: shorten the note/,
  );
  assert.equal(rowOf(await reportOf(out), 'r0').request, rowOf(first, 'r0').request);
});

test('a corrupt review.json: an input error naming review.json, nothing sent', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(1));
  await night();
  await writeFile(path.join(out, 'review.json'), '[{"key": "m/r0",');
  await assert.rejects(
    night(),
    (e: unknown) =>
      e instanceof InputError &&
      e.problems[0]?.file.endsWith('review.json') === true &&
      /not JSON .*restore review\.json from a backup, or fix it by hand \(the journal keeps the notes/.test(e.problems[0].message) &&
      !e.problems[0].message.includes('delete'),
  );
  assert.equal(simulator.created.length, 1);
});

test('a redo of a forgotten lost create waits for --retry-failed to look the create up: the run it made is fetched, never paid again beside the redo', async (t) => {
  const { simulator, night, out, dir } = await nightFolder(t, rowsYaml(1), { simulator: { create_response_delay_ms: 400 } });
  await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 150ms'));
  // The create's answer is lost (the provider made the run); the night is stopped before its look-up: the row is unanswered.
  const stop = new AbortController();
  const lost = await night({ signal: stop.signal, logLine: (line) => void (line.includes('looking the run up by client_ref') && stop.abort()) });
  assert.equal(lost.exitCode, 130);
  assert.equal(simulator.created.length, 1, 'the provider made the run');
  await forgetRow(out, 'm/r0', 'support could not find it');
  const forgotten = rowOf(await reportOf(out), 'r0');
  const states = (await Journal.replay(out)).states;
  const standing = reviewStandingOf(states.get('m/r0'));
  assert.equal(verdictsFor(standing).redo, false, 'the review page offers no redo');
  assert.match(notRedoable(standing, 'm/r0'), /clipmill run <manifests> --retry-failed --only 'm\/r0' looks it up first/);
  const rows = new Map([['m/r0', { request: forgotten.request, standing, promptChars: 5 }]]);
  const posted = checkPostedMark({ key: 'm/r0', request: forgotten.request, verdict: 'redo', note: 'bluer' }, rows, states, new Date());
  assert.ok('status' in posted && posted.status === 400 && posted.message.includes('--retry-failed'), JSON.stringify(posted));

  // A mark written anyway (by hand, or by a page loaded before the forget): the run-time rule holds it too.
  await writeMarks(out, [mark('m/r0', forgotten.request, 'redo', 'make the sky bluer')]);
  const lines: string[] = [];
  const held = await night({ logLine: (line) => lines.push(line) });
  assert.equal(simulator.created.length, 1, 'no new version is submitted while the forgotten create may have made a run');
  assert.equal(held.exitCode, 1, 'the forgotten row stays failed');
  assert.match(
    lines.join('\n'),
    /m\/r0: its redo note in .*review\.json is not applied tonight: .*forgotten by hand .*clipmill run <manifests> --retry-failed --only 'm\/r0' looks it up first/,
  );

  const retried = await night({ retryFailed: true, only: ['m/r0'] });
  assert.equal(retried.exitCode, 0);
  assert.equal(simulator.created.length, 1, 'the look-up found the run: nothing created');
  assert.equal(rowOf(await reportOf(out), 'r0').run_id, simulator.created[0]?.id, 'its video is the run that was paid');
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 2, 'now the redo runs');
  assert.equal(simulator.created[1]?.input?.prompt, 'row 0\n\nmake the sky bluer');
});

test('status --redis and estimate --redis show the rows as the fleet runs them: review.json is ignored, and said so', async (t) => {
  const redis = await startRedis(t);
  const { simulator, out, file, pipelineFile, dir } = await nightFolder(t, rowsYaml(2));
  const fleetArgs = ['--redis', redis.url, '--queue', 'q', '--pipeline', pipelineFile, '--out', out];
  const env = envFor(simulator);
  assert.equal((await runCli(['enqueue', file, ...fleetArgs], { env, cwd: dir })).code, 0);
  const worker = await runCli(['worker', ...fleetArgs, '--until-idle', '--log', 'json'], { env, cwd: dir });
  assert.equal(worker.code, 0, worker.stderr);
  assert.equal(simulator.created.length, 2);
  const request = (await estimateManifests({ manifests: [file], pipelineFile, outDir: out, env: {} })).plan.items[0]!.request;
  // A review.json in the fleet's folder (written by hand: clipmill review refuses a fleet's folder).
  await writeMarks(out, [mark('m/r0', request, 'redo', 'make the sky bluer')]);

  const status = await runCli(['status', file, ...fleetArgs], { env, cwd: dir });
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /m: 2 rows, 2 done/, 'the row is shown at the version the fleet made, not a redo it will never run');
  assert.match(status.stderr, /review\.json: ignored: clipmill enqueue does not apply review marks/);
  const warnings: string[] = [];
  const fleet = { redisUrl: redis.url, queue: 'q' };
  const estimate = await estimateManifests({ manifests: [file], pipelineFile, outDir: out, env: {}, fleet, ignoreReview: (w) => warnings.push(w) });
  assert.equal(estimate.plan.counts.submit, 0, 'nothing to pay: the fleet does not run the redo');
  assert.equal(estimate.plan.counts.done, 2);
  assert.match(warnings.join('\n'), /review\.json: ignored/);
});

test('clipmill retry on a row whose redo note has not run yet leaves it, saying it is a redo, not an edit', async (t) => {
  const { simulator, night, out, pipelineFile } = await nightFolder(t, rowsYaml(2));
  await night();
  await writeMarks(out, [mark('m/r1', rowOf(await reportOf(out), 'r1').request, 'redo', 'make the sky bluer')]);
  const lines: string[] = [];
  const retried = await retryRows(['m/r1'], { pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: (line) => lines.push(line) });
  assert.equal(simulator.created.length, 2, 'nothing sent');
  assert.equal(retried.plan?.counts.submit, 0);
  assert.match(
    lines.join('\n'),
    /m\/r1 has a redo note in review\.json that has not run yet \(a new version of the row, not a retry\): run it with clipmill run --only/,
  );
  assert.doesNotMatch(lines.join('\n'), /was edited/);
});

test('Ctrl-C stops clipmill enqueue during a manifest download at once: exit 130, nothing enqueued', async (t) => {
  const { port, asked } = await silentServer(t);
  const { out, pipelineFile, dir } = await nightFolder(t, rowsYaml(1));
  const url = `spring=http://127.0.0.1:${port}/pub`;
  // No Redis is reached: the download is stopped before enqueue connects.
  const cli = startCli(['enqueue', url, '--redis', 'redis://127.0.0.1:1', '--queue', 'q', '--pipeline', pipelineFile, '--out', out], {
    cwd: dir,
    env: { RUNFLOW_API_KEY: 'test-key' },
  });
  asked.push(() => cli.child.kill('SIGINT'));
  const result = await cli.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /interrupted while downloading a manifest; nothing was sent/);
});
