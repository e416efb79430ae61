#!/usr/bin/env node
// First, so the heap setting applies before the modules below allocate.
import './infra/heap.js';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerSecret } from './infra/http.js';
import { jsonLine } from './infra/log.js';
import { debugWanted, errorLines, exitCodeOf } from './cli/exit.js';
import {
  addAuditCommand,
  addCompactCommand,
  addDoctorCommand,
  addForgetCommand,
  addRepairCommand,
  addReportCommand,
  addStatusCommand,
} from './cli/folder-commands.js';
import { addEstimateCommand, addRunCommand, addValidateCommand } from './cli/run-commands.js';
import { addSimulateCommand } from './cli/simulate.js';
import { addReviewCommand } from './cli/review-command.js';
import { addRetryCommand } from './cli/retry-command.js';
import { addDashboardCommand, addEnqueueCommand, addWorkerCommand } from './cli/fleet-commands.js';

// package.json sits one folder above both src/ and dist/.
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('clipmill')
  .description('Turns manifests of image + prompt + duration rows into Kling 3.0 Pro videos, overnight, without paying twice.')
  .version(version)
  .option('--debug', 'on an error, also print its stack and causes (or set CLIPMILL_DEBUG=1)')
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

for (const add of [
  addRunCommand,
  addRetryCommand,
  addValidateCommand,
  addEstimateCommand,
  addStatusCommand,
  addReportCommand,
  addReviewCommand,
  addRepairCommand,
  addAuditCommand,
  addForgetCommand,
  addCompactCommand,
  addDoctorCommand,
  addSimulateCommand,
  addEnqueueCommand,
  addWorkerCommand,
  addDashboardCommand,
])
  add(program);

function jsonLogWanted(argv: readonly string[]): boolean {
  return argv.some((arg, i) => arg === '--log=json' || (arg === '--log' && argv[i + 1] === 'json'));
}

function ignoreClosedPipe(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
}

/** The only place that ends the process's work: every error becomes its exit code and its lines on stderr (redacted). */
async function main(argv: string[]): Promise<void> {
  // A reader that went away (`clipmill run --help | head`) is not an error of ours: a run goes on, journaled, without its output.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', ignoreClosedPipe);
  // Whatever command runs, the keys in the environment never reach its output (a report rebuilt from an old journal included).
  for (const name of ['RUNFLOW_API_KEY', 'FAL_KEY']) {
    const key = process.env[name]?.trim();
    if (key) registerSecret(key);
  }
  try {
    await program.parseAsync(argv);
  } catch (error) {
    const lines = errorLines(error, debugWanted(program.opts().debug, process.env));
    // With --log json every line of both streams is JSON: the error is one event, its lines in order.
    if (jsonLogWanted(argv)) process.stderr.write(`${jsonLine('error', 'error', lines.join('\n'), { exit_code: exitCodeOf(error) })}\n`);
    else for (const line of lines) process.stderr.write(`${line}\n`);
    process.exitCode = exitCodeOf(error);
  }
}

await main(process.argv);
