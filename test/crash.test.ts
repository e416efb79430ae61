import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { Mp4Inspector } from '../src/infra/mp4.js';
import type { LedgerEntry } from '../src/simulator/server.js';
import type { Report } from '../src/report/build.js';
import { ROOT, fastPipeline, workspace, write } from './helpers.js';

const TSX = import.meta.resolve('tsx');
const CLI = path.join(ROOT, 'src/cli.ts');

function startCli(args: string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, ['--import', TSX, CLI, ...args], { cwd, env: { PATH: process.env.PATH, ...env } });
}

/** Seeded, so a failure can be replayed: set CLIPMILL_CRASH_SEED to the seed a failing run printed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test(
  'kill -9 at random moments during submits and downloads, with create answers lost and a paged, lagging run list: reruns finish every row with exactly one billed run each',
  { timeout: 120_000 },
  async (t) => {
    const seed = Number(process.env.CLIPMILL_CRASH_SEED ?? Date.now() % 100_000);
    const random = prng(seed);
    t.diagnostic(`crash seed ${seed}`);

    // The simulator runs as its own process, as a provider would: it outlives every killed runner.
    // Lost create answers (5xx and resets after the run was made) must be found in a list that pages sparsely and lags.
    const faults = ['--error-rate', '0.1', '--reset-rate', '0.05', '--list-page-size', '1', '--list-empty-pages', '2', '--list-delay-ms', '50'];
    const simulator = startCli(['simulate', '--latency-ms', '120', '--concurrency', '6', ...faults], {}, ROOT);
    t.after(() => simulator.kill('SIGKILL'));
    const baseUrl = await new Promise<string>((resolve, reject) => {
      simulator.stdout.on('data', (d: Buffer) => {
        const m = /listening on (http:\/\/\S+)/.exec(d.toString());
        if (m?.[1]) resolve(m[1]);
      });
      simulator.on('exit', () => reject(new Error('simulator exited')));
    });

    const dir = await workspace(t);
    const images = ['hero-landscape.jpg', 'story-portrait.jpg', 'product-square.png', 'banner-4x3.jpg'];
    const rows = Array.from({ length: 42 }, (_, i) => ({
      id: `clip-${String(i).padStart(2, '0')}`,
      image: images[i % 4]!,
      duration: 3 + (i % 13),
      audio: i % 3 === 0,
    }));
    const file = await write(
      dir,
      'night.yaml',
      [
        'rows:',
        ...rows.map((r) => `  - {id: ${r.id}, image: images/${r.image}, prompt: "shot ${r.id}", duration: ${r.duration}, generate_audio: ${r.audio}}`),
      ].join('\n'),
    );
    const pipelineFile = await write(
      dir,
      'pipeline.yaml',
      fastPipeline()
        .replace('concurrency: 4', 'concurrency: 8')
        .replace('request_timeout: 5s', 'request_timeout: 1s')
        .replace('max_attempts: 3', 'max_attempts: 6'),
    );
    const out = path.join(dir, 'out');
    const env = { RUNFLOW_API_KEY: 'crash-test', RUNFLOW_BASE_URL: baseUrl };
    const args = ['run', file, '--pipeline', pipelineFile, '--out', out, '--log', 'json'];

    // Each kill waits for the k-th event of a phase (alternating submits and downloads), then a random few ms.
    const kills: string[] = [];
    const events = new Map<string, number>();
    const count = (d: Buffer) => {
      for (const m of d.toString().matchAll(/"event":"(\w+)"/g)) events.set(m[1]!, (events.get(m[1]!) ?? 0) + 1);
    };
    for (let i = 0; kills.length < 6 && i < 20; i++) {
      const phase = i % 2 === 0 ? 'submitted' : 'downloaded';
      const after = 1 + Math.floor(random() * 4);
      const extraMs = Math.floor(random() * 15);
      const child = startCli(args, env, dir);
      let seen = 0;
      let killed = false;
      child.stderr.on('data', (d: Buffer) => {
        count(d);
        seen += d
          .toString()
          .split('\n')
          .filter((l) => l.includes(`"event":"${phase}"`)).length;
        if (seen >= after && !killed) {
          killed = true;
          setTimeout(() => child.kill('SIGKILL'), extraMs);
        }
      });
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.on('close', (c, s) => resolve({ code: c, signal: s })),
      );
      if (signal === 'SIGKILL') kills.push(`${phase} #${after} +${extraMs}ms`);
      else assert.ok(code === 0, `run ended with ${code} before it could be killed`);
      if (code === 0) break;
    }
    t.diagnostic(`killed at: ${kills.join('; ')}`);
    assert.ok(kills.length >= 5, `only ${kills.length} kills happened: ${kills.join('; ')}`);

    let final: number | null = null;
    for (let i = 0; i < 5 && final !== 0; i++) {
      const child = startCli(args, env, dir);
      child.stderr.on('data', count);
      final = await new Promise<number | null>((resolve) => child.on('close', resolve));
    }
    assert.equal(final, 0);
    t.diagnostic(
      `recovery events: ${['reconciled', 'lock_taken_over', 'cleanup', 'url_refresh', 'output_damaged'].map((e) => `${e} ${events.get(e) ?? 0}`).join(', ')}`,
    );

    const ledger = (await (await fetch(`${baseUrl}/__simulator/ledger`)).json()) as { created: LedgerEntry[]; billed: LedgerEntry[] };
    const perRow = (entries: LedgerEntry[]) => {
      const counts = new Map<string, number>();
      for (const e of entries) {
        const row = (e.metadata as { clipmill_row: string }).clipmill_row;
        counts.set(row, (counts.get(row) ?? 0) + 1);
      }
      return counts;
    };
    const billed = perRow(ledger.billed);
    const created = perRow(ledger.created);
    for (const row of rows) {
      assert.equal(billed.get(row.id), 1, `${row.id} billed ${billed.get(row.id) ?? 0} times`);
      assert.equal(created.get(row.id), 1, `${row.id} created ${created.get(row.id) ?? 0} times`);
    }

    const names = await readdir(path.join(out, 'night'));
    assert.deepEqual(
      names.filter((n) => !/\.mp4(\.json)?$/.test(n) || n.startsWith('.')),
      [],
      'no temporary file is left',
    );
    assert.equal(names.filter((n) => n.endsWith('.mp4')).length, rows.length);
    assert.equal(names.filter((n) => n.endsWith('.mp4.json')).length, rows.length, 'each video has its sidecar (what clipmill repair rebuilds from)');
    for (const row of rows) {
      const inspector = new Mp4Inspector();
      inspector.push(await readFile(path.join(out, 'night', `${row.id}.mp4`)));
      const facts = inspector.finish();
      assert.ok(!('problem' in facts), `${row.id}: ${'problem' in facts ? facts.problem : ''}`);
      assert.equal(facts.durationSeconds, row.duration, row.id);
      assert.equal(facts.hasAudio, row.audio, row.id);
    }

    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
    const ledgerMicros = ledger.billed.reduce((sum, e) => sum + Math.round(e.usd * 1e6), 0);
    assert.equal(Math.round(report.totals.actual_usd * 1e6), ledgerMicros);
    assert.equal(report.totals.done, rows.length);

    const stats = (await (await fetch(`${baseUrl}/__simulator/stats`)).json()) as Record<string, number>;
    t.diagnostic(
      `simulator: ${stats.lostCreateAnswers} create answers lost, ${stats.lists} list pages read, ${stats.listHitsAfterFirstPage} runs found after page 1, ${stats.refusedLists} list queries refused`,
    );
    assert.equal(stats.refusedLists, 0, 'every list query was a documented one');
    if ((stats.lostCreateAnswers ?? 0) > 0) assert.ok((stats.listHitsAfterFirstPage ?? 0) >= 1, 'lost creates were found past the first page');
  },
);
