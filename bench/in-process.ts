/**
 * The first table of `npm run bench` (scenarios throughput, rate, faults): clipmill's scheduler against
 * the in-process simulator, in one run, next to a naive baseline (p-limit + create + poll every 2 s,
 * the vendor SDK's pattern). Time is scaled 1:30 so a
 * 90-second generation takes 3 s; poll settings are scaled alike. Results are ratios measured here,
 * in the same process, so they hold on a noisy machine.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { request } from 'undici';
import { nextPollDelayMs, RunTimeModel } from '../src/execute/polling.js';
import type { SimulatorOptionsInput } from '../src/simulator/options.js';
import { Simulator } from '../src/simulator/server.js';
import { runManifests } from '../src/commands/run.js';
import { RateGate } from '../src/execute/rate-gate.js';
import { sec } from './procs.js';

export const SCALE = 30; // 1 bench second = 30 real seconds
const scaled = (realMs: number) => Math.max(1, Math.round(realMs / SCALE));
export const LATENCY_MS = scaled(90_000);
export const NAIVE_POLL_MS = scaled(2_000);

interface Row {
  id: string;
  duration: number;
}

function rowsOf(count: number): Row[] {
  return Array.from({ length: count }, (_, i) => ({ id: `r${String(i).padStart(4, '0')}`, duration: 3 + (i % 13) }));
}

function manifestText(rows: Row[]): string {
  // Remote image URLs keep the bodies small: the benchmark measures scheduling, not base64.
  return [
    'rows:',
    ...rows.map((r) => `  - {id: ${r.id}, image: "https://images.example.com/${r.id}.jpg", prompt: "bench ${r.id}", duration: ${r.duration}}`),
  ].join('\n');
}

function pipelineText(o: { concurrency: number; rpm: number }): string {
  return [
    'provider: runflow',
    `concurrency: ${o.concurrency}`,
    `requests_per_minute: ${o.rpm}`,
    `poll_interval: ${scaled(5_000)}ms`,
    `poll_max_interval: ${scaled(60_000)}ms`,
    `request_timeout: ${scaled(30_000)}ms`,
    'job_timeout: 10m',
    'retry:',
    '  max_attempts: 8',
    `  base_delay: ${scaled(1_000)}ms`,
    `  max_delay: ${scaled(30_000)}ms`,
  ].join('\n');
}

async function withSimulator<T>(options: SimulatorOptionsInput, body: (sim: Simulator) => Promise<T>): Promise<T> {
  const sim = new Simulator({ latency_ms: LATENCY_MS, ...options });
  await sim.start();
  try {
    return await body(sim);
  } finally {
    await sim.close();
  }
}

export interface Measured {
  name: string;
  latencyMs: number;
  rows: number;
  done: number;
  makespanMs: number;
  idealMs: number;
  apiRequests: number;
  polls: number;
  rateLimited: number;
  rateLimitedOverLimit: number;
  detectMs: number;
  maxIn60s: number;
  paidTwice: number;
  cpuMsPerRow: number;
}

/** The figures both runners report, read from the simulator that served them. */
function measure(
  sim: Simulator,
  o: { name: string; rows: number; done: number; makespanMs: number; idealMs: number; delays: number[]; cpu: NodeJS.CpuUsage },
): Measured {
  return {
    name: o.name,
    latencyMs: sim.options.latency_ms,
    rows: o.rows,
    done: o.done,
    makespanMs: o.makespanMs,
    idealMs: o.idealMs,
    apiRequests: sim.apiRequests,
    polls: sim.stats.polls,
    rateLimited: sim.stats.rateLimitedRandom + sim.stats.rateLimitedOverLimit,
    rateLimitedOverLimit: sim.stats.rateLimitedOverLimit,
    detectMs: o.delays.reduce((a, b) => a + b, 0) / Math.max(1, o.delays.length),
    maxIn60s: sim.statistics().max_requests_in_60s ?? 0,
    paidTwice: paidTwice(sim),
    cpuMsPerRow: (o.cpu.user + o.cpu.system) / 1000 / o.rows,
  };
}

function paidTwice(sim: Simulator): number {
  const counts = new Map<string, number>();
  for (const e of sim.billed) {
    const row = (e.metadata as { clipmill_row?: string } | null)?.clipmill_row ?? e.id;
    counts.set(row, (counts.get(row) ?? 0) + 1);
  }
  return [...counts.values()].filter((n) => n > 1).length;
}

