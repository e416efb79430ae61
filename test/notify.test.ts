import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { loadPipeline } from '../src/config/pipeline.js';
import { InputError } from '../src/load/problem.js';
import type { Report, ReportRow } from '../src/report/build.js';
import { readStatus } from '../src/commands/status.js';
import { Logger } from '../src/infra/log.js';
import { noticeFor, sendNotice, type Notice } from '../src/report/notify.js';
import { SLACK_MAX_BLOCKS, SLACK_TEXT_CHARS, type SlackNotice } from '../src/report/notice-slack.js';
import { clipSafe } from '../src/report/notice-text.js';
import { nightFolder, rowsYaml, tempDir, webhook, write } from './helpers.js';

const LINK = 'https://reports.example.com/nightly/report.html';

test('the notice names the failed rows (ten, then "and N more") and links the report at notify.public_url; generic JSON or Slack blocks', async (t) => {
  const hook = await webhook(t);
  const notify = `notify:\n  webhook_url: ${hook.url}\n  public_url: https://reports.example.com/nightly\n`;
  const { dir, night, pipelineFile } = await nightFolder(t, rowsYaml(12), { simulator: { fail_rate: 1 }, pipeline: notify });
  const logs: string[] = [];
  assert.equal((await night({ logLine: (line) => logs.push(line) })).exitCode, 1);
  const generic = hook.bodies[0] as Notice;
  assert.match(generic.text, /^clipmill ATTENTION: 0\/12 videos done, 12 failed; spent \$0\.00 tonight/);
  assert.match(generic.text, new RegExp(`Report: ${LINK}\n`));
  const lines = generic.text.split('\n').slice(1);
  assert.equal(lines.length, 11);
  assert.match(lines[0]!, /^- m\/r0 failed \(.*m\.yaml:2\): GENERATION_FAILED: run [0-9a-f-]{36} failed: The model could not generate a video for this input$/);
  assert.equal(lines[10], 'and 2 more (see the report)');
  const content = generic.content.split('\n');
  assert.ok(generic.content.length <= 2000);
  assert.deepEqual(content.slice(0, -1), generic.text.split('\n').slice(0, content.length - 1), 'Discord gets the same lines, as many as fit');
  assert.equal(content.at(-1), `and ${12 - (content.length - 2)} more (see the report)`);
  assert.equal(generic.clipmill.report, LINK);
  assert.deepEqual(
    generic.clipmill.attention.map((r) => `${r.manifest}/${r.id} ${r.status}`),
    Array.from({ length: 10 }, (_, i) => `m/r${i} failed`),
  );
  assert.equal(generic.clipmill.attention_more, 2);
  assert.deepEqual([generic.clipmill.failed, generic.clipmill.rows, generic.clipmill.exit_code], [12, 12, 1]);
  assert.ok(!logs.join('\n').includes('secret-token'), 'the webhook URL is never logged');

  // The same folder again with `format: slack`: the failed rows are left alone, and the notice says so in Slack's blocks.
  const slackPipeline = await write(dir, 'slack.yaml', `${await readFile(pipelineFile, 'utf8')}  format: slack\n`);
  assert.equal((await night({ pipelineFile: slackPipeline })).exitCode, 1);
  const slack = hook.bodies[1] as SlackNotice;
  assert.deepEqual(Object.keys(slack).sort(), ['blocks', 'text']);
  assert.ok(slack.blocks.length <= SLACK_MAX_BLOCKS && slack.blocks.every((b) => b.type === 'section' && b.text.text.length <= SLACK_TEXT_CHARS));
  assert.match(slack.blocks[0]!.text.text, /^clipmill ATTENTION: 0\/12 videos done, 12 failed/);
  const bullets = slack.blocks[1]!.text.text.split('\n');
  assert.equal(bullets.filter((b) => b.startsWith('• `m/r')).length, 10);
  assert.match(bullets[0]!, /^• `m\/r0` failed \(`.*m\.yaml:2`\): GENERATION_FAILED: /);
  assert.equal(bullets.at(-1), 'and 2 more (see the report)');
  assert.equal(slack.blocks.at(-1)!.text.text, `<${LINK}|Open the report>`);
  assert.match(slack.text, new RegExp(`Report: ${LINK}$`));
});

