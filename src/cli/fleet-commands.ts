import { Option, type Command } from 'commander';
import { resolvePipeline } from '../config/pipeline.js';
import { outDirOf } from '../commands/prepare.js';
import { shownRedisUrl } from '../fleet/redis.js';
import { Logger } from '../infra/log.js';
import { InputError } from '../load/problem.js';
import { providerProblems } from '../providers/index.js';
import { EXIT } from '../report/summary.js';
import { fleetOf, QUEUE_HELP, REDIS_HELP } from './fleet-options.js';
import { pipelineOption, settingOption, sourcesOf } from './options.js';
import { abortOnSignals, MANIFESTS } from './run-commands.js';

type Opts = Record<string, unknown>;

export function addEnqueueCommand(program: Command): void {
  program
    .command('enqueue')
    .description(
      'fleet mode: check and plan the manifests as run does (against the fleet journal in Redis), then add one job per row for workers; sends nothing to the provider',
    )
    .argument('<manifests...>', MANIFESTS)
    .option('--redis <url>', REDIS_HELP)
    .option('--queue <name>', QUEUE_HELP)
    .addOption(pipelineOption('pipeline file: provider, account cap (concurrency), limits, pricing, budget'))
    .addOption(settingOption('outDir', 'dir', 'the shared output folder the workers write videos to (checked for videos already there)'))
    .addOption(settingOption('concurrency', 'n', "the account's cap on runs at once, shared by every worker"))
    .addOption(settingOption('maxCostUsd', 'usd', 'the fleet may spend at most this much (the lower of it and budget_usd applies)'))
    .option('--retry-failed', 'resubmit rows that failed for good earlier')
    .option('--partial', 'when the estimate is over the budget, enqueue the rows that fit instead of refusing')
    .action(async (manifests: string[], opts: Opts) => {
      const env = process.env;
      const fleet = fleetOf(opts, env);
      // Ctrl-C stops a manifest download at once (exit 130, nothing enqueued), as it does for run.
      const controller = abortOnSignals();
      // The fleet's modules (BullMQ, bull-board) load only for its commands: a single machine's do not pay their start-up.
      const { enqueueManifests } = await import('../fleet/enqueue.js');
      const result = await enqueueManifests({
        manifests,
        ...sourcesOf(opts),
        ...fleet,
        retryFailed: opts.retryFailed === true,
        partial: opts.partial === true,
        signal: controller.signal,
      });
      process.exitCode = result.exitCode;
    });
}

export function addWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      "fleet mode: take rows from the fleet's queue and generate and download them, sharing the account's cap, rate and budget with every other worker",
    )
    .option('--redis <url>', REDIS_HELP)
    .option('--queue <name>', QUEUE_HELP)
    .addOption(pipelineOption('pipeline file: provider, limits, timings (the same file the enqueuer used)'))
    .addOption(settingOption('outDir', 'dir', 'the shared output folder videos are written to'))
    .addOption(settingOption('concurrency', 'n', 'rows this worker drives at once (the account cap still holds across workers)'))
    .addOption(settingOption('requestsPerMinute', 'n', "the account's requests per minute, shared by every worker"))
    .option('--until-idle', 'exit once the fleet has nothing waiting or running (for a nightly cron job); otherwise run until stopped')
    .addOption(new Option('--log <format>', 'log format on stderr').choices(['pretty', 'json']).default('pretty'))
    .action(async (opts: Opts) => {
      const env = process.env;
      const fleet = fleetOf(opts, env);
      const pipeline = await resolvePipeline(sourcesOf(opts), env);
      const problems = providerProblems(pipeline, env);
      if (problems.length > 0) throw new InputError(problems);
      const controller = abortOnSignals(opts.log === 'json');
      const log = new Logger(opts.log === 'json' ? 'json' : 'pretty');
      const outDir = outDirOf(pipeline.outputDir);
      log.info('worker_start', `worker on fleet "${fleet.queue}": output in ${outDir}`);
      const { runWorker } = await import('../fleet/worker.js');
      const done = await runWorker({ ...fleet, pipeline, env, outDir, log, signal: controller.signal, untilIdle: opts.untilIdle === true });
      log.info('worker_end', `worker done: ${done.rows} rows, ${done.downloads} downloads${done.stopped ? `; stopped: ${done.stopped.message}` : ''}`);
      const stoppedCode = done.stopped === undefined ? EXIT.ok : done.stopped.kind === 'io' ? EXIT.invalid : EXIT.stopped;
      process.exitCode = controller.signal.aborted ? EXIT.interrupted : stoppedCode;
    });
}

const DASHBOARD_HELP = `
Sign in as user "clipmill" with the password in CLIPMILL_DASHBOARD_PASSWORD (required; kept out of the command line).
The dashboard is read-only: a row is retried with clipmill enqueue --retry-failed, which checks the plan and the budget.
It serves plain HTTP: keep the default 127.0.0.1 and reach it through an SSH tunnel, or put a TLS proxy in front.`;

/** `--port`: a whole number from 0 (any free port) to 65535. */
function portOf(value: unknown): number | undefined {
  const port = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  return port <= 65535 ? port : undefined;
}

export function addDashboardCommand(program: Command): void {
  program
    .command('dashboard')
    .description("fleet mode: serve a read-only bull-board page of the fleet's queues (rows and downloads) behind a password, until stopped")
    .option('--redis <url>', REDIS_HELP)
    .option('--queue <name>', QUEUE_HELP)
    .option('--host <address>', 'the address to listen on (anything but loopback exposes it to the network)', '127.0.0.1')
    .option('--port <n>', 'the port to listen on (0: any free port)', '8080')
    .addHelpText('after', DASHBOARD_HELP)
    .action(async (opts: Opts) => {
      const env = process.env;
      const fleet = fleetOf(opts, env);
      const password = env.CLIPMILL_DASHBOARD_PASSWORD ?? '';
      const port = portOf(opts.port);
      const problems = [];
      if (password === '')
        problems.push({
          file: 'CLIPMILL_DASHBOARD_PASSWORD',
          line: 0,
          field: '',
          message: 'is required: the password the dashboard asks for (user "clipmill")',
        });
      if (port === undefined) problems.push({ file: '--port', line: 0, field: 'port', message: `"${String(opts.port)}": use a whole number from 0 to 65535` });
      if (problems.length > 0 || port === undefined) throw new InputError(problems);
      const { startDashboard } = await import('../fleet/dashboard.js');
      const dashboard = await startDashboard({ ...fleet, host: String(opts.host), port, password });
      process.stdout.write(`dashboard of fleet "${fleet.queue}" (${shownRedisUrl(fleet.redisUrl)}) at ${dashboard.url}, user "clipmill"; Ctrl-C to stop\n`);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.stderr.write(`\n${signal}: stopping the dashboard\n`);
      await dashboard.close();
      process.exitCode = EXIT.ok;
    });
}
