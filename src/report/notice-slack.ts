import { chatSafe, clipSafe, codeSpan, escapeMarkup } from './notice-text.js';

/** A row a notice names: failed, paid but its video not here (owed), or a create whose answer was lost. */
export interface NoticeRow {
  manifest: string;
  id: string;
  status: 'failed' | 'owed' | 'unknown';
  file: string;
  line: number;
  reason: string;
}

/** What a row's status means, said in a notice's line (`unknown` is the report's word for an unanswered create). */
export const STATUS_WORDS: Record<NoticeRow['status'], string> = { failed: 'failed', owed: 'owed (paid, video not here)', unknown: 'unanswered create' };

/** Slack's documented limits: a section's text, and the blocks of one message. */
export const SLACK_TEXT_CHARS = 3000;
export const SLACK_MAX_BLOCKS = 50;

interface Section {
  type: 'section';
  text: { type: 'mrkdwn'; text: string };
}

/** Slack's incoming-webhook body: `text` (the notification, and what clients without blocks show) and `blocks`. */
export interface SlackNotice {
  text: string;
  blocks: Section[];
}

/** Slack's mrkdwn reads `&`, `<`, `>` as markup: escaped as its documentation says. */
export const slackEscape = escapeMarkup;

function section(text: string): Section {
  return { type: 'section', text: { type: 'mrkdwn', text: clipSafe(text, SLACK_TEXT_CHARS) } };
}

/** The rows as one block's lines, as many as fit in its 3000 characters, then how many were left out. */
function rowsText(rows: readonly NoticeRow[], total: number): string {
  const lines: string[] = [];
  let length = 0;
  for (const r of rows) {
    // Keys and paths in code spans: shown as written, never read as markup (an id with *bold* or a path with _).
    const line = `• ${codeSpan(slackEscape(`${r.manifest}/${r.id}`))} ${STATUS_WORDS[r.status]} (${codeSpan(slackEscape(`${r.file}:${r.line}`))}): ${chatSafe(r.reason)}`;
    // Room is kept for the last line, "and N more".
    if (length + line.length + 1 > SLACK_TEXT_CHARS - 40) break;
    lines.push(line);
    length += line.length + 1;
  }
  if (lines.length < total) lines.push(`and ${total - lines.length} more (see the report)`);
  return lines.join('\n');
}

/** Pure: the notice as Slack's blocks: the headline, the rows needing attention (up to `limit`), and the report's link. */
export function slackNotice(headline: string, attention: readonly NoticeRow[], limit: number, link: string, linkIsUrl: boolean): SlackNotice {
  const blocks = [section(chatSafe(headline))];
  if (attention.length > 0) blocks.push(section(rowsText(attention.slice(0, limit), attention.length)));
  // A link's URL may not hold `|` or `>` (Slack's link syntax); a local path is shown as code, not linked.
  blocks.push(section(linkIsUrl ? `<${link.replace(/\|/g, '%7C').replace(/>/g, '%3E')}|Open the report>` : `Report: \`${slackEscape(link)}\``));
  return { text: `${chatSafe(headline)} Report: ${chatSafe(link)}`, blocks: blocks.slice(0, SLACK_MAX_BLOCKS) };
}
