/**
 * `bench/run.ts scaling`: clipmill alone at 1,000, 10,000 (and with BENCH_MAX_ROWS=100000, 100,000)
 * rows against a simulator whose generations take 20 ms, so the night is bound by clipmill's own I/O
 * and CPU. Every command is a real CLI process timed from the bench: the first run, then `status`,
 * `estimate`, `report` and a no-op rerun, with what that rerun added to the journal.
 */
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Simulator } from '../src/simulator/server.js';
import { check, clipmill, envFor, rowsDone, writeManifest, writePipeline } from './clipmill.js';
import { buildOnce, measured, mib, ROOT, sec, type Measured } from './procs.js';

const SIZES = [1_000, 10_000, 100_000];
const COMMAND_DEADLINE_MS = 60 * 60_000;

function maxRows(): number {
  return Number(process.env.BENCH_MAX_ROWS ?? 10_000);
}

interface Step {
  m: Measured;
  /** API requests the simulator received during the step. */
  requests: number;
}

interface SizeResult {
  rows: number;
  done: number;
  run: Step;
  status: Step;
  estimate: Step;
  report: Step;
  rerun: Step;
  journalBytes: number;
  rerunJournalBytes: number;
  stateBytesBefore: number;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function measureSize(rows: number, log: (line: string) => void): Promise<SizeResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-scaling-'));
  const sim = new Simulator({ latency_ms: 20, concurrency: 200 });
  await sim.start();
  try {
    await mkdir(path.join(dir, 'images'));
    await copyFile(path.join(ROOT, 'manifests', 'images', 'hero-landscape.jpg'), path.join(dir, 'images', 'hero-landscape.jpg'));
    await writeManifest(path.join(dir, 'bench.yaml'), rows, 'images/hero-landscape.jpg');
    await writePipeline(
      path.join(dir, 'pipeline.yaml'),
      'runflow',
      { concurrency: 200, requests_per_minute: 100_000, poll_interval: '10ms', poll_max_interval: '200ms' },
      { base_delay: '10ms', max_delay: '1s' },
    );
    const o = { cwd: dir, env: envFor('runflow', sim.url), deadlineMs: COMMAND_DEADLINE_MS };
    const journal = path.join(dir, 'out', '.clipmill', 'journal.jsonl');
    const step = async (name: string, args: string[], okCodes?: number[]): Promise<Step> => {
      const before = sim.apiRequests;
      const m = check(`clipmill ${args[0] ?? ''} at ${rows} rows`, await clipmill(args, o), okCodes);
      log(`  ${name}: ${sec(m.wallMs)}, ${mib(m.maxRssBytes)}`);
      return { m, requests: sim.apiRequests - before };
    };
    const runArgs = ['run', 'bench.yaml', '--pipeline', 'pipeline.yaml', '--out', 'out', '--log', 'json'];
    const run = await step('run', runArgs, [0, 1]);
    const done = await rowsDone(path.join(dir, 'out'));
    const journalBytes = await sizeOf(journal);
    const status = await step('status', ['status', '--out', 'out']);
    const estimate = await step('estimate', ['estimate', 'bench.yaml', '--pipeline', 'pipeline.yaml', '--out', 'out']);
    const report = await step('report', ['report', '--out', 'out']);
    const before = await sizeOf(journal);
    const rerun = await step('no-op rerun', runArgs, [0, 1]);
    const rerunJournalBytes = (await sizeOf(journal)) - before;
    return { rows, done, run, status, estimate, report, rerun, journalBytes, rerunJournalBytes, stateBytesBefore: before };
  } finally {
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Seconds per 1,000 rows net of the process's startup (milliseconds per row), then the whole command's wall time. */
const perK = (ms: number, rows: number, startupMs: number) => `${(Math.max(0, ms - startupMs) / rows).toFixed(3)} s (${sec(ms)})`;

function table(results: SizeResult[], startupMs: number): string {
  const head =
    '| rows | first run: ms per row (total) | peak RSS, first run | `status` s per 1,000 rows (total) | `estimate` per 1,000 (total) | `report` per 1,000 (total) | no-op rerun per 1,000 (total) | journal bytes the rerun added, per 1,000 (total) |\n' +
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = results.map((r) => {
    const k = (s: Step) => perK(s.m.wallMs, r.rows, startupMs);
    const rerunBytes = `${Math.round((r.rerunJournalBytes / r.rows) * 1000)} (${r.rerunJournalBytes})`;
    return `| ${r.rows.toLocaleString('en-US')} | ${(r.run.m.wallMs / r.rows).toFixed(3)} (${sec(r.run.m.wallMs)}) | ${mib(r.run.m.maxRssBytes)} | ${k(r.status)} | ${k(r.estimate)} | ${k(r.report)} | ${k(r.rerun)} | ${rerunBytes} |`;
  });
  return [head, ...lines].join('\n');
}

function notes(results: SizeResult[], startupMs: number): string[] {
  const lines = results.map((r) => {
    const cpu = (s: Step) => (s.m.cpuMs === undefined ? '?' : `${((s.m.cpuMs / r.rows) * 1000).toFixed(0)} ms`);
    return (
      `${r.rows.toLocaleString('en-US')} rows: ${r.done} done; CPU per 1,000 rows: run ${cpu(r.run)}, status ${cpu(r.status)}, estimate ${cpu(r.estimate)}, report ${cpu(r.report)}, rerun ${cpu(r.rerun)}; ` +
      `peak RSS: status ${mib(r.status.m.maxRssBytes)}, estimate ${mib(r.estimate.m.maxRssBytes)}, report ${mib(r.report.m.maxRssBytes)}, rerun ${mib(r.rerun.m.maxRssBytes)}; ` +
      `journal after the first run ${(r.journalBytes / 1024 / 1024).toFixed(1)} MiB (${Math.round(r.journalBytes / r.rows)} bytes per row); ` +
      `API requests: first run ${(r.run.requests / r.rows).toFixed(2)} per row, the rerun ${r.rerun.requests}`
    );
  });
  return [
    `every figure is a CLI process timed from the bench, wall clock from spawn to exit; per-1,000-row figures of status, estimate, report and the rerun are net of the process's startup (\`clipmill --version\` takes ${(startupMs / 1000).toFixed(2)} s, the median of 5), totals in parentheses are not; ` +
      `peak RSS is the process's own \`process.resourceUsage().maxRSS\`, written by an \`--import\` preload at exit`,
    ...lines,
  ];
}

/** Issue 13's "Done when" at 10,000 rows, from the row of that size. */
function doneWhen(results: SizeResult[]): string[] {
  const r = results.find((x) => x.rows === 10_000);
  if (!r) return [];
  const rss = Math.max(...[r.run, r.status, r.estimate, r.report, r.rerun].map((s) => s.m.maxRssBytes ?? Infinity));
  const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
  const within = (s: Step, limitMs: number) => `${sec(s.m.wallMs)} (≤ ${sec(limitMs)}: ${verdict(s.m.wallMs <= limitMs)})`;
  return [
    `issue 13 "Done when" at 10,000 rows: status ${within(r.status, 2000)}, report ${within(r.report, 2000)}, estimate ${within(r.estimate, 2000)}; ` +
      `no-op rerun ${within(r.rerun, 5000)} adding ${r.rerunJournalBytes} bytes (≤ 100 KB: ${verdict(r.rerunJournalBytes <= 100 * 1024)}); ` +
      `peak RSS of any of these processes ${mib(rss)} (≤ 300 MiB: ${verdict(rss <= 300 * 1024 * 1024)})`,
  ];
}

export async function scalingScenario(log: (line: string) => void): Promise<string> {
  const { cli } = await buildOnce();
  const startups: number[] = [];
  for (let i = 0; i < 5; i++) startups.push((await measured(process.execPath, [cli, '--version'])).wallMs);
  const startupMs = startups.sort((a, b) => a - b)[2]!;
  const results: SizeResult[] = [];
  for (const rows of SIZES.filter((n) => n <= maxRows())) {
    const started = performance.now();
    log(`scaling: ${rows} rows (simulator: 20 ms generations, cap 200; clipmill concurrency 200)...`);
    results.push(await measureSize(rows, log));
    log(`  ${rows} rows took ${sec(performance.now() - started)}`);
  }
  const skipped = SIZES.filter((n) => n > maxRows());
  const tail =
    skipped.length > 0 ? [`not run: ${skipped.join(', ')} rows (\`BENCH_MAX_ROWS=${Math.max(...skipped)}\`; 100,000 rows take about 4 minutes)`] : [];
  return `${table(results, startupMs)}\n\n${[...notes(results, startupMs), ...doneWhen(results), ...tail].map((l) => `- ${l}`).join('\n')}`;
}