function reportWith(rows: Partial<ReportRow>[]): Report {
  const full = rows.map((r, i) => ({ manifest: 'm', id: `r${i}`, file: 'manifests/m.csv', line: i + 2, status: 'failed', error: null, ...r }) as ReportRow);
  const totals = { rows: full.length, done: 0, owed: 1, failed: full.length - 1, skipped: 0, in_flight: 0, seconds: 0, estimated_usd: 1, actual_usd: 0.7 };
  return { totals, money: { this_run_usd: 0.7, billed_usd: 0.7 }, rows: full } as unknown as Report;
}

test("a notice's rows: reasons redacted and cut short, owed rows named, within Slack's limits; the local path without public_url", () => {
  const signed = 'https://cdn.example/v.mp4?X-Amz-Signature=0123abcd&X-Amz-Credential=AKIA';
  const long = `DOWNLOAD_FAILED: <${signed}> & ${'x'.repeat(3000)}`;
  const report = reportWith([
    { status: 'owed', error: 'generated and paid for, not downloaded yet (owed)' },
    ...Array.from({ length: 14 }, () => ({ error: long })),
  ]);
  const outcome = { exitCode: 1, reason: '15 rows not done' };
  const generic = noticeFor(report, outcome, '/srv/out/report.html') as Notice;
  assert.equal(generic.clipmill.report, '/srv/out/report.html', 'no public_url: the local path, as before');
  assert.equal(generic.clipmill.attention[0]?.status, 'owed');
  assert.ok(generic.clipmill.attention.every((r) => r.reason.length <= 150));
  assert.ok(!generic.text.includes('0123abcd') && !generic.text.includes('AKIA'), 'a signature never reaches the chat');
  assert.ok(generic.content.length <= 2000, "within Discord's limit");
  assert.equal(generic.clipmill.attention_more, 5);

  const slack = noticeFor(report, outcome, '/srv/out/report.html', { notifyFormat: 'slack' }) as SlackNotice;
  assert.ok(slack.blocks.every((b) => b.text.text.length <= SLACK_TEXT_CHARS));
  assert.match(slack.blocks[1]!.text.text, /: DOWNLOAD_FAILED: &lt;https:\/\/cdn\.example\/v\.mp4\?…\(redacted\)&gt; &amp; x+…/);
  assert.equal(slack.blocks.at(-1)!.text.text, 'Report: `/srv/out/report.html`');
  assert.doesNotMatch(JSON.stringify(slack), /0123abcd|AKIA/);
});

test('notify.public_url and notify.format are checked with the file, line and field; the URL is never repeated in the error', async (t) => {
  const dir = await tempDir(t);
  const cases: [string, RegExp][] = [
    ['public_url: ftp://reports.example.com/', /must be an https \(or http\) URL, not ftp:/],
    ['public_url: https://admin:hunter2@reports.example.com/', /must not hold credentials/],
    ['public_url: https://reports.example.com/?token=s3cr3t', /must have no query or fragment/],
    ['public_url: reports.example.com', /is not a URL/],
    ['format: teams', /Invalid option: expected one of "generic"\|"slack"/],
  ];
  for (const [setting, message] of cases) {
    const file = await write(dir, 'p.yaml', `provider: runflow\nnotify:\n  webhook_url: https://hooks.example/x\n  ${setting}\n`);
    await assert.rejects(loadPipeline(file), (error: unknown) => {
      assert.ok(error instanceof InputError);
      const problem = error.problems[0]!;
      assert.deepEqual([problem.file, problem.line, problem.field], [file, 4, `notify.${setting.split(':')[0]}`]);
      assert.match(problem.message, message);
      assert.doesNotMatch(problem.message, /hunter2|s3cr3t/);
      return true;
    });
  }
  const ok = await write(dir, 'ok.yaml', 'provider: runflow\nnotify:\n  public_url: https://reports.example.com/nightly\n  format: slack\n');
  const pipeline = await loadPipeline(ok);
  assert.deepEqual([pipeline.notifyPublicUrl, pipeline.notifyFormat], ['https://reports.example.com/nightly/', 'slack']);
});

