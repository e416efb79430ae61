#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { runAudit } from './commands/audit.js';
import { parseDurationMs, simulatorOptionsSchema } from './config/pipeline.js';
import { forgetRow } from './commands/forget.js';
import { formatUsd, usdToMicros } from './money/cost.js';
import { renderDoctor, runDoctor } from './commands/doctor.js';
import { redactText, registerSecret } from './infra/http.js';
import { Journal } from './state/journal.js';
import { LockedError } from './state/lock.js';
import { InputError, formatProblem } from './load/problem.js';
import { repairFolder, repairWithProvider } from './state/repair.js';
import { renderStatus } from './report/status.js';
import { Simulator } from './simulator/server.js';
import { EXIT, estimateManifests, loadValidated, rebuildReports, resolvePipeline, runManifests } from './commands/run.js';

function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 1${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''}`);
    return n;
  };
}

function wholeNumber(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > max) throw new InvalidArgumentError(`${name} must be a whole number from 0 to ${max}`);
    return n;
  };
}

function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a number above 0`);
    return n;
  };
}

/** A duration flag ("24h", "90m") as milliseconds. */
function durationMs(name: string) {
  return (value: string): number => {
    const ms = parseDurationMs(value);
    if (ms === undefined) throw new InvalidArgumentError(`${name} must be a duration like 24h or 90m`);
    return ms;
  };
}

function nonNegative(name: string, max = Number.POSITIVE_INFINITY) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || n > max) throw new InvalidArgumentError(`${name} must be a number from 0${max === Number.POSITIVE_INFINITY ? '' : ` to ${max}`}`);
    return n;
  };
}

/** The output folder a command reads: `--out`, else the pipeline's `output.dir`, else `out/`. */
async function outDirOf(opts: { out?: string; pipeline?: string }): Promise<string> {
  const pipeline = await resolvePipeline({ ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }), ...(opts.out !== undefined && { outDir: opts.out }) });
  return path.resolve(pipeline.outputDir);
}

