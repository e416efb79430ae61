import path from 'node:path';
import { formatUsd, usdToMicros } from '../money/cost.js';
import type { StopReason } from '../execute/stop-reason.js';
import { EXIT } from '../infra/exit.js';

export { EXIT, type ExitName } from '../infra/exit.js';
import type { Report } from './build.js';

export interface Outcome {
  exitCode: number;
  /** The one line that says why the run ended as it did, and what to do. */
  reason: string;
}

/** Pure: how the run ends, in the order that matters to whoever reads the exit code at 3 a.m. */
export function decideOutcome(o: {
  report: Report;
  aborted: boolean;
  stopped: StopReason | undefined;
  overBudget: number;
  skippedManifests: string[];
}): Outcome {
  const t = o.report.totals;
  if (o.aborted)
    return { exitCode: EXIT.interrupted, reason: 'interrupted: run the same command again to resume (runs in flight are re-attached, nothing is paid twice)' };
  if (o.stopped) {
    // Out of money stops with 3; the provider refusing us or a disk we cannot write is the setup to fix: 2.
    const exitCode = o.stopped.kind === 'credit' || o.stopped.kind === 'budget' ? EXIT.stopped : EXIT.invalid;
    return { exitCode, reason: `stopped: ${o.stopped.message}` };
  }
  if (o.overBudget > 0)
    return {
      exitCode: EXIT.stopped,
      reason: `${o.overBudget} rows did not fit the budget and were not submitted: raise the budget (or wait for its period to pass) and run again to do them`,
    };
  if (o.skippedManifests.length > 0)
    return { exitCode: EXIT.invalid, reason: `skipped invalid manifests (fix them and run again): ${o.skippedManifests.join(', ')}` };
  if (t.done === t.rows) return { exitCode: EXIT.ok, reason: 'all rows done' };
  if (t.owed > 0)
    return {
      exitCode: EXIT.rowsFailed,
      reason: `${t.owed} paid videos are owed (generated and billed, not on disk): run again to download them from the same runs, nothing is paid twice; ${t.rows - t.done - t.owed} other rows not done`,
    };
  return {
    exitCode: EXIT.rowsFailed,
    reason: `${t.rows - t.done} rows not done: see the report; a rerun resumes unfinished rows (--retry-failed resubmits failed ones)`,
  };
}

function wallTime(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 3600
    ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
      : `${s}s`;
}

/** Pure: the end-of-run summary on stdout: counts, money, wall time, reports, each failed row, the exit code. */
export function renderSummary(report: Report, files: readonly string[], outcome: Outcome, wallMs: number, cwd: string): string[] {
  const t = report.totals;
  const m = report.money;
  const lines = [
    `${t.done} of ${t.rows} videos done, ${t.failed} failed, ${t.skipped} skipped${t.owed ? `, ${t.owed} paid but owed` : ''}${t.in_flight ? `, ${t.in_flight} in flight` : ''} in ${wallTime(wallMs)}`,
    `cost ${formatUsd(usdToMicros(t.actual_usd))}: ${formatUsd(usdToMicros(m.this_run_usd))} this run, ${formatUsd(usdToMicros(m.earlier_runs_usd))} earlier (estimated ${formatUsd(usdToMicros(t.estimated_usd))} for all rows)`,
  ];
  for (const row of report.rows.filter((r) => r.status === 'failed' || r.status === 'unknown' || r.status === 'owed'))
    lines.push(`  ${row.status}: ${row.file}:${row.line} ${row.manifest}/${row.id}: ${row.error}`);
  for (const row of report.rows.filter((r) => r.cost_alert))
    lines.push(
      `  cost alert: ${row.manifest}/${row.id} was billed ${formatUsd(usdToMicros(row.actual_usd ?? 0))} against an estimate of ${formatUsd(usdToMicros(row.estimated_usd))}`,
    );
  if (m.billed_usd !== t.actual_usd)
    lines.push(
      `billed in this folder: ${formatUsd(usdToMicros(m.billed_usd))} over ${report.billed_runs.length} runs (ledger.csv), including ${formatUsd(usdToMicros(m.superseded_usd))} for earlier versions of edited rows`,
    );
  lines.push(`reports: ${files.map((f) => path.relative(cwd, f) || f).join(', ')}`);
  lines.push(`${outcome.reason} (exit ${outcome.exitCode})`);
  return lines;
}
