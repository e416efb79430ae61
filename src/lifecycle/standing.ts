import type { RowState } from './events.js';
import { TIMEOUT_CODES } from './timeouts.js';

/**
 * Where a row stands between nights, read from its journal state: the one reading that the plan
 * (what to do), the report (its status), and `clipmill status` (its label) each translate.
 * - `new`: nothing sent yet, or its last create certainly made nothing;
 * - `unanswered`: a create was sent and its answer lost: it must be looked up before any resubmit;
 * - `in_flight`: a run exists at the provider;
 * - `paid`: generated and paid for, its video not downloaded yet;
 * - `done` / `damaged`: downloaded, and the file is intact / missing or changed since;
 * - `timed_out`: failed on our deadline with a run that may still finish (and be billed): re-checked first;
 * - `failed`: failed for good.
 */
export type Standing = 'new' | 'unanswered' | 'in_flight' | 'paid' | 'done' | 'damaged' | 'timed_out' | 'failed';

export function standingOf(state: RowState | undefined, outputIntact = true): Standing {
  switch (state?.status) {
    case undefined:
    case 'pending':
      return 'new';
    case 'submitting':
      return 'unanswered';
    case 'submitted':
      return 'in_flight';
    case 'succeeded':
      return 'paid';
    case 'downloaded':
      return outputIntact ? 'done' : 'damaged';
    case 'failed':
      return state.runId !== undefined && TIMEOUT_CODES.has(state.failure?.code ?? '') ? 'timed_out' : 'failed';
  }
}
