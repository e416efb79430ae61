import { clientRefPrefix } from '../../lifecycle/client-ref.js';
import type { ListedRun } from '../../providers/provider.js';
import type { RowState } from '../../lifecycle/events.js';

/** A row that manifests name: its key and request hash. */
export interface ManifestRow {
  key: string;
  request: string;
}

/** A run the provider made for a row that the journal does not know, and any other runs carrying the row's client_ref. */
export interface FoundRun {
  run: ListedRun;
  others: ListedRun[];
}

const ENDED_WITHOUT_VIDEO = ['failed', 'canceled', 'cancelled'];

/** The runs listed for this row's request (by client_ref prefix) that may have made a video, newest first as the list answers. */
export function runsForRow(row: ManifestRow, listed: readonly ListedRun[]): ListedRun[] {
  const prefix = `${clientRefPrefix(row.key, row.request)}-a`;
  return listed.filter((run) => run.clientRef?.startsWith(prefix) && !ENDED_WITHOUT_VIDEO.includes(run.status));
}

/** What to do with a row's runs found at the provider: journal the latest (`found`), or leave it, as the journal's state may be newer (`left`). */
export type Recovery = ({ kind: 'found' } & FoundRun) | { kind: 'left'; run: ListedRun; state: RowState };

/** Pure: when this folder last acted on a state's version: its last create sent, or its video saved; undefined when the state cannot say. */
function lastActedMs(state: RowState): number | undefined {
  const times = [state.submittingAtMs, state.output?.mtimeMs].filter((time): time is number => time !== undefined);
  return times.length === 0 ? undefined : Math.max(...times);
}

/**
 * Pure: a state at another version that a found run must not be journaled over: it has a run, or a create whose run
 * may exist, and is not known to be older than the found run (a run since the list was read may have put it there).
 * An older one (an edited row's earlier video, rebuilt from its sidecar) is replaced, as the next run would replace it.
 */
export function mayBeNewer(state: RowState | undefined, request: string, run: ListedRun): state is RowState {
  if (state === undefined || state.request === request) return false;
  if (state.runId === undefined && state.status !== 'submitting' && (state.clientRefs?.length ?? 0) === 0) return false;
  const acted = lastActedMs(state);
  const created = run.createdAt === undefined ? Number.NaN : Date.parse(run.createdAt);
  return acted === undefined || Number.isNaN(created) || created <= acted;
}

/**
 * What to do with this row's runs at the provider: the one to journal as submitted (the latest attempt's, the one
 * to follow); `left` when the journal is at another version that may be newer; undefined when the provider has
 * none, or the journal already knows one of them or a run for this request.
 */
export function runToRecover(row: ManifestRow, state: RowState | undefined, listed: readonly ListedRun[]): Recovery | undefined {
  const [run, ...others] = runsForRow(row, listed);
  if (run === undefined) return undefined;
  const known = state?.request === row.request ? state : undefined;
  if (known?.runId !== undefined && [run, ...others].some((r) => r.runId === known.runId)) return undefined;
  if (known && (known.status === 'downloaded' || known.status === 'succeeded' || known.status === 'submitted')) return undefined;
  if (mayBeNewer(state, row.request, run)) return { kind: 'left', run, state };
  return { kind: 'found', run, others };
}

/** What `clipmill repair <manifests>…` prints for a row whose found run was left: the journal is at another version. */
export function describeLeftRun(key: string, run: ListedRun, state: RowState): string {
  const what = state.runId === undefined ? 'an unanswered create' : `run ${state.runId}`;
  return `  ${key}: run ${run.runId} (${run.status}, client_ref ${run.clientRef}) found at the provider is left as it is: the journal has this row at another version (request ${state.request}, ${state.status}, with ${what}) that may be newer (see clipmill audit)`;
}

/** What `clipmill repair <manifests>…` prints for one row whose run was found at the provider. */
export function describeFoundRun(key: string, found: FoundRun): string[] {
  return [
    `  ${key}: run ${found.run.runId} (${found.run.status}, client_ref ${found.run.clientRef}) found at the provider: the next run re-attaches to it`,
    ...found.others.map(
      (other) => `  ${key}: another run ${other.runId} (${other.status}) carries this row's client_ref: it may have been billed too (see clipmill audit)`,
    ),
  ];
}
