/**
 * `bench/run.ts peers`: clipmill next to the vendor pattern (create, poll every 2 s) and the official
 * `@fal-ai/client`, each in its own process against the same simulator settings (5 s generations,
 * provider cap 50), once without a rate limit and once with 600 requests/minute enforced by the
 * simulator. CPU and peak RSS are each peer's own; the simulator runs in the bench process.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Simulator } from '../src/simulator/server.js';
import { clipmill, envFor, rowsDone, writeManifest, writePipeline, type Protocol } from './clipmill.js';
import type { PeerConfig, PeerResult } from './peers/common.js';
import { buildOnce, measured, mib, sec, type Measured } from './procs.js';

const LATENCY_MS = 5_000;
const CAP = 50;

interface Round {
  label: string;
  rows: number;
  /** The simulator's limit (0: none) and clipmill's `requests_per_minute`. */
  rpm: number;
}

interface Peer {
  name: string;
  kind: 'clipmill' | 'vendor' | 'fal-client';
  protocol: Protocol;
}

const PEERS: Peer[] = [
  { name: 'clipmill, Runflow protocol', kind: 'clipmill', protocol: 'runflow' },
  { name: 'clipmill, fal protocol', kind: 'clipmill', protocol: 'fal' },
  { name: 'vendor pattern: create, poll every 2 s (Runflow)', kind: 'vendor', protocol: 'runflow' },
  { name: '`@fal-ai/client` 1.10: `subscribe` (polls every 500 ms)', kind: 'fal-client', protocol: 'fal' },
];

/** The fewest API requests a row can take: create + one poll that carries the video (Runflow); submit + status + result (fal). */
const MIN_REQUESTS: Record<Protocol, number> = { runflow: 2, fal: 3 };

export interface PeerRow {
  round: Round;
  peer: Peer;
  done: number;
  failed: number;
  stopped: boolean;
  makespanMs: number;
  idealMs: number;
  apiRequests: number;
  rateLimited: number;
  maxIn60s: number;
  cpuMs: number | undefined;
  maxRssBytes: number | undefined;
  errors: string[];
  /** Spawn to the first create, and the last run's end to the process's exit (ms). */
  startMs: number;
  tailMs: number;
  /** clipmill only: how long after a run ended its success was journaled, on average and at most (ms). */
  notice?: { meanMs: number; maxMs: number };
}

interface PeerOutcome {
  m: Measured;
  result: PeerResult;
  notice?: { meanMs: number; maxMs: number };
}

/** From clipmill's journal: when each success was recorded, against when the simulator ended the run. */
async function noticeDelays(outDir: string, sim: Simulator): Promise<{ meanMs: number; maxMs: number } | undefined> {
  const completed = new Map(sim.timeline().map((r) => [r.id, r.completedAt]));
  let text: string;
  try {
    text = await readFile(path.join(outDir, '.clipmill', 'journal.jsonl'), 'utf8');
  } catch {
    return undefined;
  }
  const delays: number[] = [];
  for (const line of text.trim().split('\n')) {
    const e = JSON.parse(line) as { type: string; runId?: string; at: string };
    const end = e.type === 'succeeded' && e.runId ? completed.get(e.runId) : undefined;
    if (end !== undefined) delays.push(Date.parse(e.at) - end);
  }
  if (delays.length === 0) return undefined;
  return { meanMs: delays.reduce((a, b) => a + b, 0) / delays.length, maxMs: Math.max(...delays) };
}

/** The makespan no client could beat: the provider's cap, and under a limit the fewest requests a row needs. */
function idealMs(round: Round, protocol: Protocol): number {
  const capBound = (round.rows / CAP) * LATENCY_MS;
  return round.rpm > 0 ? Math.max(capBound, ((round.rows * MIN_REQUESTS[protocol]) / round.rpm) * 60_000) : capBound;
}

