/**
 * `bench/run.ts fleet` (issue 14 item 9): 1, 2 and 4 `clipmill worker` processes sharing one account
 * against one simulator: a fixed provider cap (the account's, set by `enqueue`) and every generation
 * the same 3 s (90 s at the bench's 1:30). The ideal is set by the account: rows ÷ cap × generation.
 * More workers must not make the night slower nor cost more requests per row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Simulator } from '../src/simulator/server.js';
import { mostAtOnce } from '../test/helpers.js';
import { startRedisServer } from '../test/redis-server.js';
import { check, clipmill, envFor, writeManifest, writePipeline } from './clipmill.js';
import { mib, sec, type Measured } from './procs.js';

const SCALE = 30;
const scaled = (realMs: number) => `${Math.max(10, Math.round(realMs / SCALE))}ms`;
const WORKER_COUNTS = [1, 2, 4];

interface Round {
  workers: number;
  wallMs: number;
  providerMs: number;
  requestsPerRow: number;
  pollsPerRow: number;
  created: number;
  billed: number;
  mostAtOnce: number;
  cpuMsPerRow: number | undefined;
  peakRss: number | undefined;
}

async function round(workers: number, rows: number, cap: number, latencyMs: number, log: (line: string) => void): Promise<Round> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-fleet-'));
  const redis = await startRedisServer();
  const sim = new Simulator({ latency_ms: latencyMs, concurrency: cap * 2 });
  await sim.start();
  try {
    await writeManifest(path.join(dir, 'bench.yaml'), rows, 'remote');
    await writePipeline(
      path.join(dir, 'pipeline.yaml'),
      'runflow',
      { concurrency: cap, requests_per_minute: 100_000, poll_interval: scaled(5_000), poll_max_interval: scaled(60_000), request_timeout: scaled(30_000) },
      { max_attempts: 8, base_delay: scaled(1_000), max_delay: scaled(30_000) },
    );
    const fleet = ['--redis', redis.url, '--queue', 'bench', '--pipeline', 'pipeline.yaml', '--out', 'out'];
    const o = { cwd: dir, env: envFor('runflow', sim.url) };
    check('clipmill enqueue', await clipmill(['enqueue', 'bench.yaml', ...fleet], o));
    log(`fleet: ${workers} worker${workers === 1 ? '' : 's'}, ${rows} rows, account cap ${cap}...`);
    const started = performance.now();
    const runs: Measured[] = await Promise.all(
      Array.from({ length: workers }, async () => check('clipmill worker', await clipmill(['worker', ...fleet, '--until-idle', '--log', 'json'], o))),
    );
    const wallMs = performance.now() - started;
    const timeline = sim.timeline();
    const cpu = runs.every((r) => r.cpuMs !== undefined) ? runs.reduce((sum, r) => sum + r.cpuMs!, 0) / rows : undefined;
    return {
      workers,
      wallMs,
      providerMs: Math.max(...timeline.map((r) => r.completedAt ?? 0)) - Math.min(...timeline.map((r) => r.createdAt)),
      requestsPerRow: sim.apiRequests / rows,
      pollsPerRow: sim.stats.polls / rows,
      created: sim.created.length,
      billed: sim.billed.length,
      mostAtOnce: mostAtOnce(timeline),
      cpuMsPerRow: cpu,
      peakRss: Math.max(...runs.map((r) => r.maxRssBytes ?? 0)),
    };
  } finally {
    await sim.close();
    await redis.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function fleetScenario(log: (line: string) => void): Promise<string> {
  const rows = Number(process.env.BENCH_FLEET_ROWS ?? 400);
  const cap = 20;
  const latencyMs = 90_000 / SCALE;
  const ideal = (rows / cap) * latencyMs;
  const rounds: Round[] = [];
  for (const workers of WORKER_COUNTS) rounds.push(await round(workers, rows, cap, latencyMs, log));
  const over = (ms: number) => `${((ms / ideal - 1) * 100).toFixed(1)} %`;
  return [
    `${rows} rows, account cap ${cap} (BullMQ global concurrency), every generation ${latencyMs} ms; ideal ${sec(ideal)} (rows ÷ cap × generation). Each worker drives up to ${cap} rows; the cap holds across them.`,
    '',
    '| workers | runs created / billed | most runs at once | makespan (processes) | over ideal | first create → last run ended | over ideal | API requests / row | status requests / row | CPU ms / row (all workers) | peak RSS of a worker |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rounds.map(
      (r) =>
        `| ${r.workers} | ${r.created} / ${r.billed} | ${r.mostAtOnce} | ${sec(r.wallMs)} | ${over(r.wallMs)} | ${sec(r.providerMs)} | ${over(r.providerMs)} | ${r.requestsPerRow.toFixed(2)} | ${r.pollsPerRow.toFixed(2)} | ${r.cpuMsPerRow?.toFixed(2) ?? '?'} | ${mib(r.peakRss)} |`,
    ),
  ].join('\n');
}
