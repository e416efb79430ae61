import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { runManifests } from '../src/commands/run.js';
import { envFor, fastPipeline, rowsYaml, scriptedProxy, startSimulator, workspace, write } from './helpers.js';

test("a re-attached run's queue_timeout counts from when its row gets a slot, not from the night's start: a run that waited for a slot is still followed to its end", async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rowsYaml(2));
  const out = path.join(dir, 'out');

  // Night 1 makes both runs and stops (Ctrl-C) while the provider holds them queued.
  simulator.hold();
  const stop = new AbortController();
  let submitted = 0;
  const logLine = (line: string) => {
    if (line.includes('submitted as') && ++submitted === 2) stop.abort();
  };
  const first = await runManifests({
    manifests: [file],
    pipelineFile: await write(dir, 'p1.yaml', fastPipeline()),
    outDir: out,
    env: envFor(simulator),
    signal: stop.signal,
    print: () => {},
    logLine,
  });
  assert.equal(first.exitCode, 130);
  const journal = await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8');
  const runOf = (key: string) =>
    journal
      .split('\n')
      .map((l) => (l ? (JSON.parse(l) as { type: string; key: string; runId?: string }) : undefined))
      .find((e) => e?.type === 'submitted' && e.key === key)?.runId;
  const second = runOf('m/r1');
  assert.ok(second, journal);

  // Night 2, one slot: r0's run stays queued past queue_timeout and is given up; r1 waits for the slot that long.
  // The provider starts the held runs once r1 has been polled twice: only a clock that started at r1's slot polls it twice.
  let polls = 0;
  const proxy = await scriptedProxy(t, simulator.url, (method, _key, _n, rawPath) => {
    if (method === 'GET' && rawPath === `/v1/runs/${second}` && ++polls === 2) simulator.release();
    return 'pass';
  });
  const pipelineFile = await write(dir, 'p2.yaml', fastPipeline('queue_timeout: 200ms').replace('concurrency: 4', 'concurrency: 1'));
  const night = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { ...envFor(simulator), RUNFLOW_BASE_URL: proxy.url },
    print: () => {},
    logLine: () => {},
  });
  const rows = night.report?.rows ?? [];
  assert.equal(rows.find((r) => r.id === 'r0')?.status, 'failed');
  assert.match(rows.find((r) => r.id === 'r0')?.error ?? '', /QUEUE_TIMEOUT/);
  assert.equal(rows.find((r) => r.id === 'r1')?.status, 'done', rows.find((r) => r.id === 'r1')?.error ?? '');
  assert.equal(simulator.created.length, 2, 'nothing was created again');
});
