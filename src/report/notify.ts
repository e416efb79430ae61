import { request } from 'undici';
import { formatUsd, usdToMicros } from '../money/cost.js';
import type { Logger } from '../infra/log.js';
import type { Report } from './build.js';
import type { Outcome } from './summary.js';

/** A JSON body chat tools accept as it is: `text` (Slack, Teams, Mattermost, Google Chat), `content` (Discord), plus the figures. */
export interface Notice {
  text: string;
  content: string;
  clipmill: {
    exit_code: number;
    rows: number;
    done: number;
    failed: number;
    skipped: number;
    in_flight: number;
    actual_usd: number;
    this_run_usd: number;
    estimated_usd: number;
    report: string;
  };
}

/** Pure: the end-of-run notice. */
export function noticeFor(report: Report, outcome: Outcome, reportPath: string): Notice {
  const t = report.totals;
  const icon = outcome.exitCode === 0 ? 'OK' : 'ATTENTION';
  const text = `clipmill ${icon}: ${t.done}/${t.rows} videos done, ${t.failed} failed; spent ${formatUsd(usdToMicros(report.money.this_run_usd))} tonight (${formatUsd(usdToMicros(t.actual_usd))} in all). ${outcome.reason}. Report: ${reportPath}`;
  return {
    text,
    content: text,
    clipmill: {
      exit_code: outcome.exitCode,
      rows: t.rows,
      done: t.done,
      failed: t.failed,
      skipped: t.skipped,
      in_flight: t.in_flight,
      actual_usd: t.actual_usd,
      this_run_usd: report.money.this_run_usd,
      estimated_usd: t.estimated_usd,
      report: reportPath,
    },
  };
}

/** Posts the notice; a failure is a warning, never a failed run. The URL (a secret in its path) is never logged. */
export async function sendNotice(url: string, notice: Notice, log: Logger, timeoutMs = 10_000): Promise<boolean> {
  const where = (() => {
    try {
      return new URL(url).origin;
    } catch {
      return 'the webhook';
    }
  })();
  try {
    const response = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(notice),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.body.dump();
    if (response.statusCode >= 200 && response.statusCode < 300) {
      log.info('notified', `sent the completion notice to ${where}`);
      return true;
    }
    log.warn('notify_failed', `the completion notice to ${where} was refused (HTTP ${response.statusCode}); the run itself is unaffected`);
  } catch (error) {
    log.warn(
      'notify_failed',
      `could not send the completion notice to ${where} (${(error as { code?: string }).code ?? (error as Error).name}); the run itself is unaffected`,
    );
  }
  return false;
}
