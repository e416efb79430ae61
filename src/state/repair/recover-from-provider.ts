import path from 'node:path';
import type { ListedRun } from '../../providers/provider.js';
import { Journal } from '../journal.js';
import { acquireLock } from '../lock.js';
import type { Replay } from '../replay.js';
import { describeFoundRun, describeLeftRun, runToRecover, type ManifestRow } from './provider-runs.js';

export interface ProviderRecovery {
  /** What `clipmill repair <manifests>…` prints about the provider's runs. */
  lines: string[];
  /** Row keys journaled as submitted to a run found at the provider. */
  recovered: string[];
  /** Other runs that carry a recovered row's client_ref (they may have been billed too). */
  extra: ListedRun[];
}

/** Journals each row's found run as submitted, in the journal already open. */
async function journalFoundRuns(journal: Journal, rows: readonly ManifestRow[], listed: readonly ListedRun[]): Promise<ProviderRecovery> {
  const found: ProviderRecovery = { lines: [], recovered: [], extra: [] };
  for (const row of rows) {
    const state = journal.states.get(row.key);
    const recovery = runToRecover(row, state, listed);
    if (!recovery) continue;
    if (recovery.kind === 'left') {
      found.lines.push(describeLeftRun(row.key, recovery.run, recovery.state));
      continue;
    }
    await journal.append({ type: 'submitted', key: row.key, request: row.request, runId: recovery.run.runId });
    found.recovered.push(row.key);
    found.extra.push(...recovery.others);
    found.lines.push(...describeFoundRun(row.key, recovery));
  }
  return found;
}

/**
 * `clipmill repair <manifests>…` on Runflow: runs the provider made for these rows (found by their client_ref
 * prefix, row key and request hash, in its run list) that the journal no longer knows are journaled as
 * submitted, so the next run re-attaches to them and downloads their videos instead of paying again.
 * `rowsOf` gives the rows from the journal read under the lock: a run since the list was read may have moved one.
 */
export async function recoverFromProvider(
  outDirArg: string,
  rowsOf: (replay: Replay) => readonly ManifestRow[],
  listed: readonly ListedRun[],
): Promise<ProviderRecovery> {
  const outDir = path.resolve(outDirArg);
  let found: ProviderRecovery;
  const lock = await acquireLock(outDir);
  try {
    const journal = await Journal.open(outDir);
    try {
      found = await journalFoundRuns(journal, rowsOf(journal.replay), listed);
    } finally {
      await journal.close();
    }
  } finally {
    await lock.release();
  }
  const count = found.recovered.length;
  return { ...found, lines: [`found at the provider by client_ref: ${count} row${count === 1 ? '' : 's'}`, ...found.lines] };
}
