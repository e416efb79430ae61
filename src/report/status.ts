import { standingOf, type Standing } from '../lifecycle/standing.js';
import type { RowState } from '../lifecycle/events.js';

const LABELS: Record<Standing, string> = {
  done: 'done',
  damaged: 'done',
  paid: 'to download',
  in_flight: 'in flight',
  unanswered: 'unanswered create',
  new: 'pending',
  timed_out: 'failed',
  failed: 'failed',
};
const ORDER: Standing[] = ['done', 'paid', 'in_flight', 'unanswered', 'new', 'failed'];

/** What `clipmill status` says of a row needing attention, and what the next run does with it. */
function detailOf(s: RowState, standing: Standing): string {
  switch (standing) {
    case 'failed':
    case 'timed_out':
      return `${s.failure?.code}: ${s.failure?.message}`;
    case 'unanswered':
      return `the create got no answer; the next run looks it up by client_ref ${s.clientRef ?? '(none: sent by an older clipmill)'} before any resubmit`;
    case 'paid':
      return `run ${s.runId} succeeded; the next run downloads it`;
    default:
      return `run ${s.runId}; the next run re-attaches to it`;
  }
}

/** Pure: `clipmill status` from the journal alone: per-manifest counts, then every row needing attention. */
export function renderStatus(states: ReadonlyMap<string, RowState>, outDir: string): string {
  if (states.size === 0) return `no runs recorded in ${outDir} yet`;
  const byManifest = new Map<string, Map<string, number>>();
  const attention: { state: RowState; standing: Standing }[] = [];
  for (const state of states.values()) {
    const manifest = state.key.slice(0, state.key.indexOf('/'));
    const standing = standingOf(state);
    const counts = byManifest.get(manifest) ?? new Map<string, number>();
    const label = LABELS[standing];
    counts.set(label, (counts.get(label) ?? 0) + 1);
    byManifest.set(manifest, counts);
    if (standing !== 'done' && standing !== 'new') attention.push({ state, standing });
  }
  const lines = [`journal of ${outDir}:`];
  for (const [manifest, counts] of [...byManifest].sort(([a], [b]) => a.localeCompare(b))) {
    const rows = [...counts.values()].reduce((a, b) => a + b, 0);
    const shown = ORDER.map((s) => LABELS[s])
      .filter((label) => counts.has(label))
      .map((label) => `${counts.get(label)} ${label}`);
    lines.push(`  ${manifest}: ${rows} rows, ${shown.join(', ')}`);
  }
  if (attention.length > 0) lines.push('', 'rows not done:');
  for (const { state, standing } of attention.sort((a, b) => a.state.key.localeCompare(b.state.key))) {
    lines.push(`  ${LABELS[standing].padEnd(17)} ${state.key}  ${detailOf(state, standing)}`);
  }
  return lines.join('\n');
}