/** Ctrl-C or SIGTERM stops the run cleanly (reports written, exit 130); a second one exits at once. */
function abortOnSignals(): AbortController {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    process.stderr.write(`\n${name}: stopping; runs in flight stay recorded and a rerun resumes them (press Ctrl-C again to quit at once)\n`);
    controller.abort(new DOMException('interrupted', 'AbortError'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller;
}

// package.json sits one folder above both src/ and dist/.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('clipmill')
  .description('Turns manifests of image + prompt + duration rows into Kling 3.0 Pro videos, overnight, without paying twice.')
  .version(version)
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .addHelpText(
    'after',
    `
Examples:
  clipmill validate manifests/                                   check every manifest, send nothing
  clipmill run manifests/ --pipeline pipeline/demo.yaml          rehearse on the built-in simulator
  RUNFLOW_API_KEY=... clipmill doctor manifests/ --pipeline pipeline/nightly.yaml   free checks before a paid night
  RUNFLOW_API_KEY=... clipmill run manifests/ --pipeline pipeline/nightly.yaml --dry-run
  clipmill run --help                                            options and exit codes of a run`,
  );

program
  .command('run')
  .description('validate the manifests, then generate and download every video not already done, and write the reports')
  .argument('<manifests...>', 'manifest files (.yaml, .yml, .csv) or folders of them')
  .option('--pipeline <file>', 'pipeline file: provider, limits, pricing, defaults (default: Runflow with built-in limits)')
  .option('--out <dir>', 'output folder for videos, reports and the journal (default: the pipeline\'s output.dir, else out/)')
  .option('--concurrency <n>', 'rows in flight at once (overrides the pipeline)', positiveInt('--concurrency', 1000))
  .option('--rpm <n>', 'API requests per minute (overrides the pipeline)', positiveInt('--rpm', 100_000))
  .option('--dry-run', 'validate and plan, print what would be done and its estimated cost, send nothing')
  .option('--retry-failed', 'resubmit rows that failed for good in an earlier run')
  .option('--max-cost <usd>', 'spend at most this much on new runs tonight (the lower of it and budget_usd applies)', positiveNumber('--max-cost'))
  .option('--partial', 'when the estimate is over the budget, run the rows that fit, in manifest order, instead of refusing')
  .option('--skip-invalid', 'run the valid manifests and list the invalid ones, instead of refusing the whole night (exit 2 at the end)')
  .option('--resubmit-unknown', 'submit again rows whose create got no answer, without looking them up (fal keeps no run list: check its dashboard first)')
  .addOption(new Option('--log <format>', 'log format on stderr').choices(['pretty', 'json']).default('pretty'))
  .addHelpText(
    'after',
    `
Exit codes: 0 all rows done, 1 some rows failed or are owed (see the report), 2 invalid input or config,
or the journal could not be written (a full disk), 3 stopped by budget or credit, 130 interrupted (run
the same command again to resume).
Secrets come from the environment only: RUNFLOW_API_KEY or FAL_KEY (RUNFLOW_BASE_URL / FAL_BASE_URL point elsewhere).`,
  )
  .action(async (manifests: string[], opts: { pipeline?: string; out?: string; concurrency?: number; rpm?: number; dryRun?: boolean; retryFailed?: boolean; maxCost?: number; partial?: boolean; resubmitUnknown?: boolean; skipInvalid?: boolean; log: 'pretty' | 'json' }) => {
    const controller = abortOnSignals();
    const result = await runManifests({
      manifests,
      ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }),
      ...(opts.out !== undefined && { outDir: opts.out }),
      ...(opts.concurrency !== undefined && { concurrency: opts.concurrency }),
      ...(opts.rpm !== undefined && { requestsPerMinute: opts.rpm }),
      dryRun: opts.dryRun ?? false,
      retryFailed: opts.retryFailed ?? false,
      partial: opts.partial ?? false,
      resubmitUnknown: opts.resubmitUnknown ?? false,
      skipInvalid: opts.skipInvalid ?? false,
      ...(opts.maxCost !== undefined && { maxCostUsd: opts.maxCost }),
      log: opts.log,
      signal: controller.signal,
    });
    process.exitCode = result.exitCode;
  });

program
  .command('validate')
  .description('check manifests completely (every row, every image) without sending anything; exit 2 on any problem')
  .argument('<manifests...>', 'manifest files (.yaml, .yml, .csv) or folders of them')
  .option('--pipeline <file>', 'pipeline file whose defaults apply to rows')
  .action(async (manifests: string[], opts: { pipeline?: string }) => {
    const pipeline = await resolvePipeline(opts.pipeline !== undefined ? { pipelineFile: opts.pipeline } : {});
    const loaded = await loadValidated(manifests, pipeline);
    let rows = 0;
    let seconds = 0;
    for (const m of loaded.manifests) {
      rows += m.rows.length;
      seconds += m.rows.reduce((sum, r) => sum + r.request.durationSeconds, 0);
      process.stdout.write(`ok  ${m.shown}: ${m.rows.length} rows\n`);
    }
    process.stdout.write(`${loaded.manifests.length} manifests, ${rows} rows, ${seconds} s of video: valid\n`);
  });

program
  .command('estimate')
  .description('what the remaining work will cost, per manifest and audio mode; rows already done are not counted; sends nothing')
  .argument('<manifests...>', 'manifest files (.yaml, .yml, .csv) or folders of them')
  .option('--pipeline <file>', 'pipeline file: pricing, defaults, output.dir, budget_usd')
  .option('--out <dir>', 'output folder whose journal says what is done')
  .option('--max-cost <usd>', 'compare against this budget', positiveNumber('--max-cost'))
  .option('--json', 'print JSON for scripts')
  .action(async (manifests: string[], opts: { pipeline?: string; out?: string; maxCost?: number; json?: boolean }) => {
    const estimate = await estimateManifests({
      manifests,
      ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }),
      ...(opts.out !== undefined && { outDir: opts.out }),
      ...(opts.maxCost !== undefined && { maxCostUsd: opts.maxCost }),
    });
    process.stdout.write(opts.json ? `${JSON.stringify(estimate.json, null, 2)}\n` : `${estimate.text}\n`);
  });

