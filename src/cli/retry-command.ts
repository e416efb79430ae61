import { Option, type Command } from 'commander';
import { retryRows } from '../commands/retry.js';
import { abortOnSignals } from './run-commands.js';
import { pipelineOption, settingOption, sourcesOf } from './options.js';

const RETRY_HELP = `
The rows are named as clipmill status shows them, <manifest>/<id> (globs allowed, quoted: 'spring-launch/*'). The manifests are
the ones the folder's last run read, validated again. A named row that failed is submitted again (a new, paid run);
one in flight or paid but not downloaded is finished from its run (never paid twice); one done, or never run, is left
and the reason said. The budget applies as for run, what its period has spent included. Exit codes as for run.`;

export function addRetryCommand(program: Command): void {
  program
    .command('retry')
    .description('submit again the named rows that failed, within the budget; the rest of the night is left as it is')
    .argument('<rows...>', '<manifest>/<id> of each row, as clipmill status shows it (globs allowed)')
    .addOption(pipelineOption('pipeline file: provider, limits, pricing, output.dir, budget_usd'))
    .addOption(settingOption('outDir', 'dir', "output folder whose journal holds the failed rows (default: the pipeline's output.dir, else out/)"))
    .addOption(
      settingOption(
        'maxCostUsd',
        'usd',
        "budget for the budget's period (budget_period), what was spent in it included (the lower of it and budget_usd applies)",
      ),
    )
    .option('--dry-run', 'print what would be retried and its estimated cost, send nothing')
    .addOption(new Option('--log <format>', 'log format on stderr').choices(['pretty', 'json']).default('pretty'))
    .addHelpText('after', RETRY_HELP)
    .action(async (rows: string[], opts: { dryRun?: boolean; log: 'pretty' | 'json' } & Record<string, unknown>) => {
      const controller = abortOnSignals(opts.log === 'json');
      const result = await retryRows(rows, { ...sourcesOf(opts), dryRun: opts.dryRun ?? false, log: opts.log, signal: controller.signal });
      process.exitCode = result.exitCode;
    });
}
