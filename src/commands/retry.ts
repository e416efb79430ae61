import { access } from 'node:fs/promises';
import path from 'node:path';
import { resolvePipeline } from '../config/pipeline.js';
import { InputError } from '../load/problem.js';
import { splitSheet } from '../load/source.js';
import { Journal } from '../state/journal.js';
import { outDirOf, type RunOptions } from './prepare.js';
import { runManifests, type RunResult } from './run.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** The manifests the folder's last run planned: `clipmill retry` runs against them, so the rows are named, not the files. */
async function manifestsOfLastRun(outDir: string, provider: string, rows: readonly string[]): Promise<string[]> {
  const plan = (await Journal.replay(outDir)).lastPlan;
  const instead = `clipmill run <manifests> ${rows.map((row) => `--only '${row}'`).join(' ')} --retry-failed`;
  if (plan === undefined)
    throw new InputError([
      {
        file: outDir,
        line: 0,
        field: '',
        message: `no run is recorded in this folder, so there is nothing to retry (check --out or the pipeline's output.dir)`,
      },
    ]);
  if (plan.provider !== provider)
    throw new InputError([
      {
        file: '--pipeline',
        line: 0,
        field: 'provider',
        message: `the folder's last run used ${plan.provider}, this pipeline ${provider}: retry with the pipeline file that run used (its runs are known only to ${plan.provider})`,
      },
    ]);
  const files: string[] = [];
  for (const manifest of plan.manifests) {
    // A URL manifest is recorded by its name and host (older journals: the URL without its query), never an absolute path.
    const remote = !path.isAbsolute(manifest.file);
    // The file as recorded first: a file may itself be named `a.xlsx#2.xlsx`; else the workbook behind its #sheet.
    const readable = !remote && ((await exists(manifest.file)) || (await exists(splitSheet(manifest.file).path)));
    if (!readable)
      throw new InputError([
        {
          file: manifest.shown,
          line: 0,
          field: '',
          message: remote
            ? `the last run read this manifest from a URL, which the journal keeps without its path and query: name the manifests yourself with ${instead}`
            : `the last run's manifest is not there any more: name the manifests yourself with ${instead}`,
        },
      ]);
    files.push(manifest.file);
  }
  return files;
}

/**
 * `clipmill retry <manifest>/<id>…`: the named rows that failed are submitted again, against the manifests the folder's
 * last run planned (read again and validated), under the same budget, lock and journal as `run`. A named row in flight
 * or owed is finished from its run; one that is done, or never ran, is left with the reason.
 */
export async function retryRows(rows: string[], options: Omit<RunOptions, 'manifests'>): Promise<RunResult> {
  const pipeline = await resolvePipeline(options, options.env ?? process.env);
  const manifests = await manifestsOfLastRun(outDirOf(pipeline.outputDir), pipeline.provider, rows);
  return runManifests({ ...options, manifests, only: rows, retry: true, retryFailed: true });
}
