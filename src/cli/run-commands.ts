import { Option, type Command } from 'commander';
import { estimateManifests } from '../commands/estimate.js';
import { runManifests } from '../commands/run.js';
import { loadValidated } from '../load/validate.js';
import { resolvePipeline } from '../config/pipeline.js';
import { EXIT } from '../report/summary.js';
import { jsonLine } from '../infra/log.js';
import { onlyOf, onlyOption, pipelineOption, settingOption, sourcesOf } from './options.js';
import { fleetIfNamed } from './fleet-options.js';

export const MANIFESTS = 'manifest files (.yaml, .yml, .csv, .xlsx, book.xlsx#Sheet), folders of them, or https URLs of a CSV or .xlsx (name=https://…)';

/** Ctrl-C or SIGTERM stops the run cleanly (reports written, exit 130); a second one exits at once. */
export function abortOnSignals(json = false): AbortController {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(EXIT.interrupted);
    const message = `${name}: stopping; runs in flight stay recorded and a rerun resumes them (press Ctrl-C again to quit at once)`;
    if (json) process.stderr.write(`${jsonLine('warn', 'interrupted', message)}\n`);
    else process.stderr.write(`\n${message}\n`);
    controller.abort(new DOMException('interrupted', 'AbortError'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller;
}

const RUN_HELP = `
Exit codes: 0 all rows done, 1 some rows failed or are owed (see the report), 2 invalid input or config,
or the journal could not be written (a full disk), 3 stopped by budget or credit, 4 an internal error
(a bug: report it; the journal is consistent), 130 interrupted (run the same command again to resume).
Secrets come from the environment only: RUNFLOW_API_KEY or FAL_KEY (RUNFLOW_BASE_URL / FAL_BASE_URL point elsewhere).`;

interface RunFlags {
  dryRun?: boolean;
  retryFailed?: boolean;
  partial?: boolean;
  resubmitUnknown?: boolean;
  skipInvalid?: boolean;
  verify?: boolean;
  log: 'pretty' | 'json';
}

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('validate the manifests, then generate and download every video not already done, and write the reports')
    .argument('<manifests...>', MANIFESTS)
    .addOption(pipelineOption('pipeline file: provider, limits, pricing, defaults (default: Runflow with built-in limits)'))
    .addOption(settingOption('outDir', 'dir', "output folder for videos, reports and the journal (default: the pipeline's output.dir, else out/)"))
    .addOption(settingOption('concurrency', 'n', 'rows in flight at once (overrides the pipeline)'))
    .addOption(settingOption('requestsPerMinute', 'n', 'API requests per minute (overrides the pipeline)'))
    .option('--dry-run', 'validate and plan, print what would be done and its estimated cost, send nothing')
    .option('--retry-failed', 'resubmit rows that failed for good in an earlier run')
    .addOption(onlyOption())
    .addOption(settingOption('maxCostUsd', 'usd', 'spend at most this much on new runs tonight (the lower of it and budget_usd applies)'))
    .option('--partial', 'when the estimate is over the budget, run the rows that fit, in manifest order, instead of refusing')
    .option('--skip-invalid', 'run the valid manifests and list the invalid ones, instead of refusing the whole night (exit 2 at the end)')
    .option('--resubmit-unknown', 'submit again rows whose create got no answer, without looking them up (fal keeps no run list: check its dashboard first)')
    .option(
      '--verify',
      'read every downloaded video again and compare its sha256 (by default a file whose size and modification time are as recorded is trusted unread)',
    )
    .addOption(new Option('--log <format>', 'log format on stderr').choices(['pretty', 'json']).default('pretty'))
    .addHelpText('after', RUN_HELP)
    .action(async (manifests: string[], opts: RunFlags & Record<string, unknown>) => {
      const controller = abortOnSignals(opts.log === 'json');
      const result = await runManifests({
        manifests,
        ...sourcesOf(opts),
        dryRun: opts.dryRun ?? false,
        retryFailed: opts.retryFailed ?? false,
        ...onlyOf(opts),
        partial: opts.partial ?? false,
        resubmitUnknown: opts.resubmitUnknown ?? false,
        skipInvalid: opts.skipInvalid ?? false,
        verify: opts.verify ?? false,
        log: opts.log,
        signal: controller.signal,
      });
      process.exitCode = result.exitCode;
    });
}

export function addValidateCommand(program: Command): void {
  program
    .command('validate')
    .description('check manifests completely (every row, every image) without sending anything; exit 2 on any problem')
    .argument('<manifests...>', MANIFESTS)
    .addOption(pipelineOption('pipeline file whose defaults apply to rows'))
    .action(async (manifests: string[], opts: Record<string, unknown>) => {
      const loaded = await loadValidated(manifests, await resolvePipeline(sourcesOf(opts)));
      let rows = 0;
      let seconds = 0;
      for (const m of loaded.manifests) {
        rows += m.rows.length;
        seconds += m.rows.reduce((sum, r) => sum + r.request.durationSeconds, 0);
        process.stdout.write(`ok  ${m.shown}: ${m.rows.length} rows\n`);
      }
      process.stdout.write(`${loaded.manifests.length} manifests, ${rows} rows, ${seconds} s of video: valid\n`);
    });
}

export function addEstimateCommand(program: Command): void {
  program
    .command('estimate')
    .description('what the remaining work will cost, per manifest and audio mode; rows already done are not counted; sends nothing')
    .argument('<manifests...>', MANIFESTS)
    .addOption(pipelineOption('pipeline file: pricing, defaults, output.dir, budget_usd'))
    .addOption(settingOption('outDir', 'dir', 'output folder whose journal says what is done'))
    .addOption(settingOption('maxCostUsd', 'usd', 'compare against this budget'))
    .option('--json', 'print JSON for scripts')
    .addOption(onlyOption())
    .option(
      '--verify',
      'read every downloaded video again and compare its sha256 (by default a file whose size and modification time are as recorded is trusted unread)',
    )
    .option('--redis <url>', "plan against a fleet's journal in this Redis instead of the folder's")
    .option('--queue <name>', 'the fleet to read (default "clipmill")')
    .action(async (manifests: string[], opts: { json?: boolean; verify?: boolean } & Record<string, unknown>) => {
      const fleet = fleetIfNamed(opts, process.env);
      const estimate = await estimateManifests({ manifests, ...sourcesOf(opts), ...onlyOf(opts), verify: opts.verify ?? false, fleet });
      process.stdout.write(opts.json ? `${JSON.stringify(estimate.json, null, 2)}\n` : `${estimate.text}\n`);
    });
}
