import { formatUsd, usdToMicros } from '../money/cost.js';
import type { LedgerRow, Report, ReportRow } from './build.js';

/**
 * Pure: the report as `JSON.stringify(report, null, 2)` writes it, in pieces: a top-level list is written
 * element by element, so 100,000 rows are never one string.
 */
export function* renderJson(report: Report): Generator<string> {
  const entries = Object.entries(report);
  yield '{';
  for (const [i, [key, value]] of entries.entries()) {
    yield `${i === 0 ? '' : ','}\n  ${JSON.stringify(key)}: `;
    if (Array.isArray(value) && value.length > 0) {
      for (const [j, element] of (value as unknown[]).entries()) yield `${j === 0 ? '[' : ','}\n    ${indented(element, '    ')}`;
      yield '\n  ]';
    } else yield indented(value, '  ');
  }
  yield '\n}\n';
}

const indented = (value: unknown, by: string) => JSON.stringify(value, null, 2).replace(/\n/g, `\n${by}`);

const CSV_COLUMNS: (keyof ReportRow)[] = [
  'manifest',
  'id',
  'file',
  'line',
  'status',
  'duration',
  'generate_audio',
  'audio_mode',
  'estimated_usd',
  'provider_usd',
  'actual_usd',
  'cost_source',
  'billed',
  'spent_in',
  'attempts',
  'run_id',
  'output',
  'bytes',
  'sha256',
  'video_seconds',
  'changed',
  'cost_alert',
  'prompt',
  'error',
];

const LEDGER_COLUMNS: (keyof LedgerRow)[] = [
  'run_id',
  'created_at',
  'night',
  'manifest',
  'id',
  'request',
  'seconds',
  'audio_mode',
  'cost_usd',
  'cost_source',
  'estimated_usd',
  'superseded',
];

/** Spreadsheets run cells starting with = + - @ (or tab/CR) as formulas: prefix a quote so they stay text. */
export function neutraliseCell(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  // Report cells are text, numbers and booleans; anything else is written as JSON, never as [object Object].
  const text =
    typeof value === 'number' || typeof value === 'boolean' ? String(value) : neutraliseCell(typeof value === 'string' ? value : JSON.stringify(value));
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function* csvOf<T>(columns: readonly (keyof T)[], rows: readonly T[]): Generator<string> {
  // CRLF and a BOM: what Excel expects to open UTF-8 text correctly.
  yield `\uFEFF${columns.join(',')}\r\n`;
  for (const row of rows) yield `${columns.map((c) => csvCell(row[c])).join(',')}\r\n`;
}

export function renderCsv(report: Report): Generator<string> {
  return csvOf(CSV_COLUMNS, report.rows);
}

/** One line per billed run, to match against the provider's invoice line by line. */
export function renderLedgerCsv(report: Report): Generator<string> {
  return csvOf(LEDGER_COLUMNS, report.billed_runs);
}

const money = (dollars: number) => formatUsd(usdToMicros(dollars));
const escapeMd = (text: string) => text.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

/** A short summary a person can paste into a chat. */
export function renderMarkdown(report: Report): string {
  const t = report.totals;
  const out = [
    `# clipmill report`,
    '',
    `${t.done} of ${t.rows} videos done, ${t.failed} failed, ${t.skipped} skipped${t.owed > 0 ? `, ${t.owed} paid but owed (not downloaded)` : ''}${t.in_flight > 0 ? `, ${t.in_flight} still in flight` : ''}. ` +
      `Cost ${money(t.actual_usd)}: ${money(report.money.this_run_usd)} this run, ${money(report.money.earlier_runs_usd)} in earlier runs ` +
      `(estimated ${money(t.estimated_usd)} for all rows), ${t.seconds} s of video, provider ${report.provider}. ` +
      `Billed runs in this folder: ${report.billed_runs.length}, ${money(report.money.billed_usd)}${report.money.superseded_usd > 0 ? ` (of which ${money(report.money.superseded_usd)} for earlier versions of edited rows)` : ''}: see ledger.csv.`,
    '',
    '| manifest | rows | done | failed | skipped | seconds | estimated | actual |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...report.manifests.map(
      (m) => `| ${escapeMd(m.name)} | ${m.rows} | ${m.done} | ${m.failed} | ${m.skipped} | ${m.seconds} | ${money(m.estimated_usd)} | ${money(m.actual_usd)} |`,
    ),
    '',
    '| audio | rows | seconds | estimated | actual |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...(['silent', 'audio', 'voice'] as const)
      .filter((mode) => report.money.by_audio_mode[mode].rows > 0)
      .map((mode) => {
        const m = report.money.by_audio_mode[mode];
        return `| ${mode} | ${m.rows} | ${m.seconds} | ${money(m.estimated_usd)} | ${money(m.actual_usd)} |`;
      }),
  ];
  const failed = report.rows.filter((r) => r.status === 'failed' || r.status === 'unknown' || r.status === 'owed' || r.cost_alert);
  if (failed.length > 0) {
    out.push('', '## Needs attention', '');
    for (const r of failed)
      out.push(
        `- \`${r.manifest}/${r.id}\` (${r.file}:${r.line}): ${r.status}${r.cost_alert ? `, billed ${money(r.actual_usd ?? 0)} against an estimate of ${money(r.estimated_usd)}` : ''}${r.error ? `: ${escapeMd(r.error)}` : ''}`,
      );
  }
  out.push('', `_Generated ${report.generated_at}._`, '');
  return out.join('\n');
}
