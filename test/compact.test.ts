import assert from 'node:assert/strict';
import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { rebuildReports } from '../src/commands/report.js';
import { compareWithProvider } from '../src/commands/audit.js';
import type { JournalEvent } from '../src/lifecycle/events.js';
import { compactJournal, compactedEvents, worthCompacting } from '../src/state/compact.js';
import { Replay } from '../src/state/replay.js';
import { Journal } from '../src/state/journal.js';
import { acquireLock } from '../src/state/lock.js';
import { writeMarks } from '../src/review/marks.js';
import type { Report } from '../src/report/build.js';
import { nightFolder, rowsYaml, write } from './helpers.js';

async function compactUnderLock(out: string) {
  const lock = await acquireLock(out);
  try {
    return await compactJournal(out);
  } finally {
    await lock.release();
  }
}

test("a compacted journal reads as the old one did: the same rows, every billed run (an edited row's earlier one too), a run still in flight re-attached, never paid again", async (t) => {
  const { simulator, out, night, edit } = await nightFolder(t, rowsYaml(4));

  assert.equal((await night()).exitCode, 0);
  // Night 2: one row edited (its first video was paid, and stays in the ledger as superseded), one row added; stopped while the provider holds the new runs.
  await edit(rowsYaml(5).replace('prompt: "row 0"', 'prompt: "row 0, edited"'));
  simulator.hold();
  const stop = new AbortController();
  let submitted = 0;
  assert.equal(
    (await night({ signal: stop.signal, logLine: (line) => void (line.includes('submitted as') && ++submitted === 2 && stop.abort()) })).exitCode,
    130,
  );
  const created = simulator.created.length;

  const journal = path.join(out, '.clipmill', 'journal.jsonl');
  const old = await readFile(journal);
  const before = await Journal.replay(out, { planItems: true });
  const ledgerBefore = JSON.stringify(before.billedRuns());
  const compacted = await compactUnderLock(out);
  assert.ok(compacted && compacted.afterBytes < compacted.beforeBytes, JSON.stringify(compacted));
  assert.deepEqual(gunzipSync(await readFile(compacted.archive)), old, 'the old journal is kept whole');
  const after = await Journal.replay(out, { planItems: true });
  assert.deepEqual([...after.states], [...before.states]);
  assert.equal(JSON.stringify(after.billedRuns()), ledgerBefore);
  assert.equal(after.billedRuns().filter((r) => r.superseded).length, 1, "the edited row's first run is still billed");
  const report = await rebuildReports(out);
  assert.equal(report.report.billed_runs.length, 4, 'the runs in flight are not billed yet');
  assert.equal(report.warning, undefined);

  // Night 3 after the compaction: the runs in flight are re-attached, nothing is created again, and every row ends done.
  simulator.release();
  const third = await night();
  assert.equal(third.exitCode, 0);
  assert.equal(simulator.created.length, created, 'nothing paid twice');
  assert.deepEqual(
    third.report?.rows.map((r) => r.status),
    ['done', 'done', 'done', 'done', 'done'],
  );
  assert.equal(third.report?.billed_runs.length, 6, '4 first-night runs, the edited row and the added row');
  assert.equal((await readdir(path.join(out, '.clipmill', 'archive'))).length, 1);
});