async function runClipmill(name: string, rows: Row[], sim: Simulator, o: { concurrency: number; rpm: number }, idealMs: number): Promise<Measured> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-'));
  try {
    const manifest = path.join(dir, 'bench.yaml');
    const pipeline = path.join(dir, 'pipeline.yaml');
    await writeFile(manifest, manifestText(rows));
    await writeFile(pipeline, pipelineText(o));
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = await runManifests({
      manifests: [manifest],
      pipelineFile: pipeline,
      outDir: path.join(dir, 'out'),
      env: { RUNFLOW_API_KEY: 'bench', RUNFLOW_BASE_URL: sim.url },
      print: () => {},
      logLine: () => {},
    });
    const makespanMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    // Detection delay: the journal's `succeeded` time against the simulator's completion time.
    const completed = new Map(sim.timeline().map((r) => [r.id, r.completedAt]));
    const journal = (await readFile(path.join(dir, 'out', '.clipmill', 'journal.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; runId?: string; at: string });
    const delays = journal.filter((e) => e.type === 'succeeded' && e.runId).map((e) => Date.parse(e.at) - (completed.get(e.runId!) ?? Date.parse(e.at)));
    return measure(sim, { name, rows: rows.length, done: result.report?.totals.done ?? 0, makespanMs, idealMs, delays, cpu: used });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The vendor-SDK pattern: create, then poll every 2 s (scaled), then download; no rate gate, no journal. */
async function runNaive(rows: Row[], sim: Simulator, concurrency: number, idealMs: number): Promise<Measured> {
  const limit = pLimit(concurrency);
  const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
  const delays: number[] = [];
  let done = 0;
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    rows.map((row) =>
      limit(async () => {
        const input = {
          start_image_url: `https://images.example.com/${row.id}.jpg`,
          prompt: `bench ${row.id}`,
          duration: String(row.duration),
          generate_audio: false,
        };
        const created = await request(`${sim.url}/v1/models/kuaishou/kling-video/v3/pro/image-to-video/runs`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ input, metadata: { clipmill_row: row.id } }),
        });
        const run = (await created.body.json()) as { id: string };
        for (;;) {
          await sleep(NAIVE_POLL_MS);
          const polled = await request(`${sim.url}/v1/runs/${run.id}`, { headers });
          if (polled.statusCode !== 200) {
            await polled.body.dump();
            continue;
          }
          const body = (await polled.body.json()) as {
            status_code: string;
            completed_at: string | null;
            output: { outputs: { type: string; url: string }[] } | null;
          };
          const video = body.output?.outputs.find((o) => o.type === 'video');
          if (body.status_code === 'succeeded' && video) {
            delays.push(Date.now() - Date.parse(body.completed_at ?? ''));
            const file = await request(video.url);
            await file.body.arrayBuffer();
            done++;
            return;
          }
        }
      }),
    ),
  );
  const used = process.cpuUsage(cpu);
  return measure(sim, {
    name: 'naive: p-limit + poll every 2 s',
    rows: rows.length,
    done,
    makespanMs: performance.now() - started,
    idealMs,
    delays,
    cpu: used,
  });
}

/** CPU the scheduling itself costs per row (p-limit, the rate gate, poll timing), with no I/O at all. */
async function schedulerOverheadMs(rows: number): Promise<number> {
  const limit = pLimit(50);
  const gate = new RateGate(1e9);
  const model = new RunTimeModel();
  const signal = new AbortController().signal;
  const cpu = process.cpuUsage();
  await Promise.all(
    Array.from({ length: rows }, (_, i) =>
      limit(async () => {
        await gate.take(signal);
        let delay: number | undefined;
        for (let poll = 0; poll < 3; poll++) {
          await gate.take(signal);
          delay = nextPollDelayMs(
            {
              now: i,
              state: 'running',
              startedAtMs: 0,
              ...(model.count > 0 && { expectedRunMs: model.expectedMs(5)! }),
              ...(delay !== undefined && { previousDelayMs: delay }),
            },
            { floorMs: 100, ceilingMs: 60_000 },
          );
        }
        model.observe(3 + (i % 13), 1500);
      }),
    ),
  );
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / 1000 / rows;
}

const pct = (a: number, b: number) => `${((a / b - 1) * 100).toFixed(1)}%`;

