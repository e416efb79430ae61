/**
 * `npm run bench`, in one run: the in-process table (throughput, rate, faults: bench/in-process.ts),
 * the peers table (bench/peers.ts), the scaling table (bench/scaling.ts) and, opt-in, the makespan
 * line of issue 13 item 5 (bench/makespan.ts), and the fleet table (bench/fleet.ts: 1, 2 and 4 workers on
 * one account, Redis started by the bench). `node --import tsx bench/run.ts <scenario>` runs one.
 * Opt-in: BENCH_MAX_ROWS=100000 (scaling at 100,000 rows, about 4 minutes more), BENCH_MAKESPAN=1 (the
 * makespan line in the full run, about 5 minutes). Smaller runs while working on the bench: BENCH_PEERS
 * (a comma-separated subset of clipmill, vendor, fal-client), BENCH_PEER_ROWS, BENCH_PEER_LIMITED_ROWS,
 * BENCH_MAKESPAN_ROWS. Every BENCH_* variable set is printed in the command line above the tables.
 */
import { inProcess, LATENCY_MS, NAIVE_POLL_MS, SCALE, table } from './in-process.js';
import { fleetScenario } from './fleet.js';
import { makespanScenario } from './makespan.js';
import { peersScenario } from './peers.js';
import { machineLine, sec } from './procs.js';
import { scalingScenario } from './scaling.js';

const SCENARIOS = ['throughput', 'rate', 'faults', 'peers', 'scaling', 'makespan', 'fleet'] as const;
type Scenario = (typeof SCENARIOS)[number];

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Runs a scenario and says how long it took (stderr, and a line under its table). */
async function timed<T>(name: string, took: string[], body: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await body();
  took.push(`${name} ${sec(performance.now() - started)}`);
  log(`${name}: took ${sec(performance.now() - started)}`);
  return result;
}

async function main(): Promise<void> {
  const only = process.argv[2];
  if (only !== undefined && !(SCENARIOS as readonly string[]).includes(only)) throw new Error(`unknown scenario ${only}: one of ${SCENARIOS.join(', ')}`);
  const wanted = (s: Scenario) => only === undefined || only === s;
  const settings = Object.entries(process.env).filter(([name]) => name.startsWith('BENCH_'));
  const command = `${settings.map(([name, value]) => `${name}=${value ?? ''} `).join('')}${only === undefined ? 'npm run bench' : `node --import tsx bench/run.ts ${only}`}`;
  const sections: string[] = [machineLine(command)];
  const took: string[] = [];
  log(`latency ${LATENCY_MS} ms (90 s at 1:${SCALE}); naive polls every ${NAIVE_POLL_MS} ms (2 s)`);

  const extra: string[] = [];
  const firstTable = SCENARIOS.slice(0, 3).filter(wanted);
  const results = firstTable.length > 0 ? await timed(firstTable.join(', '), took, () => inProcess(wanted, extra, log)) : [];
  if (results.length > 0) sections.push(`### In-process scenarios\n\n${table(results)}\n\n${extra.map((l) => `- ${l}`).join('\n')}`);
  if (wanted('peers')) {
    const peers = await timed('peers', took, () => peersScenario(log));
    sections.push(`### Peers\n\n${peers.table}\n\n${peers.notes.map((l) => `- ${l}`).join('\n')}`);
  }
  if (wanted('scaling')) {
    const scaling = await timed('scaling', took, () => scalingScenario(log));
    sections.push(`### Scaling\n\n${scaling}`);
  }
  if (wanted('makespan')) {
    if (only === 'makespan' || process.env.BENCH_MAKESPAN === '1')
      sections.push(`### Makespan (issue 13 item 5)\n\n${await timed('makespan', took, () => makespanScenario(log))}`);
    else
      sections.push(
        'Makespan at 20,000 rows (issue 13 item 5): not run (about 5 minutes); `BENCH_MAKESPAN=1 npm run bench` or `node --import tsx bench/run.ts makespan`.',
      );
  }
  if (wanted('fleet')) sections.push(`### Fleet (issue 14 item 9)\n\n${await timed('fleet', took, () => fleetScenario(log))}`);
  sections.push(`Scenario times: ${took.join('; ')}.`);
  process.stdout.write(`${sections.join('\n\n')}\n`);
}

await main();
