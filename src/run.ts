import path from 'node:path';
import { defaultPipeline, loadPipeline, type Pipeline } from './config.js';
import { formatUsd } from './cost.js';
import { ACTIVE_ACTIONS, executePlan, type StopReason } from './execute.js';
import { HttpClient } from './http.js';
import { Journal } from './journal.js';
import { Logger, type LogFormat } from './log.js';
import { loadManifests, type LoadedManifests } from './manifest/load.js';
import { acquireLock } from './lock.js';
import { findDamagedOutputs, removeTemporaryFiles } from './outputs.js';
import { planRun, rowKey, type Plan } from './plan.js';
import { InputError, type Problem } from './problem.js';
import { openProvider, providerProblems } from './providers/index.js';
import { RUNFLOW_MAX_INLINE_BYTES } from './providers/runflow.js';
import { buildReport, type Report } from './report/build.js';
import { writeReports } from './report/write.js';
import { RateGate } from './scheduler.js';

export const EXIT = { ok: 0, rowsFailed: 1, invalid: 2, stopped: 3, interrupted: 130 } as const;

export interface RunOptions {
  manifests: string[];
  pipelineFile?: string;
  outDir?: string;
  concurrency?: number;
  requestsPerMinute?: number;
  dryRun?: boolean;
  retryFailed?: boolean;
  log?: LogFormat;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Where the end-of-run summary goes (stdout by default). */
  print?: (line: string) => void;
  /** Where log lines go (stderr by default). */
  logLine?: (line: string) => void;
}

export interface RunResult {
  exitCode: number;
  plan?: Plan;
  report?: Report;
  stopped?: StopReason;
}

export async function resolvePipeline(options: Pick<RunOptions, 'pipelineFile' | 'outDir' | 'concurrency' | 'requestsPerMinute'>): Promise<Pipeline> {
  const pipeline = options.pipelineFile ? await loadPipeline(options.pipelineFile) : defaultPipeline();
  if (options.outDir !== undefined) pipeline.outputDir = options.outDir;
  if (options.concurrency !== undefined) pipeline.concurrency = options.concurrency;
  if (options.requestsPerMinute !== undefined) pipeline.requestsPerMinute = options.requestsPerMinute;
  return pipeline;
}

/** Loads and validates manifests against the pipeline; every problem found, or InputError. */
export async function loadValidated(manifestArgs: string[], pipeline: Pipeline, maxInlineImageBytes?: number): Promise<LoadedManifests> {
  const loaded = await loadManifests(manifestArgs, pipeline);
  const problems: Problem[] = [...loaded.problems];
  if (maxInlineImageBytes !== undefined) {
    for (const manifest of loaded.manifests) {
      for (const row of manifest.rows) {
        for (const [field, ref] of [['image', row.request.image], ['end_image', row.request.endImage]] as const) {
          const info = ref?.kind === 'file' ? loaded.images.get(ref.path) : undefined;
          if (info && info.bytes > maxInlineImageBytes) {
            problems.push({ file: row.file, line: row.line, field, message: `"${ref?.kind === 'file' ? ref.written : ''}" is ${(info.bytes / 1024).toFixed(0)} KiB; local images above ${Math.floor(maxInlineImageBytes / 1024)} KiB are not supported yet (use an https URL)` });
          }
        }
      }
    }
  }
  if (problems.length > 0) throw new InputError(problems);
  return loaded;
}

function describePlan(plan: Plan): string {
  const c = plan.counts;
  const parts = [`${c.done} done`, `${c.reattach} in flight re-attached`, `${c.download} to download`, `${c.submit} to submit`];
  if (c.failed > 0) parts.push(`${c.failed} failed before (use --retry-failed to resubmit)`);
  if (c.unknown > 0) parts.push(`${c.unknown} with an unanswered create (not resubmitted)`);
  return `${parts.join(', ')}; estimated cost of new submissions ${formatUsd(plan.submitMicros)}`;
}