export function table(results: Measured[]): string {
  const head =
    '| scenario | rows done | makespan | ideal | over ideal | API req/row | polls/row | 429s (over limit) | max req in 60 s | notice delay | paid twice | CPU ms/row |';
  const sep = '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = results.map(
    (r) =>
      `| ${r.name} | ${r.done}/${r.rows} | ${sec(r.makespanMs)} | ${sec(r.idealMs)} | ${pct(r.makespanMs, r.idealMs)} | ${(r.apiRequests / r.rows).toFixed(2)} | ${(r.polls / r.rows).toFixed(2)} | ${r.rateLimited} (${r.rateLimitedOverLimit}) | ${r.maxIn60s} | ${r.detectMs.toFixed(0)} ms (${((r.detectMs / r.latencyMs) * 100).toFixed(1)}% of run) | ${r.paidTwice} | ${r.cpuMsPerRow.toFixed(2)} |`,
  );
  return [head, sep, ...lines].join('\n');
}

/** The scenarios of the first table (in-process, as the README's table has always been measured). */
export async function inProcess(wanted: (s: 'throughput' | 'rate' | 'faults') => boolean, extra: string[], log: (line: string) => void): Promise<Measured[]> {
  const results: Measured[] = [];
  if (wanted('throughput')) {
    const rows = rowsOf(Number(process.env.BENCH_ROWS ?? 1000));
    const ideal = (rows.length / 50) * LATENCY_MS;
    log('throughput: clipmill, 1000 rows, concurrency 50...');
    results.push(
      await withSimulator({ concurrency: 50 }, (sim) => runClipmill('clipmill, concurrency 50', rows, sim, { concurrency: 50, rpm: 100_000 }, ideal)),
    );
    log('throughput: naive baseline...');
    results.push(await withSimulator({ concurrency: 50 }, (sim) => runNaive(rows, sim, 50, ideal)));
  }
  if (wanted('rate')) {
    const rpm = 600;
    const rows = rowsOf(350);
    log(`rate: 350 rows at ${rpm} requests/min (the simulator enforces the same limit)...`);
    const r = await withSimulator({ concurrency: 50, latency_ms: scaled(12_000), requests_per_minute: rpm }, (sim) =>
      runClipmill(`clipmill, ${rpm} req/min`, rows, sim, { concurrency: 50, rpm }, 0),
    );
    r.idealMs = (r.apiRequests / rpm) * 60_000;
    results.push(r);
    extra.push(
      `rate: achieved ${((r.apiRequests / r.makespanMs) * 60_000).toFixed(0)} requests/min of ${rpm} (${((((r.apiRequests / r.makespanMs) * 60_000) / rpm) * 100).toFixed(1)}%); busiest 60 s window held ${r.maxIn60s} requests`,
    );
  }
  if (wanted('faults')) results.push(await faults(extra, log));
  if (results.length > 0) {
    const overhead = await schedulerOverheadMs(100_000);
    extra.push(`scheduler overhead (p-limit + rate gate + poll timing, no I/O): ${overhead.toFixed(4)} ms CPU per row`);
  }
  return results;
}

async function faults(extra: string[], log: (line: string) => void): Promise<Measured> {
  const rows = rowsOf(300);
  const ideal = (rows.length / 50) * LATENCY_MS;
  log('faults: 300 rows with 10% 5xx, 5% 429, 2% resets; the run list pages one run at a time after two empty pages, and lags...');
  const rpm = 60_000;
  const list = { list_page_size: 1, list_empty_pages: 2, list_delay_ms: scaled(3_000) };
  return withSimulator(
    { concurrency: 50, error_rate: 0.1, rate_limit_rate: 0.05, reset_rate: 0.02, requests_per_minute: rpm, seed: 42, ...list },
    async (sim) => {
      const r = await runClipmill('clipmill under faults', rows, sim, { concurrency: 50, rpm }, ideal);
      extra.push(
        `faults: ${sim.stats.errors} 5xx, ${sim.stats.rateLimitedRandom} random 429s, ${sim.stats.resets} resets, ${sim.stats.lostCreateAnswers} create answers lost after the run was made, ` +
          `found again by client_ref in ${sim.stats.listHitsAfterFirstPage} look-ups past page 1 (${sim.stats.lists} list pages read, ${sim.stats.refusedLists} refused); ` +
          `runs created ${sim.created.length}, billed ${sim.billed.length}, for ${rows.length} rows`,
      );
      return r;
    },
  );
}
