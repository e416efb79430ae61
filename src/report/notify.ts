import { request } from 'undici';
import { redactText } from '../infra/http.js';
import { linkedSignal } from '../infra/signals.js';
import { formatUsd, usdToMicros } from '../money/cost.js';
import type { Logger } from '../infra/log.js';
import type { Report, ReportRow } from './build.js';
import { slackNotice, STATUS_WORDS, type NoticeRow, type SlackNotice } from './notice-slack.js';
import { chatSafe, clipSafe, discordSafe } from './notice-text.js';

export type { NoticeRow } from './notice-slack.js';
import type { Outcome } from './summary.js';

/** Rows a notice names; the rest are counted ("and N more"). */
export const NOTICE_ROWS = 10;
/** A row's reason is cut here: ten of them stay within Discord's 2000 characters and a Slack block's 3000. */
const REASON_CHARS = 150;
/** Discord refuses a `content` longer than this. */
const DISCORD_CHARS = 2000;

/**
 * A JSON body chat tools accept as it is: `text` (Slack, Teams, Mattermost, Google Chat), `content` (Discord), plus
 * the figures. Row ids, paths and reasons come from manifests and providers: escaped and defused in `text` and
 * `content`, and Discord told to ping nobody (`allowed_mentions`); `clipmill.attention` keeps them as they are.
 */
export interface Notice {
  text: string;
  content: string;
  allowed_mentions: { parse: string[] };
  clipmill: {
    exit_code: number;
    rows: number;
    done: number;
    failed: number;
    owed: number;
    skipped: number;
    in_flight: number;
    /** The rows' current versions (the report's totals). */
    actual_usd: number;
    this_run_usd: number;
    /** Every run billed in the folder, earlier versions of edited rows too: the report's `billed_usd`, status's "spent in all". */
    billed_usd: number;
    estimated_usd: number;
    /** The report's link: `<notify.public_url>report.html`, else its path on this machine. */
    report: string;
    /** The first NOTICE_ROWS rows needing attention, and how many more there are. */
    attention: NoticeRow[];
    attention_more: number;
  };
}

/** What a notice is shaped by: the pipeline's `notify` settings. */
export interface NoticeSettings {
  readonly notifyPublicUrl?: string | undefined;
  readonly notifyFormat?: 'generic' | 'slack';
}

/** A row's reason when the report gives none. */
const NO_REASON: Record<NoticeRow['status'], string> = {
  failed: 'failed (no reason recorded)',
  owed: 'generated and paid for, not downloaded yet: the next run downloads it from the same run',
  unknown: 'the create got no answer, so a run may exist: the next run looks it up before any resubmit',
};

/** Pure: the rows a notice names (failed, owed, unanswered), with their reasons redacted and cut short. */
export function attentionOf(report: Report): NoticeRow[] {
  return report.rows
    .filter((r): r is ReportRow & { status: NoticeRow['status'] } => r.status === 'failed' || r.status === 'owed' || r.status === 'unknown')
    .map((r) => ({
      manifest: r.manifest,
      id: r.id,
      status: r.status,
      file: r.file,
      line: r.line,
      reason: clipSafe(redactText(r.error ?? NO_REASON[r.status]), REASON_CHARS),
    }));
}

/** Pure: where a reader opens the report: the public base URL + report.html, or the local path. */
export function reportLink(reportPath: string, publicUrl: string | undefined): string {
  return publicUrl === undefined ? reportPath : new URL('report.html', publicUrl).href;
}

/** Pure: the notice's first line: counts, money (tonight's, and every run billed in the folder, as `clipmill status` and ledger.csv say), why the run ended. */
export function headline(report: Report, outcome: Outcome): string {
  const t = report.totals;
  const icon = outcome.exitCode === 0 ? 'OK' : 'ATTENTION';
  const owed = t.owed > 0 ? `, ${t.owed} paid but owed` : '';
  const money = `spent ${formatUsd(usdToMicros(report.money.this_run_usd))} tonight, ${formatUsd(usdToMicros(report.money.billed_usd))} billed in this folder`;
  return `clipmill ${icon}: ${t.done}/${t.rows} videos done, ${t.failed} failed${owed}; ${money}. ${outcome.reason}.`;
}

function moreLine(more: number): string {
  return `and ${more} more (see the report)`;
}