program
  .command('status')
  .description('show what the journal of an output folder says: per-manifest counts, rows in flight or failed (no network)')
  .option('--out <dir>', 'output folder (default: the pipeline\'s output.dir, else out/)')
  .option('--pipeline <file>', 'pipeline file whose output.dir to read')
  .action(async (opts: { out?: string; pipeline?: string }) => {
    const outDir = await outDirOf(opts);
    process.stdout.write(`${renderStatus(await Journal.read(outDir), outDir)}\n`);
  });

program
  .command('report')
  .description('rebuild report.json, report.csv, report.md and report.html of an output folder from its journal (no network, no manifests)')
  .option('--out <dir>', 'output folder (default: the pipeline\'s output.dir, else out/)')
  .option('--pipeline <file>', 'pipeline file whose output.dir to use')
  .action(async (opts: { out?: string; pipeline?: string }) => {
    const { report, files } = await rebuildReports(await outDirOf(opts));
    process.stdout.write(`${report.totals.done} of ${report.totals.rows} videos done, ${report.totals.failed} failed\nreports: ${files.map((f) => path.relative(process.cwd(), f) || f).join(', ')}\n`);
  });

program
  .command('repair')
  .description('rebuild a damaged or lost journal from its readable lines and the sidecars beside the videos, under the folder\'s lock; with manifests (Runflow), also find the runs made for their rows in the provider\'s run list by client_ref, so the next run re-attaches to them instead of paying again')
  .argument('[manifests...]', 'the manifests the folder was run with: look their rows\' runs up at the provider (read-only)')
  .option('--out <dir>', 'output folder (default: the pipeline\'s output.dir, else out/)')
  .option('--pipeline <file>', 'pipeline file whose output.dir to repair')
  .option('--since <duration>', 'with manifests: how far back to look in the provider\'s run list', durationMs('--since'), 168 * 3_600_000)
  .addHelpText('after', '\nExit codes: 0 nothing was lost, 1 something could not be recovered (listed), 2 no journal and no sidecars in the folder.\nThe damaged journal is kept beside the repaired one as journal.jsonl.damaged-<time>.')
  .action(async (manifests: string[], opts: { out?: string; pipeline?: string; since: number }) => {
    const result =
      manifests.length > 0
        ? await repairWithProvider({ manifests, ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }), ...(opts.out !== undefined && { outDir: opts.out }), sinceMs: Date.now() - opts.since })
        : await repairFolder(await outDirOf(opts));
    process.stdout.write(`${result.lines.join('\n')}\n`);
    process.exitCode = result.exitCode;
  });

program
  .command('audit')
  .description('compare the provider\'s own list of runs of a period with this folder\'s journal: runs paid twice or unknown here, runs known here the provider does not list, cost differences (free, read-only; Runflow)')
  .option('--out <dir>', 'output folder (default: the pipeline\'s output.dir, else out/)')
  .option('--pipeline <file>', 'pipeline file: which provider and where')
  .option('--since <duration>', 'how far back to look (like 24h; a week is 168h)', durationMs('--since'), 24 * 3_600_000)
  .addHelpText('after', '\nExit codes: 0 the provider and the folder agree, 1 differences (listed), 2 cannot audit (fal keeps no run list; no key).')
  .action(async (opts: { out?: string; pipeline?: string; since: number }) => {
    const result = await runAudit({ ...(opts.out !== undefined && { outDir: opts.out }), ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }), sinceMs: Date.now() - opts.since });
    process.stdout.write(`${result.lines.join('\n')}\n`);
    process.exitCode = result.exitCode;
  });

