import type { Pipeline } from '../config/pipeline.js';
import { loadManifests, type LoadedManifests } from './load.js';
import { InputError, sortProblems, type Problem } from './problem.js';
import { isOtherSpreadsheet } from './source.js';

/**
 * Loads and validates manifests against the pipeline; every problem found, or InputError. With
 * `skipInvalid`, manifests with problems are set aside (and returned) instead, as long as every problem
 * belongs to one manifest: a bad pipeline default still stops the night. `signal` (Ctrl-C) stops a manifest's download.
 */
export async function loadValidated(
  manifestArgs: string[],
  pipeline: Pipeline,
  skipInvalid = false,
  signal?: AbortSignal,
): Promise<LoadedManifests & { skipped: Problem[] }> {
  const loaded = await loadManifests(manifestArgs, pipeline, signal ? { signal } : {});
  if (loaded.problems.length === 0) return { ...loaded, skipped: [] };
  const manifestFiles = new Set(loaded.manifests.map((m) => m.shown));
  const ownedByOneManifest = (p: Problem) => manifestFiles.has(p.file) || manifestArgs.includes(p.file) || isOtherSpreadsheet(p.file);
  if (!skipInvalid || !loaded.problems.every(ownedByOneManifest)) throw new InputError(loaded.problems);
  const invalid = new Set(loaded.problems.map((p) => p.file));
  const manifests = loaded.manifests.filter((m) => !invalid.has(m.shown));
  if (manifests.length === 0) throw new InputError(loaded.problems, 'every manifest has problems');
  return { ...loaded, manifests, problems: [], skipped: sortProblems(loaded.problems) };
}