/** `clipmill run`: validate everything, take the folder's lock, plan against the journal, execute, report. */
export async function runManifests(options: RunOptions): Promise<RunResult> {
  const env = options.env ?? process.env;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const log = new Logger(options.log ?? 'pretty', options.logLine);
  const signal = options.signal ?? new AbortController().signal;

  const pipeline = await resolvePipeline(options);
  // Configuration and credentials are checked before any manifest is read or request sent.
  const configProblems = providerProblems(pipeline, env);
  if (configProblems.length > 0) throw new InputError(configProblems);
  const loaded = await loadValidated(options.manifests, pipeline, RUNFLOW_MAX_INLINE_BYTES);
  const outDir = path.resolve(pipeline.outputDir);
  const planOptions = { pricing: pipeline.pricing, retryFailed: options.retryFailed ?? false };

  if (options.dryRun) {
    const states = await Journal.read(outDir);
    const keys = loaded.manifests.flatMap((m) => m.rows.map(rowKey));
    const plan = planRun(loaded.manifests, states, loaded.images, { ...planOptions, damagedOutputs: await findDamagedOutputs(outDir, states, keys) });
    print(`dry run: ${describePlan(plan)}. Nothing was sent.`);
    return { exitCode: EXIT.ok, plan };
  }

  const lock = await acquireLock(outDir);
  try {
    if (lock.tookOverFrom) log.warn('lock_taken_over', `took over the lock of a run that is gone (pid ${lock.tookOverFrom.pid}, started ${lock.tookOverFrom.started_at})`);
    const removed = await removeTemporaryFiles(outDir, loaded.manifests.map((m) => m.name));
    if (removed.length > 0) log.info('cleanup', `removed ${removed.length} partial download${removed.length === 1 ? '' : 's'} left by an interrupted run`);
    const journal = await Journal.open(outDir);
    try {
      return await execute(loaded, journal, pipeline, planOptions, { env, print, log, signal, outDir });
    } finally {
      await journal.close();
    }
  } finally {
    await lock.release();
  }
}

async function execute(
  loaded: LoadedManifests,
  journal: Journal,
  pipeline: Pipeline,
  planOptions: { pricing: Pipeline['pricing']; retryFailed: boolean },
  io: { env: NodeJS.ProcessEnv; print: (line: string) => void; log: Logger; signal: AbortSignal; outDir: string },
): Promise<RunResult> {
  const { env, print, log, signal, outDir } = io;
  const keys = loaded.manifests.flatMap((m) => m.rows.map(rowKey));
  const damagedOutputs = await findDamagedOutputs(outDir, journal.states, keys);
  for (const key of damagedOutputs) log.warn('output_damaged', `${key}: the downloaded video is missing or changed on disk; downloading it again from the same run`);
  const plan = planRun(loaded.manifests, journal.states, loaded.images, { ...planOptions, damagedOutputs });
  log.info('plan', describePlan(plan));

  let stopped: StopReason | undefined;
  if (plan.items.some((item) => ACTIVE_ACTIONS.has(item.action))) {
    const http = new HttpClient({ connections: Math.max(8, pipeline.concurrency * 2) });
    const gate = new RateGate(pipeline.requestsPerMinute);
    const handle = await openProvider(pipeline, env, http, gate);
    log.info('start', `sending to ${handle.endpoint}; concurrency ${pipeline.concurrency}, ${pipeline.requestsPerMinute} requests/min; output in ${outDir}`);
    try {
      stopped = await executePlan(plan.items, { provider: handle.provider, http, journal, log, pipeline, outDir, images: loaded.images, signal });
    } finally {
      await handle.close();
      await http.close();
    }
  }

  const report = buildReport(loaded.manifests, plan.items, journal.states, pipeline.provider);
  const files = await writeReports(outDir, report);
  const t = report.totals;
  print(`${t.done} of ${t.rows} videos done, ${t.failed} failed, ${t.skipped} skipped${t.in_flight ? `, ${t.in_flight} in flight` : ''}; cost ${formatUsd(Math.round(t.actual_usd * 1e6))} (estimated ${formatUsd(Math.round(t.estimated_usd * 1e6))})`);
  for (const row of report.rows.filter((r) => r.status === 'failed' || r.status === 'unknown')) print(`  ${row.status}: ${row.file}:${row.line} ${row.manifest}/${row.id}: ${row.error}`);
  print(`reports: ${files.map((f) => path.relative(process.cwd(), f) || f).join(', ')}`);
  if (signal.aborted) {
    print('interrupted: run the same command again to resume (runs in flight are re-attached, nothing is paid twice)');
    return { exitCode: EXIT.interrupted, plan, report };
  }
  if (stopped) {
    print(`stopped: ${stopped.message}`);
    const exitCode = stopped.kind === 'credit' ? EXIT.stopped : stopped.kind === 'fatal' ? EXIT.invalid : EXIT.rowsFailed;
    return { exitCode, plan, report, stopped };
  }
  return { exitCode: t.done === t.rows ? EXIT.ok : EXIT.rowsFailed, plan, report };
}
