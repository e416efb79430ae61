import type { RowState } from './events.js';
import type { Effect, Failure, RowFacts, Rules } from './types.js';
import { TIMEOUT_CODES } from './timeouts.js';

/**
 * What a failure that ends tonight's work on a row means for it (pure). Only the provider's own
 * terminal answer ends a run: a paid video is never written off, an unanswered create is never
 * concluded, a run we cannot read stays in flight, and "try later" is not a verdict.
 */
export function rowErrorEffects(facts: RowFacts, row: RowState | undefined, failure: Failure, nowMs: number, rules: Pick<Rules, 'lostAfterMs'>): Effect[] {
  if (failure.aborted) return []; // the journal already says where the row stands
  if (failure.kind === 'io' || failure.kind === 'fatal' || failure.kind === 'credit') return [{ do: 'stop', reason: 'refused', failure }];
  const { message } = failure;
  if (row?.status === 'succeeded' || row?.status === 'downloaded') {
    return [log('download_failed', `${message}; the video is paid for and a rerun downloads it`)];
  }
  if (row?.status === 'submitting') {
    return [log('submit_unknown', `${message}; the run may exist, so the next run looks it up before any resubmit`)];
  }
  const effects: Effect[] = [];
  const runId = row?.runId;
  if ((row?.status === 'submitted' || row?.status === 'failed') && runId !== undefined && failure.status === 404 && failure.kind !== 'internal') {
    if (row.notFoundSinceMs === undefined) {
      effects.push({ do: 'record', event: { type: 'not_found', runId } });
    } else if (nowMs - row.notFoundSinceMs >= rules.lostAfterMs) {
      const billed = facts.lostRunMayBeBilled;
      const lost = `run ${runId} has been unknown to the provider (404) for ${Math.round((nowMs - row.notFoundSinceMs) / 1000)} s (lost_after): recorded lost${billed ? ', counted as billed' : ''}; ${message}`;
      return [log('row_failed', lost), { do: 'record', event: { type: 'failed', runId, code: 'RUN_LOST', message: lost, attempt: row.attempts, billed } }];
    }
  }
  // A run being re-checked after a deadline (failed, with its run id, on a timeout code) is as alive as a submitted one.
  const recheckingTimeout = row?.status === 'failed' && runId !== undefined && TIMEOUT_CODES.has(row.failure?.code ?? '');
  const isTimeout = failure.kind !== 'internal' && TIMEOUT_CODES.has(failure.code);
  if ((row?.status === 'submitted' || recheckingTimeout) && !isTimeout) {
    return [...effects, log('poll_failed', `${message}; run ${runId} stays recorded in flight and the next run re-attaches to it`)];
  }
  if (failure.kind === 'transient') return [...effects, log('row_deferred', `${message}; left for the next run`)];
  return [
    ...effects,
    log('row_failed', message),
    {
      do: 'record',
      event: {
        type: 'failed',
        code: failure.kind === 'internal' ? 'INTERNAL' : failure.code,
        message,
        attempt: row?.attempts ?? 0,
        billed: false,
        ...(runId !== undefined && { runId }),
      },
    },
  ];
}

function log(event: 'download_failed' | 'submit_unknown' | 'poll_failed' | 'row_deferred' | 'row_failed', message: string): Effect {
  return { do: 'log', level: 'error', event, message };
}