program
  .command('forget')
  .description('give up a stuck row (a run the provider no longer knows, a create nobody can look up): journaled as failed with your reason; the next run leaves it alone unless --retry-failed')
  .argument('<row>', '<manifest>/<id>, as clipmill status shows it')
  .requiredOption('--reason <text>', 'why (kept in the journal and the reports)')
  .option('--out <dir>', 'output folder (default: the pipeline\'s output.dir, else out/)')
  .option('--pipeline <file>', 'pipeline file whose output.dir to use')
  .action(async (row: string, opts: { reason: string; out?: string; pipeline?: string }) => {
    const forgotten = await forgetRow(await outDirOf(opts), row, opts.reason);
    process.stdout.write(`${forgotten.key} (was ${forgotten.previousStatus}${forgotten.runId ? `, run ${forgotten.runId}` : ''}) given up: recorded failed (FORGOTTEN); the next run leaves it alone unless --retry-failed\n`);
  });

program
  .command('doctor')
  .description('before a paid night: check the provider with free, read-only requests (health, key, balance against tonight\'s estimate, the run list clipmill relies on, clock skew)')
  .argument('[manifests...]', 'manifests whose remaining work the balance is compared with')
  .option('--pipeline <file>', 'pipeline file: which provider and where')
  .option('--out <dir>', 'output folder whose journal tells what is already done')
  .option('--json', 'the checks as JSON')
  .addHelpText('after', '\nExit codes: 0 ready (warnings are printed), 1 a check failed, 2 invalid configuration (no key, bad pipeline).')
  .action(async (manifests: string[], opts: { pipeline?: string; out?: string; json?: boolean }) => {
    const result = await runDoctor({ manifests, ...(opts.pipeline !== undefined && { pipelineFile: opts.pipeline }), ...(opts.out !== undefined && { outDir: opts.out }) });
    process.stdout.write(opts.json ? `${JSON.stringify({ ...result, estimate_usd: result.estimateMicros / 1e6 }, null, 2)}\n` : `${renderDoctor(result).join('\n')}\n`);
    process.exitCode = result.exitCode;
  });

