import { Option, type Command } from 'commander';
import type { z } from 'zod';
import { describeAllowed } from '../config/flags.js';
import { formatUsd, usdToMicros } from '../money/cost.js';
import { simulatorOptionsSchema } from '../simulator/options.js';
import { Simulator } from '../simulator/server.js';
import { schemaParser } from './options.js';

type Knob = keyof typeof simulatorOptionsSchema.shape;

/**
 * What each of the simulator's knobs does, for --help; every knob is a flag named after it
 * (`latency_ms` → `--latency-ms`), checked by its own schema field. `null`: no flag.
 */
const HELP = {
  port: 'port (0 picks a free one)',
  // One simulator speaks both protocols; a pipeline's `simulator.protocol` only picks the client.
  protocol: null,
  latency_ms: 'time each run spends running',
  concurrency: 'runs running at once; more wait in queued',
  fail_rate: 'share of runs that fail (not billed)',
  cancel_rate: 'share of runs the provider cancels (not billed)',
  error_rate: 'share of API requests answered 503',
  rate_limit_rate: 'share of API requests answered 429',
  reset_rate: 'share of API requests whose connection is reset',
  truncate_rate: 'share of downloads cut short',
  slow_download_rate: 'share of downloads sent slowly',
  slow_download_ms: 'how long a slow download takes',
  requests_per_minute: 'the organisation rate limit: API requests per minute, then 429 (0: none)',
  url_ttl_ms: 'result URLs expire after this long (0: never)',
  credit_usd: 'credit; creates beyond it get 402',
  price_usd_per_second: 'billing rate for silent video',
  audio_price_usd_per_second: 'billing rate for video with audio',
  voice_price_usd_per_second: 'billing rate with voice control',
  api_key: 'accept only this key (default: any non-empty key)',
  create_response_delay_ms: 'answer creates this late, after the run exists (a client timeout then loses the answer)',
  create_commit_delay_ms: 'make the run only this long after a create arrives (a slow provider)',
  list_page_size: 'Runflow run list: at most this many runs a page',
  list_empty_pages: 'Runflow run list: a filtered answer starts with this many empty pages',
  list_delay_ms: 'Runflow run list: a new run is listed only this long after its create',
  result_ttl_scale: 'fal keeps results 1 h (6 min when 10 KB or more) times this',
  seed: 'seed for the simulated faults',
} as const satisfies Record<Knob, string | null>;

/** Flag names from before the flags were generated, still accepted. */
const ALIASES: Partial<Record<Knob, string>> = { requests_per_minute: '--rpm' };

const flagOf = (knob: string) => `--${knob.replaceAll('_', '-')}`;

function valueName(knob: string, field: z.ZodType): string {
  const allowed = describeAllowed(field) ?? '';
  if (knob.endsWith('_rate')) return 'r';
  if (allowed.startsWith('a whole number')) return 'n';
  if (allowed.startsWith('a number')) return 'x';
  return knob.split('_').at(-1) ?? 'value';
}

/** The flags of one knob: its own, then its old name if it had another. */
function knobOptions(knob: Knob, help: string, defaults: Record<string, unknown>): Option[] {
  const field = simulatorOptionsSchema.shape[knob] as z.ZodType;
  const fallback = defaults[knob];
  const shown = typeof fallback === 'number' || typeof fallback === 'string' ? `${help} (default: ${fallback})` : help;
  const own = new Option(`${flagOf(knob)} <${valueName(knob, field)}>`, shown).argParser(schemaParser(flagOf(knob), field));
  const alias = ALIASES[knob];
  return alias ? [own, new Option(`${alias} <${valueName(knob, field)}>`, `same as ${flagOf(knob)}`).argParser(schemaParser(alias, field))] : [own];
}

/** The knobs given on the command line, by their schema names (an alias counts when its flag is absent). */
export function knobsFrom(opts: Record<string, unknown>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const knob of Object.keys(HELP) as Knob[]) {
    const alias = ALIASES[knob];
    const value = opts[new Option(flagOf(knob)).attributeName()] ?? (alias ? opts[new Option(alias).attributeName()] : undefined);
    if (value !== undefined) input[knob] = value;
  }
  return input;
}

export function addSimulateCommand(program: Command): void {
  const command = program
    .command('simulate')
    .description(
      "run the built-in simulator on loopback (Runflow's API and fal's queue), to rehearse a pipeline for free (RUNFLOW_BASE_URL or FAL_BASE_URL=<printed url>)",
    );
  const defaults = simulatorOptionsSchema.parse({}) as Record<string, unknown>;
  for (const [knob, help] of Object.entries(HELP) as [Knob, string | null][]) {
    if (help !== null) for (const option of knobOptions(knob, help, defaults)) command.addOption(option);
  }
  command.action(async (opts: Record<string, unknown>) => {
    const settings = simulatorOptionsSchema.parse(knobsFrom(opts));
    const simulator = new Simulator(settings);
    const url = await simulator.start();
    process.stdout.write(`listening on ${url}\n`);
    process.stdout.write(`ledger: ${url}/__simulator/ledger; price ${formatUsd(usdToMicros(simulator.options.price_usd_per_second), 3)}/s; Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await simulator.close();
  });
}
