import path from 'node:path';
import type { Command } from 'commander';
import { runAudit } from '../commands/audit.js';
import { renderDoctor, runDoctor } from '../commands/doctor.js';
import { forgetRow } from '../commands/forget.js';
import { rebuildFleetReports, rebuildReports } from '../commands/report.js';
import { outDirOf as resolvedOut } from '../commands/prepare.js';
import { addFleetReadOptions, fleetIfNamed } from './fleet-options.js';
import { resolvePipeline } from '../config/pipeline.js';
import { readStatus } from '../commands/status.js';
import { renderStatus, ROWS_SHOWN } from '../report/status.js';
import { compactJournal } from '../state/compact.js';
import { acquireLock } from '../state/lock.js';
import { repairFolder, repairWithProvider } from '../state/repair.js';
import { OUT_HELP, pipelineOption, settingOption, sinceOption, sourcesOf } from './options.js';

type Opts = Record<string, unknown>;

/** The output folder a command reads: `--out`, else the pipeline's `output.dir`, else `out/`. */
async function outDirOf(opts: Opts): Promise<string> {
  return resolvedOut((await resolvePipeline(sourcesOf(opts))).outputDir);
}

export function addStatusCommand(program: Command): void {
  const command = program
    .command('status')
    .description(
      'show an output folder (or a fleet) now: every row with its state, run id, age and cost; money spent tonight, in all, reserved and left in the budget; whether a run holds the folder (reads only: no network, no lock)',
    )
    .argument('[manifests...]', "show these manifests' rows (validated as run does); by default the rows of the last run's plan")
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir and budget to read'))
    .addOption(
      settingOption('maxCostUsd', 'usd', "the budget to count against, as run's --max-cost (the lower of it and budget_usd applies; a fleet's is in Redis)"),
    )
    .option('--rows', `list every row even past ${ROWS_SHOWN}`)
    .option('--json', 'everything as one JSON document (every row, money in USD, the lock)');
  addFleetReadOptions(command).action(async (manifests: string[], opts: Opts & { rows?: boolean; json?: boolean }) => {
    const onWatch = (line: string) => process.stderr.write(`${line}\n`);
    const status = await readStatus({ manifests, ...sourcesOf(opts), fleet: fleetIfNamed(opts, process.env), lockRead: { onWatch } });
    process.stdout.write(opts.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderStatus(status, { allRows: opts.rows === true })}\n`);
  });
}

export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description('rebuild report.json, report.csv, report.md and report.html of an output folder from its journal (no network, no manifests)')
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir to use'))
    .option(
      '--verify',
      'read every downloaded video again and compare its sha256 (by default a file whose size and modification time are as recorded is trusted unread)',
    )
    .option('--redis <url>', "rebuild them from a fleet's journal in this Redis, and write that journal out as journal.jsonl beside them")
    .option('--queue <name>', 'the fleet to read (default "clipmill")')
    .action(async (opts: Opts) => {
      const outDir = await outDirOf(opts);
      const fleet = fleetIfNamed(opts, process.env);
      const verify = opts.verify === true;
      const { report, files, warning } = fleet ? await rebuildFleetReports(fleet, outDir, verify) : await rebuildReports(outDir, verify);
      if (warning !== undefined) process.stderr.write(`WARN ${warning}\n`);
      process.stdout.write(
        `${report.totals.done} of ${report.totals.rows} videos done, ${report.totals.failed} failed\nreports: ${files.map((f) => path.relative(process.cwd(), f) || f).join(', ')}\n`,
      );
    });
}

export function addRepairCommand(program: Command): void {
  program
    .command('repair')
    .description(
      "rebuild a damaged or lost journal from its readable lines and the sidecars beside the videos, under the folder's lock; with manifests (Runflow), also find the runs made for their rows in the provider's run list by client_ref, so the next run re-attaches to them instead of paying again",
    )
    .argument('[manifests...]', "the manifests the folder was run with: look their rows' runs up at the provider (read-only)")
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir to repair'))
    .addOption(sinceOption("with manifests: how far back to look in the provider's run list", '168h'))
    .addHelpText(
      'after',
      '\nExit codes: 0 nothing was lost, 1 something could not be recovered (listed), 2 no journal and no sidecars in the folder.\nThe damaged journal is kept beside the repaired one as journal.jsonl.damaged-<time>.',
    )
    .action(async (manifests: string[], opts: Opts & { since: number }) => {
      const result =
        manifests.length > 0
          ? await repairWithProvider({ manifests, ...sourcesOf(opts), sinceMs: Date.now() - opts.since })
          : await repairFolder(await outDirOf(opts));
      process.stdout.write(`${result.lines.join('\n')}\n`);
      process.exitCode = result.exitCode;
    });
}

export function addAuditCommand(program: Command): void {
  program
    .command('audit')
    .description(
      "compare the provider's own list of runs of a period with this folder's journal: runs paid twice or unknown here, runs known here the provider does not list, cost differences (free, read-only; Runflow)",
    )
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file: which provider and where'))
    .addOption(sinceOption('how far back to look (like 24h; a week is 168h)', '24h'))
    .addHelpText('after', '\nExit codes: 0 the provider and the folder agree, 1 differences (listed), 2 cannot audit (fal keeps no run list; no key).')
    .action(async (opts: Opts & { since: number }) => {
      const result = await runAudit({ ...sourcesOf(opts), sinceMs: Date.now() - opts.since });
      process.stdout.write(`${result.lines.join('\n')}\n`);
      process.exitCode = result.exitCode;
    });
}

export function addForgetCommand(program: Command): void {
  program
    .command('forget')
    .description(
      'give up a stuck row (a run the provider no longer knows, a create nobody can look up): journaled as failed with your reason; the next run leaves it alone unless --retry-failed',
    )
    .argument('<row>', '<manifest>/<id>, as clipmill status shows it')
    .requiredOption('--reason <text>', 'why (kept in the journal and the reports)')
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir to use'))
    .action(async (row: string, opts: Opts & { reason: string }) => {
      const forgotten = await forgetRow(await outDirOf(opts), row, opts.reason);
      process.stdout.write(
        `${forgotten.key} (was ${forgotten.previousStatus}${forgotten.runId ? `, run ${forgotten.runId}` : ''}) given up: recorded failed (FORGOTTEN); the next run leaves it alone unless --retry-failed\n`,
      );
    });
}

export function addCompactCommand(program: Command): void {
  program
    .command('compact')
    .description(
      "rewrite an output folder's journal as what it adds up to (each row's state, every run and its cost, the last plan), under the folder's lock; the old journal is kept gzipped in .clipmill/archive/. A run does this by itself once the journal is mostly history",
    )
    .addOption(settingOption('outDir', 'dir', OUT_HELP))
    .addOption(pipelineOption('pipeline file whose output.dir to use'))
    .action(async (opts: Opts) => {
      const outDir = await outDirOf(opts);
      const lock = await acquireLock(outDir);
      try {
        const done = await compactJournal(outDir);
        const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;
        process.stdout.write(
          done
            ? `journal compacted from ${mb(done.beforeBytes)} to ${mb(done.afterBytes)}; the old one is kept in ${path.relative(process.cwd(), done.archive) || done.archive}\n`
            : 'nothing to compact (no journal, or its last plan is incomplete after a repair: run clipmill run once first)\n',
        );
      } finally {
        await lock.release();
      }
    });
}

export function addDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description(
      "before a paid night: check the provider with free, read-only requests (health, key, balance against tonight's estimate, the run list clipmill relies on, clock skew)",
    )
    .argument('[manifests...]', 'manifests whose remaining work the balance is compared with')
    .addOption(pipelineOption('pipeline file: which provider and where'))
    .addOption(settingOption('outDir', 'dir', 'output folder whose journal tells what is already done'))
    .option('--json', 'the checks as JSON')
    .addHelpText('after', '\nExit codes: 0 ready (warnings are printed), 1 a check failed, 2 invalid configuration (no key, bad pipeline).')
    .action(async (manifests: string[], opts: Opts & { json?: boolean }) => {
      const result = await runDoctor({ manifests, ...sourcesOf(opts) });
      process.stdout.write(
        opts.json ? `${JSON.stringify({ ...result, estimate_usd: result.estimateMicros / 1e6 }, null, 2)}\n` : `${renderDoctor(result).join('\n')}\n`,
      );
      process.exitCode = result.exitCode;
    });
}