test('a journal is compacted by a run only once it is large and mostly history', async (t) => {
  const { out, night, edit } = await nightFolder(t, rowsYaml(3));
  await night();
  assert.equal(worthCompacting(await Journal.replay(out), 100 * 1024 * 1024), false, 'one night: about two events per fact it adds up to');
  await edit(rowsYaml(3).replace(/prompt: "row/g, 'prompt: "edited row'));
  await night();
  const edited = await Journal.replay(out);
  assert.equal(worthCompacting(edited, 100 * 1024 * 1024), true, 'every row made again: mostly history, and large');
  assert.equal(worthCompacting(edited, 64 * 1024), false, 'small: reading it costs nothing');
  await assert.rejects(readdir(path.join(out, '.clipmill', 'archive')), { code: 'ENOENT' }, 'a small journal is left alone');
});

test('a run that lost the folder to another run leaves the journal as it is: the other run is appending to it', async (t) => {
  const { out, night } = await nightFolder(t, rowsYaml(2));
  await night();
  const journal = path.join(out, '.clipmill', 'journal.jsonl');
  const before = await readFile(journal);
  await assert.rejects(compactJournal(out, new Date(), AbortSignal.abort()), /taken over by another run/);
  assert.deepEqual(await readFile(journal), before);
  assert.deepEqual(
    (await readdir(path.join(out, '.clipmill'))).filter((name) => name.includes('compact')),
    [],
    'no half-made journal is left behind',
  );
});

test("after compaction, clipmill audit still knows a lost create's client_ref as this folder's: its paid run is UNKNOWN, not another folder's", () => {
  const lost = 'clipmill-0123456789-0123456789abcdef-a1-0badf00d';
  const found = 'clipmill-0123456789-0123456789abcdef-a2-0badf00d';
  const at = '2026-11-24T03:00:00.000Z';
  const base = { at, session: at, key: 'm/a', request: '0123456789abcdef' };
  const events: JournalEvent[] = [
    { ...base, type: 'submitting', attempt: 1, clientRef: lost },
    { ...base, type: 'not_submitted', code: 'NOT_CREATED', message: 'not listed' },
    { ...base, type: 'submitting', attempt: 2, clientRef: found },
    { ...base, type: 'submitted', runId: 'run-2' },
    { ...base, type: 'succeeded', runId: 'run-2', costMicros: 700_000 },
  ];
  const replay = Replay.of(events, { submits: true });
  const compacted = [...compactedEvents(replay, at)];
  const listed = [
    { runId: 'run-1', clientRef: lost, status: 'succeeded', costMicros: 700_000, createdAt: at },
    { runId: 'run-2', clientRef: found, status: 'succeeded', costMicros: 700_000, createdAt: at },
  ];
  for (const journal of [events, compacted]) {
    const findings = compareWithProvider(listed, journal, 0);
    assert.deepEqual(
      findings.unknownToJournal.map((r) => r.runId),
      ['run-1'],
    );
    assert.deepEqual(findings.otherFolders, []);
    assert.equal(findings.paidTwice.length, 1, 'the same row paid twice');
  }
});

test('compaction keeps the review notes of rows the last plan did not name: review.json lost afterwards, the redone row is not paid again at its original version', async (t) => {
  const { simulator, night, out, dir, file } = await nightFolder(t, rowsYaml(2));
  const other = await write(dir, 'n.yaml', rowsYaml(1, { from: 5 }));
  const both = (extra = {}) => night({ manifests: [file, other], ...extra });
  await both();
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  const r1 = report.rows.find((row) => row.id === 'r1')!;
  await writeMarks(out, [{ key: 'm/r1', request: r1.request, verdict: 'redo', note: 'make the sky bluer', at: '2026-01-02T03:04:05.000Z' }]);
  await both();
  assert.equal(simulator.created.length, 4, 'three rows, then the redo');
  // A night over n.yaml only (m.yaml run another night, or skipped as invalid): its plan does not name m/r1.
  await night({ manifests: [other] });
  assert.ok(await compactUnderLock(out));
  assert.deepEqual(
    [...(await Journal.replay(out)).reviews],
    [['m/r1', { base: r1.request, notes: ['make the sky bluer'] }]],
    'the compacted journal still holds the notes',
  );
  await rm(path.join(out, 'review.json'));
  assert.equal((await both({ dryRun: true })).plan?.counts.submit, 0, 'a dry run sees the redone version');
  assert.equal((await both()).exitCode, 0);
  assert.equal(simulator.created.length, 4, "m/r1's original version is not paid again");
  const after = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(after.rows.find((row) => row.id === 'r1')?.prompt, 'row 1\n\nmake the sky bluer');
});

test('a row edited while its run is unfinished: the old run counts at its estimate (no one polls it again), through a compaction too, and the run says so', async (t) => {
  const { simulator, out, night, edit } = await nightFolder(t, rowsYaml(2));
  simulator.hold();
  const stop = new AbortController();
  const first = await night({ signal: stop.signal, logLine: (line) => void (line.includes('m/r0: submitted as') && stop.abort()) });
  assert.equal(first.exitCode, 130);
  const oldRun = (await Journal.replay(out)).states.get('m/r0')?.runId;
  assert.ok(oldRun, 'r0 was in flight when the night stopped');
  simulator.release();

  await edit(rowsYaml(2).replace('prompt: "row 0"', 'prompt: "row 0, edited"'));
  const logged: string[] = [];
  const second = await night({ logLine: (line) => logged.push(line) });
  assert.equal(second.exitCode, 0);
  assert.match(logged.join('\n'), new RegExp(`m/r0 changed .* while its run ${oldRun} was unfinished: .*counts at its estimate`));
  const old = second.report?.billed_runs.find((r) => r.run_id === oldRun);
  assert.deepEqual([old?.superseded, old?.cost_source, old?.cost_usd], [true, 'estimate', 0.42], 'finance sees the run the provider may bill');
  assert.equal(second.report?.money.billed_usd, 1.26, 'both rows, and the abandoned run of the earlier version');

  const before = JSON.stringify((await Journal.replay(out)).billedRuns());
  assert.ok(await compactUnderLock(out));
  assert.equal(JSON.stringify((await Journal.replay(out)).billedRuns()), before, 'a compacted journal keeps it');

  // Edited back: the old run is still polled by no one, so it still counts (the revert is a new run of that request).
  await edit(rowsYaml(2));
  const third = await night();
  assert.equal(third.exitCode, 0);
  assert.ok(
    third.report?.billed_runs.some((r) => r.run_id === oldRun),
    'an edit back does not make the abandoned run disappear from the ledger',
  );
});
