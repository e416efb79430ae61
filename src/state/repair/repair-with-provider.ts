import path from 'node:path';
import { RateGate } from '../../execute/rate-gate.js';
import { ApiError } from '../../infra/errors.js';
import { HttpClient } from '../../infra/http.js';
import { loadValidated } from '../../load/validate.js';
import { requestHash, rowKey } from '../../plan/plan.js';
import { readReview, reviewedManifests } from '../../review/notes.js';
import type { Replay } from '../replay.js';
import { configuredHosts, openProvider, pipelineForProvider } from '../../providers/index.js';
import type { ListedRun } from '../../providers/provider.js';
import type { ManifestRow } from './provider-runs.js';
import { recoverFromProvider } from './recover-from-provider.js';
import { repairFolder } from './repair-folder.js';
import { REPAIR_EXIT } from './result.js';

export interface RepairWithProviderOptions {
  manifests: string[];
  pipelineFile?: string;
  outDir?: string;
  env?: NodeJS.ProcessEnv;
  sinceMs: number;
}

/** The exit code once the provider was asked: an empty folder is repaired when the provider knew some of its rows' runs. */
export function exitAfterProvider(localExitCode: number, recoveredCount: number): number {
  if (localExitCode !== REPAIR_EXIT.nothingHere) return localExitCode;
  return recoveredCount > 0 ? REPAIR_EXIT.ok : REPAIR_EXIT.nothingHere;
}

/** The exit code when the provider keeps no run list: what the disk could not prove stays unknown. */
export function exitWithoutRunList(localExitCode: number): number {
  return localExitCode === REPAIR_EXIT.ok ? REPAIR_EXIT.lost : localExitCode;
}

/**
 * `clipmill repair <manifests>…`: after what the disk proves, what the provider knows. The manifests say
 * which rows and requests to look for; the provider's run list (Runflow; fal keeps none) says which runs exist.
 */
export async function repairWithProvider(o: RepairWithProviderOptions): Promise<{ exitCode: number; lines: string[] }> {
  const env = o.env ?? process.env;
  const pipeline = await pipelineForProvider(o, env);
  const loaded = await loadValidated(o.manifests, pipeline);
  const review = await readReview(path.resolve(pipeline.outputDir));
  const local = await repairFolder(pipeline.outputDir);
  if (local.exitCode === REPAIR_EXIT.nothingHere) local.lines.pop(); // the provider may still know runs for an empty folder
  // The rows as a run would plan them (review notes applied), from the journal read under the folder's lock once the
  // provider has answered: from an earlier reading, a redone row's original run could be journaled over its new one.
  const rowsOf = (replay: Replay): ManifestRow[] =>
    reviewedManifests(loaded, review, replay).manifests.flatMap((m) => m.rows.map((row) => ({ key: rowKey(row), request: requestHash(row, loaded.images) })));
  const http = new HttpClient({ connections: 4, allowedHosts: configuredHosts(pipeline, env) });
  const handle = await openProvider(pipeline, env, http, new RateGate(pipeline.requestsPerMinute));
  try {
    let listed: ListedRun[];
    try {
      listed = await handle.provider.listRunsSince(o.sinceMs, AbortSignal.timeout(10 * 60_000));
    } catch (error) {
      if (error instanceof ApiError && error.code === 'NO_RUN_LIST')
        return { exitCode: exitWithoutRunList(local.exitCode), lines: [...local.lines, `cannot look runs up at the provider: ${error.message}`] };
      throw error;
    }
    const found = await recoverFromProvider(pipeline.outputDir, rowsOf, listed);
    const exitCode = exitAfterProvider(local.exitCode, found.recovered.length);
    return { exitCode, lines: [...local.lines.filter((l) => !/^\(exit \d+\)$/.test(l)), ...found.lines, `(exit ${exitCode})`] };
  } finally {
    await handle.close();
    await http.close();
  }
}
