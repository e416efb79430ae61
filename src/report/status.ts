import { formatUsd, usdToMicros } from '../money/cost.js';
import { resolveSettings } from '../state/lock/options.js';
import type { Standing } from '../lifecycle/standing.js';
import { LABELS, type Status, type StatusLock, type StatusRow } from './status-model.js';

/** How long a run watches another host's lock stand still before taking it over (lock/options.ts). */
const STALE_SECONDS = resolveSettings({}).staleMs / 1000;

/** Up to this many rows, status lists every row without being asked (`--rows`); past it, counts and rows needing attention. */
export const ROWS_SHOWN = 50;

const ORDER: Standing[] = ['done', 'damaged', 'paid', 'in_flight', 'unanswered', 'new', 'failed', 'timed_out'];

function money(usd: number): string {
  return formatUsd(usdToMicros(usd));
}

function plural(n: number): string {
  return n === 1 ? '' : 's';
}

/** Pure: "45s", "3m02s", "2h05m", "3d04h". */
export function ageText(seconds: number): string {
  const two = (n: number) => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${two(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${two(Math.floor((seconds % 3600) / 60))}m`;
  return `${Math.floor(seconds / 86_400)}d${two(Math.floor((seconds % 86_400) / 3600))}h`;
}

/** Pure: the lock line: who holds the folder, since when, its last heartbeat, and whether it still runs. */
export function lockLine(lock: StatusLock): string {
  if (!lock.held) return 'lock: no run holds this folder';
  const beat =
    lock.heartbeat_age_seconds === null
      ? `last heartbeat at ${lock.heartbeat_at} by its clock`
      : `last heartbeat ${ageText(lock.heartbeat_age_seconds)} ago (${lock.heartbeat_at})`;
  if (lock.pid === null) return `lock: a lock file is there but cannot be read (being written, or damaged); ${beat}`;
  const holder = `lock: held by pid ${lock.pid} on ${lock.host}, since ${lock.started_at}; ${beat}`;
  if (lock.judged_by === 'process')
    return lock.alive ? `${holder}; alive (its process runs on this host)` : `${holder}; gone (its process no longer runs: the next run takes the lock over)`;
  if (lock.judged_by === 'watch')
    return lock.alive
      ? `${holder}; alive (on another host: its heartbeat moved while status watched it for ${lock.watched_seconds} s)`
      : `${holder}; unknown (on another host, clocks may differ: its heartbeat did not move in the ${lock.watched_seconds} s status watched it; it may have stopped or be paused. A run takes the lock over only after watching it stand still ${STALE_SECONDS} s: do not delete it by hand)`;
  return lock.alive
    ? `${holder}; alive by its heartbeat (an older lock: no process start time recorded)`
    : `${holder}; probably gone (its heartbeat stopped on this host's clock: the next run takes the lock over)`;
}

function sourceText(status: Status): string {
  switch (status.source) {
    case 'manifests':
      return status.fleet === null ? 'rows of the manifests named' : "rows of the manifests named, as the fleet's journal knows them";
    case 'last_plan':
      return `rows of the last run's plan (started ${status.session}), and any other row the journal knows`;
    case 'fleet':
      return status.session === null
        ? "rows the fleet's journal knows (no plan recorded)"
        : `rows of the fleet's last plan (enqueued ${status.session}), and any other row its journal knows`;
    default:
      return 'rows the journal knows (no plan recorded)';
  }
}

function titleOf(status: Status): string {
  return status.fleet === null ? `status of ${status.out}` : `status of fleet "${status.fleet}" (its journal in Redis; videos in ${status.out})`;
}

/** Which run "tonight" is (a morning `retry` is one too), and the budget period's figure beside it. */
function tonightText(m: Status['money']): string {
  const t = m.tonight;
  const period =
    m.period === 'run' ? '' : `; ${money(m.spent_in_period_usd)} ${m.period === 'folder' ? 'in this folder' : `in the last ${m.period}`} (budget_period)`;
  switch (t.by) {
    case null:
      return 'no run recorded yet';
    case 'unplanned':
      return `the run holding the folder (started ${t.started_at}) has not recorded its plan yet: it has sent nothing${period}`;
    case 'enqueue':
      return `billed runs created since the fleet's last enqueue, at ${t.started_at}${period}`;
    case 'run': {
      const alone = (t.rows_left_alone ?? 0) > 0 ? `, ${t.rows_left_alone} left alone by --only or retry` : '';
      return `billed runs created since the last run started, at ${t.started_at} (clipmill run, or run --only/retry: it worked on ${t.rows_worked} of its ${t.rows} rows${alone})${period}`;
    }
  }
}

function moneyLines(status: Status): string[] {
  const m = status.money;
  const unpriced =
    m.unpriced_rows > 0
      ? `; ${m.unpriced_rows} row${plural(m.unpriced_rows)} held at $0: no recorded plan prices ${m.unpriced_rows === 1 ? 'it' : 'them'}`
      : '';
  const held =
    status.source === 'fleet'
      ? `${m.reserved_runs} row${plural(m.reserved_runs)} with a reservation open in the fleet's budget (Redis)`
      : `${m.reserved_runs} run${plural(m.reserved_runs)} in flight or timed out, at what the budget reserves for each (run counts them before any new row)${unpriced}`;
  const lines = [
    'money:',
    `  spent tonight  ${money(m.spent_tonight_usd).padEnd(10)} ${tonightText(m)}`,
    `  spent in all   ${money(m.spent_total_usd).padEnd(10)} ${m.billed_runs} billed run${plural(m.billed_runs)}, as ledger.csv lists them`,
    `  reserved       ${money(m.reserved_usd).padEnd(10)} ${held}`,
  ];
  if (m.unanswered_creates > 0)
    lines.push(
      `  unanswered     ${money(m.unanswered_usd).padEnd(10)} ${m.unanswered_creates} create${plural(m.unanswered_creates)} with no answer, at ${m.unanswered_creates === 1 ? 'its estimate' : 'their estimates'}: looked up before any new row`,
    );
  const b = m.budget;
  if (b) lines.push(budgetLine(b, m));
  else if (status.source === 'fleet') lines.push("  budget         none set for this fleet (the enqueuer's budget_usd)");
  else lines.push('  budget         none set (budget_usd in the pipeline file: give it with --pipeline)');
  return lines;
}

function signed(usd: number): string {
  return usd >= 0 ? money(usd) : `-${money(-usd)}`;
}

/** What is left of the budget and how it is counted: as the next run counts it, or as the fleet's workers do. */
function budgetLine(b: NonNullable<Status['money']['budget']>, m: Status['money']): string {
  const reserved = `${money(m.reserved_usd)} reserved`;
  const spent =
    b.counted_by === 'fleet'
      ? `${money(b.spent_in_period_usd)} spent, ${reserved}, as the fleet's budget in Redis counts them (the period as its last enqueue counted it)`
      : b.period === 'run'
        ? `budget_period run: a run counts only what it spends itself, so the next run starts from the whole limit less ${reserved}`
        : `${money(b.spent_in_period_usd)} spent in its period (${b.period}), ${reserved}`;
  const forNew = m.unanswered_creates > 0 ? `; ${signed(b.left_for_new_usd)} for new rows once the unanswered creates are counted` : '';
  return `  budget left    ${signed(b.left_usd).padEnd(10)} of ${money(b.limit_usd)}: ${spent}${forNew}`;
}

function countLines(status: Status): string[] {
  return status.manifests.map((m) => {
    const byLabel = new Map<string, number>();
    for (const standing of ORDER) if (m.counts[standing] > 0) byLabel.set(LABELS[standing], (byLabel.get(LABELS[standing]) ?? 0) + m.counts[standing]);
    return `  ${m.name}: ${m.rows} rows, ${[...byLabel].map(([label, n]) => `${n} ${label}`).join(', ')}`;
  });
}

function costText(row: StatusRow): string {
  if (row.cost_source === 'not_billed') return 'not billed';
  if (row.cost_usd !== null) return `${money(row.cost_usd)}${row.cost_source === 'estimate' ? ' (estimated)' : ''}`;
  return row.estimated_usd === null ? '-' : `est. ${money(row.estimated_usd)}`;
}

/** The longest key: a reduce, since spreading 125,000 rows into Math.max overflows the call stack. */
function widest(rows: readonly StatusRow[]): number {
  return rows.reduce((width, row) => Math.max(width, row.key.length), 0);
}

function needsAttention(row: StatusRow): boolean {
  return row.state !== 'done' && row.state !== 'new';
}

function attentionLines(rows: readonly StatusRow[], all: boolean): string[] {
  const attention = rows.filter(needsAttention);
  if (attention.length === 0) return [];
  const shown = all ? attention : attention.slice(0, ROWS_SHOWN);
  const lines = ['', 'rows not done:'];
  const keyWidth = widest(shown);
  for (const row of shown) {
    const age = row.age_seconds === null ? '' : ` (${ageText(row.age_seconds)} ago)`;
    lines.push(`  ${row.label.padEnd(17)} ${row.key.padEnd(keyWidth)}  ${row.detail}${age}`);
  }
  if (shown.length < attention.length) lines.push(`  … and ${attention.length - shown.length} more (--rows lists them all, --json too)`);
  return lines;
}

function everyRowLines(rows: readonly StatusRow[]): string[] {
  const keyWidth = widest(rows);
  const lines = ['', 'every row:'];
  for (const row of rows) {
    const age = row.age_seconds === null ? '-' : `${ageText(row.age_seconds)} ago`;
    lines.push(`  ${row.key.padEnd(keyWidth)}  ${row.label.padEnd(17)} ${(row.run_id ?? '-').padEnd(36)}  ${age.padEnd(11)} ${costText(row)}`);
  }
  return lines;
}

/** Pure: `clipmill status` as text: lock, money, counts per manifest, rows not done, then (when few, or `--rows`) every row. */
export function renderStatus(status: Status, options: { allRows?: boolean } = {}): string {
  const lock = status.lock === null ? [] : [lockLine(status.lock)];
  if (status.rows.length === 0) return [`no runs recorded in ${status.fleet === null ? status.out : `fleet "${status.fleet}"`} yet`, ...lock].join('\n');
  const all = options.allRows === true;
  const head = [`${titleOf(status)}: ${sourceText(status)}`, ...lock, ...moneyLines(status), '', ...countLines(status)];
  // Joined, never spread into push(): 125,000 rows as arguments overflow the call stack.
  const every =
    all || status.rows.length <= ROWS_SHOWN ? everyRowLines(status.rows) : ['', `${status.rows.length} rows: --rows lists every row, --json has them all`];
  return [head, attentionLines(status.rows, all), every]
    .map((part) => part.join('\n'))
    .filter((part) => part !== '')
    .join('\n');
}
