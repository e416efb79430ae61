import assert from 'node:assert/strict';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { Report } from '../src/report/build.js';
import type { JournalEvent, PlannedItem } from '../src/lifecycle/events.js';
import { lastPlan, MAX_PLAN_DIFFERENCES, planRecord, type RecordedPlan } from '../src/state/plans.js';
import { InputError } from '../src/load/problem.js';
import { Journal } from '../src/state/journal.js';
import { nightFolder, rowsYaml, runCli, tempDir } from './helpers.js';

function item(key: string, request = 'r1', action = 'done'): PlannedItem {
  return { key, request, action, estimateMicros: 420_000, changed: false, row: { manifest: 'm', id: key.slice(2), line: 1 } as unknown as PlannedItem['row'] };
}

/** The planned events a journal would hold for these plans, in order; each recorded against the last plan's fingerprints, as a run keeps it. */
function journalOf(plans: Pick<RecordedPlan, 'provider' | 'manifests' | 'items'>[]): JournalEvent[] {
  const events: JournalEvent[] = [];
  plans.forEach((plan, night) => {
    const session = `2026-11-2${night}T03:00:00.000Z`;
    events.push({ at: session, session, ...planRecord(session, plan, lastPlan(events, false)) } as JournalEvent);
  });
  return events;
}

const base = { provider: 'runflow', manifests: [{ name: 'm', file: '/m.yaml', shown: 'm.yaml' }] };

test('a plan is recorded as its differences from the last one, and replays to the same plan (edited, removed, added and reordered rows)', () => {
  const first = { ...base, items: [item('m/a'), item('m/b'), item('m/c')] };
  const same = { ...base, items: [item('m/a'), item('m/b'), item('m/c')] };
  const edited = { ...base, items: [item('m/c'), item('m/a', 'r2', 'submit'), item('m/d', 'r1', 'submit')] };
  const events = journalOf([first, same, edited]);
  const planned = events.filter((e): e is Extract<JournalEvent, { type: 'planned' }> => e.type === 'planned');
  assert.equal(planned[0]?.items.length, 3, 'the first plan is whole');
  assert.deepEqual(planned[1]?.items, [], 'a night with nothing new records no row');
  assert.equal(planned[1]?.keys, undefined, 'nor the row order, which is the same');
  assert.deepEqual(
    planned[2]?.items.map((i) => i.key),
    ['m/a', 'm/d'],
    'only the edited and the new row',
  );
  assert.deepEqual(planned[2]?.keys, ['m/c', 'm/a', 'm/d'], 'the new order, since it changed');
  assert.deepEqual(lastPlan(events.slice(0, 2))?.items, first.items);
  assert.deepEqual(lastPlan(events)?.items, edited.items);
  assert.equal(lastPlan(events)?.session, '2026-11-22T03:00:00.000Z');
  assert.equal(lastPlan(events)?.incomplete, false);
});

test('a plan difference whose base was lost (a repaired journal) is read as incomplete, and the next plan is recorded whole again', () => {
  const first = { ...base, items: [item('m/a'), item('m/b')] };
  const added = { ...base, items: [item('m/a'), item('m/b'), item('m/c')] };
  const edited = { ...base, items: [item('m/a', 'r2'), item('m/b'), item('m/c')] };
  const events = journalOf([first, added, edited]);
  const lost = [events[0]!, events[2]!]; // the line that added m/c was damaged and dropped
  const replayed = lastPlan(lost);
  assert.equal(replayed?.incomplete, true, 'said, not hidden');
  assert.equal(lastPlan(lost, false)?.incomplete, true, 'also when only fingerprints are kept');
  assert.deepEqual(
    replayed?.items.map((i) => i.key),
    ['m/a', 'm/b'],
    'what is known is kept',
  );
  const next = planRecord('2026-11-23T03:00:00.000Z', edited, lastPlan(lost, false));
  assert.equal(next.base, undefined, 'the next plan is whole');
  assert.equal(next.items.length, 3);
});

test(`a whole plan is recorded again after ${MAX_PLAN_DIFFERENCES} differences, so a lost line costs a bounded number of nights`, () => {
  const plan = { ...base, items: [item('m/a'), item('m/b')] };
  const events = journalOf(Array.from({ length: MAX_PLAN_DIFFERENCES + 2 }, () => plan));
  const planned = events.filter((e): e is Extract<JournalEvent, { type: 'planned' }> => e.type === 'planned');
  assert.deepEqual(
    planned.map((p, i) => (p.base === undefined ? i : -1)).filter((i) => i >= 0),
    [0, MAX_PLAN_DIFFERENCES + 1],
  );
});

test('a rerun with nothing to do adds a few hundred bytes to the journal, not the whole plan again; `clipmill report` still rebuilds every row', async (t) => {
  const { simulator, file, out, night: run } = await nightFolder(t, rowsYaml(40));
  const journal = path.join(out, '.clipmill', 'journal.jsonl');

  assert.equal((await run()).exitCode, 0);
  // The rerun the morning after is a no-op too: what each row needs is not recorded, only what the budget left out.
  const before = (await stat(journal)).size;
  const noop = await run();
  assert.equal(noop.plan?.counts.done, 40);
  const grown = (await stat(journal)).size - before;
  assert.ok(grown < 600, `a no-op rerun of 40 rows added ${grown} bytes`);
  assert.equal(simulator.created.length, 40);

  const rebuilt = await runCli(['report', '--out', out]);
  assert.equal(rebuilt.code, 0, rebuilt.stderr);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.equal(report.rows.length, 40);
  assert.deepEqual(
    report.rows.map((r) => r.id),
    Array.from({ length: 40 }, (_, i) => `r${i}`),
  );
  assert.equal(report.totals.done, 40);

  // An edited row after no-op nights: the next plan records that row, and the report shows it changed.
  await writeFile(file, rowsYaml(40).replace('prompt: "row 7"', 'prompt: "row 7, at dusk"'));
  assert.equal((await run()).exitCode, 0);
  assert.equal(simulator.created.length, 41, 'only the edited row is paid for again');
  const again = await runCli(['report', '--out', out]);
  assert.equal(again.code, 0, again.stderr);
  const after = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.deepEqual(
    after.rows.filter((r) => r.changed).map((r) => r.id),
    ['r7'],
  );
});

test('a journal is replayed line by line: a long clean one folds every row; a damaged line far inside is refused by its number, with the repair advice', async (t) => {
  const dir = await tempDir(t);
  const out = path.join(dir, 'out');
  await mkdir(path.join(out, '.clipmill'), { recursive: true });
  const journal = path.join(out, '.clipmill', 'journal.jsonl');
  const lines = Array.from({ length: 20_000 }, (_, i) =>
    JSON.stringify({ at: '2026-11-24T03:00:00.000Z', type: 'submitting', key: `m/r${i}`, request: 'feedbeef', attempt: 1, clientRef: `c${i}` }),
  );
  await writeFile(journal, `${lines.join('\n')}\n`);
  const replay = await Journal.replay(out);
  assert.equal(replay.states.size, 20_000);
  assert.equal(replay.states.get('m/r19999')?.status, 'submitting');

  lines[15_000] = lines[15_000]!.slice(0, 40);
  await writeFile(journal, `${lines.join('\n')}\n`);
  await assert.rejects(
    Journal.replay(out),
    (e: unknown) => e instanceof InputError && e.problems[0]?.line === 15_001 && e.problems[0].message.includes('clipmill repair'),
  );
});
