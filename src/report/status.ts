import type { RowState } from '../state/events.js';

const LABELS: Record<RowState['status'], string> = {
  downloaded: 'done',
  succeeded: 'to download',
  submitted: 'in flight',
  submitting: 'unanswered create',
  pending: 'pending',
  failed: 'failed',
};

/** Pure: `clipmill status` from the journal alone: per-manifest counts, then every row needing attention. */
export function renderStatus(states: ReadonlyMap<string, RowState>, outDir: string): string {
  if (states.size === 0) return `no runs recorded in ${outDir} yet`;
  const byManifest = new Map<string, RowState[]>();
  for (const state of states.values()) {
    const manifest = state.key.slice(0, state.key.indexOf('/'));
    byManifest.set(manifest, [...(byManifest.get(manifest) ?? []), state]);
  }
  const order: RowState['status'][] = ['downloaded', 'succeeded', 'submitted', 'submitting', 'pending', 'failed'];
  const lines = [`journal of ${outDir}:`];
  for (const [manifest, rows] of [...byManifest].sort(([a], [b]) => a.localeCompare(b))) {
    const counts = order.map((s) => [s, rows.filter((r) => r.status === s).length] as const).filter(([, n]) => n > 0);
    lines.push(`  ${manifest}: ${rows.length} rows, ${counts.map(([s, n]) => `${n} ${LABELS[s]}`).join(', ')}`);
  }
  const attention = [...states.values()].filter((s) => s.status !== 'downloaded' && s.status !== 'pending').sort((a, b) => a.key.localeCompare(b.key));
  if (attention.length > 0) lines.push('', 'rows not done:');
  for (const s of attention) {
    const detail =
      s.status === 'failed'
        ? `${s.failure?.code}: ${s.failure?.message}`
        : s.status === 'submitting'
          ? `the create got no answer; the next run looks it up by client_ref ${s.clientRef ?? '(none: sent by an older clipmill)'} before any resubmit`
          : s.status === 'succeeded'
            ? `run ${s.runId} succeeded; the next run downloads it`
            : `run ${s.runId}; the next run re-attaches to it`;
    lines.push(`  ${LABELS[s.status].padEnd(17)} ${s.key}  ${detail}`);
  }
  return lines.join('\n');
}