/** Pure: one line per row named (its id, path and reason made inert by `safe`), then "and N more". */
export function rowLines(rows: readonly NoticeRow[], more: number, safe: (text: string) => string = chatSafe): string[] {
  const lines = rows.map((r) => `- ${safe(`${r.manifest}/${r.id}`)} ${STATUS_WORDS[r.status]} (${safe(`${r.file}:${r.line}`)}): ${safe(r.reason)}`);
  if (more > 0) lines.push(moreLine(more));
  return lines;
}

/**
 * Pure: the first line, then as many row lines as fit whole within `chars`, then how many rows are left out of
 * `total` ("and N more"): room for that line is kept at every step, so it is never lost and no row is cut in half.
 */
export function linesWithin(first: string, rows: readonly string[], total: number, chars: number): string {
  const reserve = 1 + moreLine(total).length;
  const lines = [clipSafe(first, Math.max(chars - reserve, 2))];
  let used = lines[0]!.length;
  for (const row of rows) {
    // The last of all the rows needs no "and N more" after it.
    const after = lines.length === total ? 0 : reserve;
    if (used + 1 + row.length + after > chars) break;
    lines.push(row);
    used += 1 + row.length;
  }
  const shown = lines.length - 1;
  if (shown < total) lines.push(moreLine(total - shown));
  return lines.join('\n');
}

function genericNotice(report: Report, outcome: Outcome, link: string, attention: NoticeRow[]): Notice {
  const t = report.totals;
  const named = attention.slice(0, NOTICE_ROWS);
  const more = attention.length - named.length;
  const first = `${chatSafe(headline(report, outcome))} Report: ${chatSafe(link)}`;
  const text = [first, ...rowLines(named, more)].join('\n');
  return {
    text,
    content: linesWithin(
      `${discordSafe(headline(report, outcome))} Report: ${discordSafe(link)}`,
      rowLines(named, 0, discordSafe),
      attention.length,
      DISCORD_CHARS,
    ),
    // Discord: no @everyone, role or user mention in the text pings anyone.
    allowed_mentions: { parse: [] },
    clipmill: {
      exit_code: outcome.exitCode,
      rows: t.rows,
      done: t.done,
      failed: t.failed,
      owed: t.owed,
      skipped: t.skipped,
      in_flight: t.in_flight,
      actual_usd: t.actual_usd,
      this_run_usd: report.money.this_run_usd,
      billed_usd: report.money.billed_usd,
      estimated_usd: t.estimated_usd,
      report: link,
      attention: named,
      attention_more: more,
    },
  };
}

/** Pure: the end-of-run notice, generic (`text`, `content`, `clipmill`) or Slack's (`text`, `blocks`) as `notify.format` says. */
export function noticeFor(report: Report, outcome: Outcome, reportPath: string, settings: NoticeSettings = {}): Notice | SlackNotice {
  const link = reportLink(reportPath, settings.notifyPublicUrl);
  const attention = attentionOf(report);
  if (settings.notifyFormat === 'slack') return slackNotice(headline(report, outcome), attention, NOTICE_ROWS, link, settings.notifyPublicUrl !== undefined);
  return genericNotice(report, outcome, link, attention);
}

/** A failed post in a few words: a network code, or why it was stopped (a DOMException's numeric `code` says nothing). */
function whyNotSent(error: unknown, timeoutMs: number): string {
  const { code, name } = error as { code?: unknown; name?: string };
  if (name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`;
  if (name === 'AbortError') return 'stopped: the run was interrupted';
  return typeof code === 'string' ? code : (name ?? 'error');
}

/**
 * Posts the notice; a failure is a warning, never a failed run. The URL (a secret in its path) is never logged. The
 * run's `signal` stops a post under way (Ctrl-C during it); one already aborted does not: an interrupted night's notice
 * is still sent, within `timeoutMs`.
 */
export async function sendNotice(
  url: string,
  notice: Notice | SlackNotice,
  log: Logger,
  o: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<boolean> {
  const where = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return 'the webhook';
    }
  })();
  const parents = [AbortSignal.timeout(o.timeoutMs ?? 10_000), ...(o.signal && !o.signal.aborted ? [o.signal] : [])];
  const stop = linkedSignal(...parents);
  try {
    const response = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(notice), signal: stop.signal });
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) {
      log.info('notified', `sent the completion notice to ${where}`);
      return true;
    }
    log.warn('notify_failed', `the completion notice to ${where} was refused (HTTP ${response.statusCode}); the run itself is unaffected`);
  } catch (error) {
    log.warn('notify_failed', `could not send the completion notice to ${where} (${whyNotSent(error, o.timeoutMs ?? 10_000)}); the run itself is unaffected`);
  } finally {
    stop.unlink();
  }
  return false;
}
