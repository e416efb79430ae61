import { Journal } from '../state/journal.js';
import { acquireLock } from '../state/lock.js';
import { InputError } from '../load/problem.js';

export interface Forgotten {
  key: string;
  previousStatus: string;
  runId: string | undefined;
}

/**
 * `clipmill forget <manifest>/<id> --reason TEXT`: gives a stuck row (a run the provider no longer knows,
 * a create nobody can look up) a way out. Journaled as a failure with the reason, so the next run leaves it
 * alone unless `--retry-failed`; a paid run keeps its cost in the ledger.
 */
export async function forgetRow(outDir: string, key: string, reason: string): Promise<Forgotten> {
  const problem = (message: string) => new InputError([{ file: key, line: 0, field: '', message }]);
  if (!reason.trim()) throw problem('--reason is required: say why the row is given up (it is kept in the journal)');
  const lock = await acquireLock(outDir);
  try {
    const journal = await Journal.open(outDir);
    try {
      const state = journal.states.get(key);
      if (!state) throw problem(`no row ${key} in the journal of ${outDir} (rows are <manifest>/<id>, as clipmill status shows them)`);
      if (state.status === 'downloaded') throw problem(`${key} is done: its video is downloaded, there is nothing to forget`);
      if (state.status === 'pending' || (state.status === 'failed' && state.failure?.code === 'FORGOTTEN'))
        throw problem(`${key} has nothing in flight to forget`);
      // A run the provider still knows is alive (and may be billed): the next run re-attaches to it. Only a 404 makes it forgettable.
      const alive =
        state.status === 'submitted' ||
        (state.status === 'failed' && state.runId !== undefined && ['JOB_TIMEOUT', 'QUEUE_TIMEOUT'].includes(state.failure?.code ?? ''));
      if (alive && state.notFoundSinceMs === undefined)
        throw problem(
          `${key}: run ${state.runId} is in flight at the provider; the next run re-attaches to it (a run the provider answers 404 for can be forgotten, and is recorded lost after lost_after)`,
        );
      const paid = state.status === 'succeeded';
      await journal.append({
        type: 'failed',
        key,
        request: state.request,
        code: 'FORGOTTEN',
        message: `given up by hand: ${reason.trim()}`,
        attempt: state.attempts,
        billed: paid,
        ...(state.runId !== undefined && { runId: state.runId }),
        ...(paid && state.costMicros !== undefined && { costMicros: state.costMicros }),
      });
      return { key, previousStatus: state.status, runId: state.runId };
    } finally {
      await journal.close();
    }
  } finally {
    await lock.release();
  }
}
