import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import type { RowState } from '../src/lifecycle/events.js';
import { clientRefPrefix } from '../src/lifecycle/client-ref.js';
import type { ListedRun } from '../src/providers/provider.js';
import type { Report } from '../src/report/build.js';
import { writeMarks } from '../src/review/marks.js';
import { repairWithProvider } from '../src/state/repair.js';
import { runToRecover } from '../src/state/repair/provider-runs.js';
import { envFor, fastPipeline, nightFolder, rowsYaml, runCli, startSimulator, workspace, write } from './helpers.js';

/** A proxy in front of the simulator that holds the run list's answer until `open()`: what a night does meanwhile is the test's. */
async function gatedRunList(t: TestContext, target: string) {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let asked!: () => void;
  const listAsked = new Promise<void>((resolve) => (asked = resolve));
  const server = createServer((req, res) => {
    const forward = () => {
      const upstream = httpRequest(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    };
    if (req.method === 'GET' && (req.url ?? '').startsWith('/v1/runs?')) {
      asked();
      void opened.then(forward);
    } else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    open();
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, listAsked, open };
}

test('a journal lost while runs were in flight (no video, no sidecar yet): clipmill repair <manifests> finds the runs by client_ref, and the rerun pays nothing again', async (t) => {
  const simulator = await startSimulator(t, { latency_ms: 300 });
  const dir = await workspace(t);
  const file = await write(
    dir,
    'm.yaml',
    ['rows:', ...[0, 1, 2].map((i) => `  - {id: r${i}, image: "https://images.example.com/${i}.jpg", prompt: "row ${i}", duration: 3}`)].join('\n'),
  );
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const controller = new AbortController();
  let submitted = 0;
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: envFor(simulator),
    signal: controller.signal,
    print: () => {},
    logLine: (l) => (l.includes('submitted as') && ++submitted === 3 ? controller.abort() : undefined),
  });
  assert.equal(first.exitCode, 130);
  assert.equal(simulator.created.length, 3);
  await rm(path.join(out, '.clipmill', 'journal.jsonl'));

  const repaired = await runCli(['repair', file, '--pipeline', pipelineFile, '--out', out], { env: envFor(simulator) });
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
  assert.match(repaired.stdout, /found at the provider by client_ref: 3 rows/);
  for (const id of ['r0', 'r1', 'r2']) assert.match(repaired.stdout, new RegExp(`m/${id}: run [0-9a-f-]{36} .* the next run re-attaches to it`));

  while (simulator.created.some((c) => simulator.run(c.id)?.status !== 'succeeded')) await new Promise((resolve) => setTimeout(resolve, 20));
  const rerun = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: () => {} });
  assert.equal(rerun.exitCode, 0);
  assert.equal(rerun.plan?.counts.reattach, 3);
  assert.equal(simulator.created.length, 3, 'nothing paid twice');
  assert.equal(rerun.report?.totals.done, 3);
});

test('a damaged line that was an intent to create is read back for its client_ref, not dropped: the next run looks it up before paying', async (t) => {
  const dir = await workspace(t);
  const out = path.join(dir, 'out');
  const at = new Date().toISOString();
  const intent = JSON.stringify({
    at,
    session: at,
    type: 'submitting',
    key: 'm/r0',
    request: '0123456789abcdef',
    attempt: 1,
    clientRef: 'clipmill-0123456789-0123456789abcdef-a1-0badf00d',
  });
  const other = JSON.stringify({
    at,
    session: at,
    type: 'submitting',
    key: 'm/r1',
    request: 'fedcba9876543210',
    attempt: 1,
    clientRef: 'clipmill-9876543210-fedcba9876543210-a1-00c0ffee',
  });
  await mkdir(path.join(out, '.clipmill'), { recursive: true });
  await write(dir, 'out/.clipmill/journal.jsonl', `${intent.slice(0, -1)}\u0000#\n${other}\n`);
  const repaired = await runCli(['repair', '--out', out]);
  assert.equal(repaired.code, 0, repaired.stdout);
  assert.match(repaired.stdout, /line 1 was damaged, but its create's client_ref clipmill-0123456789-0123456789abcdef-a1-0badf00d was read back/);
  const status = await runCli(['status', '--out', out]);
  assert.match(status.stdout, /m\/r0\s+the create got no answer; the next run looks it up by client_ref clipmill-0123456789-0123456789abcdef-a1-0badf00d/);
});

test('a redo night between repair <manifests> asking the run list and journaling its answer: the row is not taken back to its original run, and nothing is paid again', async (t) => {
  const { simulator, night, out, file, pipelineFile } = await nightFolder(t, rowsYaml(2));
  assert.equal((await night()).exitCode, 0);
  const reportOf = async () => JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  const original = (await reportOf()).rows.find((row) => row.id === 'r1')!;
  const gate = await gatedRunList(t, simulator.url);
  const repairing = repairWithProvider({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { ...envFor(simulator), RUNFLOW_BASE_URL: gate.url },
    sinceMs: Date.now() - 3_600_000,
  });
  await gate.listAsked;
  // While repair waits for the run list, a reviewer asks for a redo of r1 and a night makes it.
  await writeMarks(out, [{ key: 'm/r1', request: original.request, verdict: 'redo', note: 'make the sky bluer', at: new Date().toISOString() }]);
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3);
  const redone = (await reportOf()).rows.find((row) => row.id === 'r1')!;
  gate.open();
  const repaired = await repairing;
  assert.doesNotMatch(repaired.lines.join('\n'), /m\/r1: run .* found at the provider/, "the original version's run is not journaled over the redone one");
  const next = await night();
  assert.equal(next.exitCode, 0);
  assert.equal(simulator.created.length, 3, 'nothing paid again');
  const row = (await reportOf()).rows.find((r) => r.id === 'r1')!;
  assert.equal(row.request, redone.request, 'the row stays at its redone version');
  assert.equal(row.run_id, redone.run_id);
});