program
  .command('simulate')
  .description('run the built-in simulator on loopback (Runflow\'s API and fal\'s queue), to rehearse a pipeline for free (RUNFLOW_BASE_URL or FAL_BASE_URL=<printed url>)')
  .option('--port <n>', 'port (0 picks a free one)', wholeNumber('--port', 65535), 0)
  .option('--latency-ms <n>', 'time each run spends running', wholeNumber('--latency-ms', 86_400_000), 1500)
  .option('--concurrency <n>', 'runs running at once; more wait in queued', positiveInt('--concurrency'), 8)
  .option('--fail-rate <r>', 'share of runs that fail (not billed)', nonNegative('--fail-rate', 1), 0)
  .option('--cancel-rate <r>', 'share of runs the provider cancels (not billed)', nonNegative('--cancel-rate', 1), 0)
  .option('--error-rate <r>', 'share of API requests answered 503', nonNegative('--error-rate', 1), 0)
  .option('--rate-limit-rate <r>', 'share of API requests answered 429', nonNegative('--rate-limit-rate', 1), 0)
  .option('--reset-rate <r>', 'share of API requests whose connection is reset', nonNegative('--reset-rate', 1), 0)
  .option('--truncate-rate <r>', 'share of downloads cut short', nonNegative('--truncate-rate', 1), 0)
  .option('--slow-download-rate <r>', 'share of downloads sent slowly', nonNegative('--slow-download-rate', 1), 0)
  .option('--slow-download-ms <n>', 'how long a slow download takes', wholeNumber('--slow-download-ms', 600_000), 500)
  .option('--rpm <n>', 'the organisation rate limit: API requests per minute, then 429 (0: none)', wholeNumber('--rpm', 1_000_000), 0)
  .option('--url-ttl-ms <n>', 'result URLs expire after this long (0: never)', wholeNumber('--url-ttl-ms', 86_400_000), 0)
  .option('--credit-usd <x>', 'credit; creates beyond it get 402', nonNegative('--credit-usd'))
  .option('--price-usd-per-second <x>', 'billing rate for silent video', nonNegative('--price-usd-per-second'), 0.14)
  .option('--audio-price-usd-per-second <x>', 'billing rate for video with audio', nonNegative('--audio-price-usd-per-second'), 0.14)
  .option('--voice-price-usd-per-second <x>', 'billing rate with voice control', nonNegative('--voice-price-usd-per-second'), 0.14)
  .option('--api-key <key>', 'accept only this key (default: any non-empty key)')
  .option('--create-response-delay-ms <n>', 'answer creates this late, after the run exists (a client timeout then loses the answer)', wholeNumber('--create-response-delay-ms', 600_000), 0)
  .option('--create-commit-delay-ms <n>', 'make the run only this long after a create arrives (a slow provider)', wholeNumber('--create-commit-delay-ms', 600_000), 0)
  .option('--list-page-size <n>', 'Runflow run list: at most this many runs a page', positiveInt('--list-page-size', 500), 500)
  .option('--list-empty-pages <n>', 'Runflow run list: a filtered answer starts with this many empty pages', wholeNumber('--list-empty-pages', 40), 0)
  .option('--list-delay-ms <n>', 'Runflow run list: a new run is listed only this long after its create', wholeNumber('--list-delay-ms', 600_000), 0)
  .option('--result-ttl-scale <x>', 'fal keeps results 1 h (6 min when 10 KB or more) times this', nonNegative('--result-ttl-scale', 1), 1)
  .option('--seed <n>', 'seed for the simulated faults', wholeNumber('--seed', 2 ** 31), 1)
  .action(async (opts: Record<string, unknown>) => {
    const settings = simulatorOptionsSchema.parse({
      port: opts.port,
      latency_ms: opts.latencyMs,
      concurrency: opts.concurrency,
      fail_rate: opts.failRate,
      cancel_rate: opts.cancelRate,
      create_response_delay_ms: opts.createResponseDelayMs,
      create_commit_delay_ms: opts.createCommitDelayMs,
      list_page_size: opts.listPageSize,
      list_empty_pages: opts.listEmptyPages,
      list_delay_ms: opts.listDelayMs,
      result_ttl_scale: opts.resultTtlScale,
      error_rate: opts.errorRate,
      rate_limit_rate: opts.rateLimitRate,
      reset_rate: opts.resetRate,
      truncate_rate: opts.truncateRate,
      slow_download_rate: opts.slowDownloadRate,
      slow_download_ms: opts.slowDownloadMs,
      requests_per_minute: opts.rpm,
      url_ttl_ms: opts.urlTtlMs,
      price_usd_per_second: opts.priceUsdPerSecond,
      audio_price_usd_per_second: opts.audioPriceUsdPerSecond,
      voice_price_usd_per_second: opts.voicePriceUsdPerSecond,
      seed: opts.seed,
      ...(opts.creditUsd !== undefined && { credit_usd: opts.creditUsd }),
      ...(opts.apiKey !== undefined && { api_key: opts.apiKey }),
    });
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

async function main(argv: string[]): Promise<void> {
  // Whatever command runs, the keys in the environment never reach its output (a report rebuilt from an old journal included).
  for (const name of ['RUNFLOW_API_KEY', 'FAL_KEY']) if (process.env[name]?.trim()) registerSecret(process.env[name]!.trim());
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = EXIT.ok;
      return;
    }
    if (typeof code === 'string' && code.startsWith('commander.')) {
      process.exitCode = EXIT.invalid;
      return;
    }
    if (error instanceof InputError) {
      for (const problem of error.problems) process.stderr.write(`${formatProblem(problem)}\n`);
      process.stderr.write(`${error.message}; nothing was sent. Fix them and run again.\n`);
      process.exitCode = EXIT.invalid;
      return;
    }
    if (error instanceof LockedError) {
      process.stderr.write(`clipmill: ${redactText(error.message)}\n`);
      process.exitCode = EXIT.invalid;
      return;
    }
    process.stderr.write(`clipmill: ${redactText(error instanceof Error ? error.message : String(error))}\n`);
    process.exitCode = EXIT.rowsFailed;
  }
}

await main(process.argv);