/** A lone half of a surrogate pair: what a cut through an emoji leaves. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

test('a reason cannot ping a channel or disguise a link: escaped and defused in text and content, Discord pings nobody, Slack shows keys and paths as code; a cut never splits an entity or an emoji', () => {
  const evil = 'bad input <!channel> see <https://evil.example|the docs> & @everyone @here, [docs](https://evil.example)';
  const report = reportWith([{ error: evil }, { id: 'r*1*', file: 'manifests/spring_`launch`.csv', error: `${'x'.repeat(148)}😀 and more` }]);
  const generic = noticeFor(report, { exitCode: 1, reason: '2 rows not done' }, '/srv/out/report.html') as Notice;
  const line = generic.text.split('\n')[1]!;
  assert.equal(
    line,
    '- m/r0 failed (manifests/m.csv:2): bad input &lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; @\u200beveryone @\u200bhere, [docs](https://evil.example)',
  );
  assert.doesNotMatch(generic.text, /<!channel>|<https:|@everyone|@here/, 'no markup or mention reaches the chat as such');
  // Discord shows entities as typed: its content keeps < and & as they are, and pings nobody (allowed_mentions, defused @).
  assert.match(generic.content, /bad input <!channel> see <https:\/\/evil\.example\|the docs> & @\u200beveryone/);
  assert.doesNotMatch(generic.content, /&lt;|&amp;|@everyone|@here/);
  for (const body of [generic.text, generic.content]) assert.doesNotMatch(body, LONE_SURROGATE);
  assert.match(generic.content, /\\\[docs\\\]\(https:\/\/evil\.example\)/, "Discord's masked link syntax is escaped");
  assert.deepEqual(generic.allowed_mentions, { parse: [] });
  assert.equal(generic.clipmill.attention[0]?.reason, evil, 'the figures keep the reason as it is, for a program');
  assert.match(generic.clipmill.attention[1]!.reason, /^x{148}…$/, 'the emoji is not cut in half: it is left out whole');

  const slack = noticeFor(report, { exitCode: 1, reason: '2 rows not done' }, '/srv/out/report.html', { notifyFormat: 'slack' }) as SlackNotice;
  const bullets = slack.blocks[1]!.text.text.split('\n');
  assert.equal(
    bullets[0],
    '• `m/r0` failed (`manifests/m.csv:2`): bad input &lt;!channel&gt; see &lt;https://evil.example|the docs&gt; &amp; @\u200beveryone @\u200bhere, [docs](https://evil.example)',
  );
  assert.match(bullets[1]!, /^• `m\/r\*1\*` failed \(`manifests\/spring_'launch'\.csv:3`\): x{148}…$/);
  assert.doesNotMatch(JSON.stringify(slack), /<!channel>|<https:\/\/evil|@everyone/);

  // Cuts: never inside an entity, never through a surrogate pair.
  assert.equal(clipSafe(`${'x'.repeat(146)}&amp; more`, 150), `${'x'.repeat(146)}…`);
  assert.equal(clipSafe(`${'x'.repeat(148)}😀 more`, 150), `${'x'.repeat(148)}…`);
  assert.equal(clipSafe(`${'x'.repeat(147)}😀 more`, 150), `${'x'.repeat(147)}😀…`);
  assert.equal(clipSafe('short', 150), 'short');
});

test("Discord's content is built line by line within 2000 characters: whole rows only, and the count of the rest always kept", () => {
  // Realistic rows: absolute paths on a shared drive, the provider's long reasons (cut at 150 characters).
  const because = 'The model could not generate a video for this input because '.repeat(3);
  const report = reportWith(
    Array.from({ length: 14 }, (_, i) => ({
      manifest: 'spring-launch-2026',
      id: `hero-shot-${i}`,
      file: '/home/marketing-ops/shared/manifests/spring-launch-2026.csv',
      error: `GENERATION_FAILED: run 01a21158-0c8e-74d1-8490-f5d741ae3913 failed: ${because}`,
    })),
  );
  const outcome = { exitCode: 1, reason: '14 rows not done: see the report; a rerun resumes unfinished rows (--retry-failed resubmits failed ones)' };
  const generic = noticeFor(report, outcome, '/srv/clipmill/out/report.html') as Notice;
  assert.ok(generic.text.length > 2000, 'the whole text would not fit');
  assert.ok(generic.content.length <= 2000, `content is ${generic.content.length} characters`);
  const lines = generic.content.split('\n');
  const rows = lines.slice(1, -1);
  assert.ok(rows.length >= 5, `${rows.length} rows shown`);
  const textLines = generic.text.split('\n');
  rows.forEach((row, i) => assert.equal(row, textLines[i + 1], 'every row shown whole, as the text has it'));
  assert.equal(lines.at(-1), `and ${14 - rows.length} more (see the report)`);
  assert.equal(lines[0], textLines[0]);

  // Few rows: all of them, and no count line.
  const few = noticeFor(reportWith([{ error: 'a' }, { error: 'b' }]), outcome, '/srv/out/report.html') as Notice;
  assert.equal(few.content, few.text);
  assert.doesNotMatch(few.content, /more \(see the report\)/);
});

test("the notice's money agrees with clipmill status: tonight's, and every run billed in the folder (an edited row's earlier run too)", async (t) => {
  const hook = await webhook(t);
  const { night, out, edit } = await nightFolder(t, rowsYaml(3), { pipeline: `notify:\n  webhook_url: ${hook.url}\n` });
  assert.equal((await night()).exitCode, 0);
  await edit(rowsYaml(3).replace('prompt: "row 0"', 'prompt: "row 0, edited"'));
  assert.equal((await night()).exitCode, 0);
  const notice = hook.bodies[1] as Notice;
  const status = await readStatus({ manifests: [], outDir: out });
  assert.match(notice.text, /; spent \$0\.42 tonight, \$1\.68 billed in this folder\. /);
  assert.deepEqual([notice.clipmill.billed_usd, notice.clipmill.this_run_usd], [status.money.spent_total_usd, status.money.spent_tonight_usd]);
  assert.ok(notice.clipmill.actual_usd < notice.clipmill.billed_usd, "the rows' current versions cost less than all that was billed");
});

test('an unanswered create is named as one in the notice, with what happens to it, not as "unknown"', () => {
  const report = reportWith([
    { status: 'unknown', error: null },
    { status: 'owed', error: null },
  ]);
  const generic = noticeFor(report, { exitCode: 1, reason: '2 rows not done' }, '/srv/out/report.html') as Notice;
  const lines = generic.text.split('\n').slice(1);
  assert.equal(
    lines[0],
    '- m/r0 unanswered create (manifests/m.csv:2): the create got no answer, so a run may exist: the next run looks it up before any resubmit',
  );
  assert.match(lines[1]!, /^- m\/r1 owed \(paid, video not here\) \(manifests\/m\.csv:3\): generated and paid for, not downloaded yet/);
  assert.equal(generic.clipmill.attention[0]?.status, 'unknown', "the figures keep the report's word");
  const slack = noticeFor(report, { exitCode: 1, reason: '2 rows not done' }, '/srv/out/report.html', { notifyFormat: 'slack' }) as SlackNotice;
  assert.match(slack.blocks[1]!.text.text, /^• `m\/r0` unanswered create \(/);
});

test("the notice's post stops when the run is interrupted during it; a run interrupted before still sends its notice", async (t) => {
  const arrived: (() => void)[] = [];
  let answer = true;
  const server = createServer((req, res) => {
    req.resume();
    arrived.shift()?.();
    if (answer) res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const logs: string[] = [];
  const log = new Logger({ format: 'pretty', write: (line) => logs.push(line) });
  const notice = noticeFor(reportWith([{ error: 'x' }]), { exitCode: 130, reason: 'interrupted' }, '/srv/out/report.html');

  // Interrupted before the notice: it is still sent (an interrupted night is worth a notice).
  const before = new AbortController();
  before.abort();
  assert.equal(await sendNotice(url, notice, log, { signal: before.signal }), true);

  // Interrupted while the webhook has not answered: the post stops at once, not after its 10 s timeout.
  answer = false;
  const during = new AbortController();
  arrived.push(() => during.abort());
  const started = performance.now();
  assert.equal(await sendNotice(url, notice, log, { signal: during.signal }), false);
  assert.ok(performance.now() - started < 5_000);
  assert.match(
    logs.join('\n'),
    /could not send the completion notice to http:\/\/127\.0\.0\.1:\d+ \(stopped: the run was interrupted\); the run itself is unaffected/,
  );
});
