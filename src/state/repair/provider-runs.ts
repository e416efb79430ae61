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

/**
 * The run to journal as submitted for this row (the latest attempt's, the one to follow), or undefined when
 * the provider has none or the journal already knows one of them or a run for this request.
 */
export function runToRecover(row: ManifestRow, state: RowState | undefined, listed: readonly ListedRun[]): FoundRun | undefined {
  const [run, ...others] = runsForRow(row, listed);
  if (run === undefined) return undefined;
  const known = state?.request === row.request ? state : undefined;
  if (known?.runId !== undefined && [run, ...others].some((r) => r.runId === known.runId)) return undefined;
  if (known && (known.status === 'downloaded' || known.status === 'succeeded' || known.status === 'submitted')) return undefined;
  return { run, others };
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