test('repair never journals a found run over the row at another version that has a run or an unanswered create, unless that version is older than the run', () => {
  const row = { key: 'm/r1', request: '1111111111111111' };
  const createdAt = '2026-05-02T03:00:00.000Z';
  const createdMs = Date.parse(createdAt);
  const run: ListedRun = {
    runId: 'run-found',
    clientRef: `${clientRefPrefix(row.key, row.request)}-a1-0badf00d`,
    status: 'succeeded',
    costMicros: 0,
    createdAt,
  };
  const other = (state: Partial<RowState>): RowState => ({ key: 'm/r1', request: '2222222222222222', status: 'downloaded', attempts: 1, ...state });
  const output = (mtimeMs: number) => ({ path: 'm/r1.mp4', bytes: 1, sha256: 'x', seconds: 3, mtimeMs });
  const cases: [string, RowState | undefined, 'found' | 'left'][] = [
    ['no state', undefined, 'found'],
    ['in flight at a version sent after the run was made', other({ status: 'submitted', runId: 'run-new', submittingAtMs: createdMs + 60_000 }), 'left'],
    ['done at a version made after the run', other({ runId: 'run-new', submittingAtMs: createdMs + 60_000, output: output(createdMs + 90_000) }), 'left'],
    ['an unanswered create sent after the run was made', other({ status: 'submitting', clientRefs: ['c'], submittingAtMs: createdMs + 60_000 }), 'left'],
    ['a create not listed yet (may turn up late)', other({ status: 'pending', clientRefs: ['c'], submittingAtMs: createdMs + 60_000 }), 'left'],
    ['paid, with no time to tell (rebuilt from a sidecar whose video is gone)', other({ status: 'succeeded', runId: 'run-old' }), 'left'],
    ['done before the run was made (an edited row, rebuilt from its sidecar)', other({ runId: 'run-old', output: output(createdMs - 3_600_000) }), 'found'],
    ['failed with no run', other({ status: 'failed', failure: { code: 'VALIDATION_ERROR', message: '', billed: false } }), 'found'],
    ['never sent', other({ status: 'pending', attempts: 0 }), 'found'],
  ];
  for (const [name, state, kind] of cases) assert.equal(runToRecover(row, state, [run])?.kind, kind, name);
  assert.equal(runToRecover(row, other({ status: 'submitted', runId: 'run-new' }), [{ ...run, createdAt: undefined }])?.kind, 'left', 'no creation time: left');
});

test('an edited row whose new version was in flight when the journal was lost: repair <manifests> journals its run over the earlier version rebuilt from disk, and the rerun pays nothing again', async (t) => {
  const { simulator, night, out, file, pipelineFile, edit } = await nightFolder(t, rowsYaml(2), { simulator: { latency_ms: 300 } });
  assert.equal((await night()).exitCode, 0);
  await edit(rowsYaml(2).replace('prompt: "row 1"', 'prompt: "row 1, at dusk"'));
  simulator.hold();
  const stop = new AbortController();
  const second = await night({ signal: stop.signal, logLine: (line) => void (line.includes('submitted as') && stop.abort()) });
  assert.equal(second.exitCode, 130);
  assert.equal(simulator.created.length, 3);
  await rm(path.join(out, '.clipmill', 'journal.jsonl'));
  const repaired = await repairWithProvider({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), sinceMs: Date.now() - 3_600_000 });
  assert.match(repaired.lines.join('\n'), new RegExp(`m/r1: run ${simulator.created[2]!.id} .* the next run re-attaches to it`));
  simulator.release();
  const rerun = await night();
  assert.equal(rerun.exitCode, 0);
  assert.equal(simulator.created.length, 3, 'nothing paid again');
  assert.equal(rerun.report?.rows.find((r) => r.id === 'r1')?.run_id, simulator.created[2]!.id);
});