async function runClipmillPeer(peer: Peer, round: Round, sim: Simulator, stopAfterMs: number): Promise<PeerOutcome> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-peer-'));
  try {
    await writeManifest(path.join(dir, 'bench.yaml'), round.rows, 'remote');
    // clipmill's defaults (poll_interval 5s, retry 1s..30s, ...), with the cap and the limit of the night.
    await writePipeline(path.join(dir, 'pipeline.yaml'), peer.protocol, { concurrency: CAP, requests_per_minute: round.rpm || 100_000 });
    const m = await clipmill(['run', 'bench.yaml', '--pipeline', 'pipeline.yaml', '--out', 'out', '--log', 'json'], {
      cwd: dir,
      env: envFor(peer.protocol, sim.url),
      deadlineMs: stopAfterMs,
    });
    const done = await rowsDone(path.join(dir, 'out'));
    const stopped = m.code === 130;
    const errors = m.code === 0 || stopped ? [] : [`exit ${m.code ?? m.signal}: ${m.stderrTail.slice(-300)}`];
    const notice = await noticeDelays(path.join(dir, 'out'), sim);
    return { m, result: { done, failed: stopped ? 0 : round.rows - done, stopped, errors }, ...(notice && { notice }) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function runScriptPeer(peer: Peer, round: Round, sim: Simulator, stopAfterMs: number): Promise<PeerOutcome> {
  const build = await buildOnce();
  const config: PeerConfig = { url: sim.url, rows: round.rows, concurrency: CAP, stopAfterMs };
  const m = await measured(process.execPath, [build.peer(peer.kind)], { env: { BENCH_PEER: JSON.stringify(config) }, deadlineMs: stopAfterMs + 30_000 });
  const line = m.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return { m, result: JSON.parse(line) as PeerResult };
  } catch {
    return { m, result: { done: 0, failed: round.rows, stopped: false, errors: [`exit ${m.code ?? m.signal}: ${m.stderrTail.slice(-300)}`] } };
  }
}

async function runPeer(peer: Peer, round: Round): Promise<PeerRow> {
  const sim = new Simulator({ latency_ms: LATENCY_MS, concurrency: CAP, requests_per_minute: round.rpm });
  await sim.start();
  try {
    const ideal = idealMs(round, peer.protocol);
    // Long enough for any peer that keeps going; one that is starved by 429s is stopped and shows what it did.
    const stopAfterMs = 3 * idealMs(round, 'runflow');
    const spawnedAt = Date.now();
    const { m, result, notice } = await (peer.kind === 'clipmill' ? runClipmillPeer : runScriptPeer)(peer, round, sim, stopAfterMs);
    const exitedAt = Date.now();
    const stats = sim.statistics();
    const timeline = sim.timeline();
    return {
      startMs: Math.min(...timeline.map((r) => r.createdAt)) - spawnedAt,
      tailMs: exitedAt - Math.max(...timeline.map((r) => r.completedAt ?? 0)),
      ...(notice && { notice }),
      round,
      peer,
      ...result,
      makespanMs: m.wallMs,
      idealMs: ideal,
      apiRequests: sim.apiRequests,
      rateLimited: sim.stats.rateLimitedOverLimit + sim.stats.rateLimitedRandom,
      maxIn60s: stats.max_requests_in_60s ?? 0,
      cpuMs: m.cpuMs,
      maxRssBytes: m.maxRssBytes,
    };
  } finally {
    await sim.close();
  }
}

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

export function peersTable(rows: PeerRow[]): string {
  const head =
    '| limit | peer | rows done | makespan | ideal | over ideal | API req / row done | 429s | max req in 60 s | CPU ms / row done | peak RSS |\n' +
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map((r) => {
    const makespan = r.stopped ? `stopped at ${sec(r.makespanMs)}` : sec(r.makespanMs);
    // Over ideal only for a peer that did every row: one that gave rows up finished early by not doing them.
    const over = r.done < r.round.rows ? '–' : `${fixed(r.makespanMs / r.idealMs, 2)} ×`;
    const done = `${r.done}/${r.round.rows}${r.failed > 0 ? ` (${r.failed} failed)` : ''}`;
    const cpu = r.cpuMs === undefined ? '?' : fixed(r.cpuMs / r.done, 2);
    const limit = r.round.rpm > 0 ? `${r.round.rpm}/min, ${r.round.rows} rows` : `none, ${r.round.rows} rows`;
    return `| ${limit} | ${r.peer.name} | ${done} | ${makespan} | ${sec(r.idealMs)} | ${over} | ${fixed(r.apiRequests / r.done, 2)} | ${r.rateLimited} | ${r.maxIn60s} | ${cpu} | ${mib(r.maxRssBytes)} |`;
  });
  return [head, ...lines].join('\n');
}

function noteOf(r: PeerRow): string {
  const notice = r.notice
    ? `; a finished run was noticed ${fixed(r.notice.meanMs, 0)} ms after its end on average (at most ${fixed(r.notice.maxMs, 0)} ms)`
    : '';
  const errors = r.errors.length > 0 ? `; errors: ${r.errors.join(' | ')}` : '';
  return `${r.peer.name}, limit ${r.round.label}: spawn → first create ${sec(r.startMs)}, last run ended → exit ${sec(r.tailMs)}${notice}${errors}`;
}

/** The peers scenario: both rounds, every peer, one after another (never two at once: CPU is measured). */
export async function peersScenario(log: (line: string) => void): Promise<{ table: string; notes: string[] }> {
  const rounds: Round[] = [
    { label: 'no limit', rows: Number(process.env.BENCH_PEER_ROWS ?? 1000), rpm: 0 },
    { label: '600/min', rows: Number(process.env.BENCH_PEER_LIMITED_ROWS ?? 300), rpm: 600 },
  ];
  const only = process.env.BENCH_PEERS?.split(',');
  await buildOnce(); // before the first peer's clock starts
  const rows: PeerRow[] = [];
  const notes: string[] = [];
  for (const round of rounds) {
    for (const peer of PEERS.filter((p) => !only || only.includes(p.kind))) {
      const started = performance.now();
      log(`peers: ${peer.name}, ${round.rows} rows, limit ${round.label}...`);
      const row = await runPeer(peer, round);
      log(`  ${row.done}/${round.rows} done, ${row.failed} failed, ${row.apiRequests} requests, ${row.rateLimited} 429s (${sec(performance.now() - started)})`);
      notes.push(noteOf(row));
      rows.push(row);
    }
  }
  const legend =
    `ideal: rows ÷ cap (${CAP}) × ${LATENCY_MS / 1000} s; under a limit, at least the fewest requests a row needs (Runflow 2: create and one poll; fal 3: submit, status, result) spread evenly at the limit. ` +
    'Makespan is the peer process from spawn to exit; a peer still working after 3 × the Runflow ideal is stopped (clipmill by SIGTERM, it writes its report and exits 130). ' +
    'Requests and CPU are per row done. clipmill runs with its defaults (poll_interval 5s, poll_max_interval 60s, retry 1s..30s) and the cap as its concurrency; the vendor pattern and @fal-ai/client run 50 rows at a time with their own defaults.';
  return { table: peersTable(rows), notes: [legend, ...notes] };
}
