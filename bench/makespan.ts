/**
 * `bench/run.ts makespan` (issue 13 item 5): 20,000 rows, provider cap 200, every generation the same
 * 3 s (90 s at the bench's 1:30), so the run time clipmill learns from the first runs is right. The
 * target: within 2 % of the ideal (rows ÷ cap × latency) with one status request per row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Simulator } from '../src/simulator/server.js';
import { check, clipmill, envFor, rowsDone, writeManifest, writePipeline } from './clipmill.js';
import { mib, sec } from './procs.js';

const SCALE = 30;
const scaled = (realMs: number) => `${Math.max(10, Math.round(realMs / SCALE))}ms`;

export async function makespanScenario(log: (line: string) => void): Promise<string> {
  const rows = Number(process.env.BENCH_MAKESPAN_ROWS ?? 20_000);
  const cap = 200;
  const latencyMs = 90_000 / SCALE;
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-makespan-'));
  const sim = new Simulator({ latency_ms: latencyMs, concurrency: cap });
  await sim.start();
  try {
    await writeManifest(path.join(dir, 'bench.yaml'), rows, 'remote');
    // The bench's scaled settings (as bench/run.ts's pipeline): poll_interval 5 s, retry 1 s..30 s, timeouts, all at 1:30.
    await writePipeline(
      path.join(dir, 'pipeline.yaml'),
      'runflow',
      {
        concurrency: cap,
        requests_per_minute: 100_000,
        poll_interval: scaled(5_000),
        poll_max_interval: scaled(60_000),
        request_timeout: scaled(30_000),
        job_timeout: '10m',
      },
      { max_attempts: 8, base_delay: scaled(1_000), max_delay: scaled(30_000) },
    );
    log(`makespan: ${rows} rows, cap ${cap}, ${latencyMs} ms generations (ideal ${sec((rows / cap) * latencyMs)})...`);
    const m = check(
      'clipmill run',
      await clipmill(['run', 'bench.yaml', '--pipeline', 'pipeline.yaml', '--out', 'out', '--log', 'json'], { cwd: dir, env: envFor('runflow', sim.url) }),
      [0, 1],
    );
    const done = await rowsDone(path.join(dir, 'out'));
    const ideal = (rows / cap) * latencyMs;
    const cpu = m.cpuMs === undefined ? '?' : (m.cpuMs / rows).toFixed(2);
    // The provider's share of the makespan: first create to the last run's end (the rest is start-up, downloads and reports).
    const timeline = sim.timeline();
    const providerMs = Math.max(...timeline.map((r) => r.completedAt ?? 0)) - Math.min(...timeline.map((r) => r.createdAt));
    const over = (ms: number) => `${((ms / ideal - 1) * 100).toFixed(1)} %`;
    return [
      '| rows | cap | generation | rows done | makespan (process) | ideal | over ideal | first create → last run ended | over ideal | status requests / row | API requests / row | CPU ms / row | peak RSS |',
      '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      `| ${rows.toLocaleString('en-US')} | ${cap} | ${latencyMs} ms | ${done} | ${sec(m.wallMs)} | ${sec(ideal)} | ${over(m.wallMs)} | ${sec(providerMs)} | ${over(providerMs)} | ${(sim.stats.polls / rows).toFixed(2)} | ${(sim.apiRequests / rows).toFixed(2)} | ${cpu} | ${mib(m.maxRssBytes)} |`,
    ].join('\n');
  } finally {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}
