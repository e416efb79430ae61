/** Pure: the review page: report.html's page with an "approve" / "redo with a note" box on each video. */
import type { Report, ReportRow } from '../report/build.js';
import { renderHtml } from '../report/html.js';
import { escapeHtml } from '../report/html-parts.js';
import { versionKey, type Mark } from './marks.js';
import { noteRoom, notRedoable, verdictsFor, type Markable } from './posted.js';

const describe = (mark: Mark | undefined) => (mark === undefined ? 'not reviewed' : mark.verdict === 'approved' ? 'approved' : `redo: ${mark.note ?? ''}`);

function reviewBox(row: ReportRow, markable: Markable | undefined, latest: ReadonlyMap<string, Mark>): string {
  if (markable === undefined) return '';
  const key = `${row.manifest}/${row.id}`;
  const can = verdictsFor(markable.standing);
  // A run that may still be billed is not redone (a new version would abandon it): the box says why, with no buttons.
  if (!can.redo)
    return `<div class="review review-held" data-key="${escapeHtml(key)}"><p class="verdict">${escapeHtml(`not yet: ${notRedoable(markable.standing, key)}`)}</p></div>`;
  const mark = latest.get(versionKey(key, row.request));
  const note = mark?.verdict === 'redo' ? (mark.note ?? '') : '';
  return `<div class="review" data-key="${escapeHtml(key)}" data-request="${escapeHtml(row.request)}" data-verdict="${mark?.verdict ?? ''}">
  <p class="verdict">${escapeHtml(describe(mark))}</p>
  <textarea maxlength="${noteRoom(markable)}" rows="2" aria-label="note" placeholder="what to change (required for redo)">${escapeHtml(note)}</textarea>
  <div>${can.approve ? '<button type="button" data-verdict="approved">approve</button> ' : ''}<button type="button" data-verdict="redo">redo</button></div>
  <p class="review-error" role="alert"></p>
</div>`;
}

const STYLE = `.review{border-top:1px solid #e7e5e4;padding-top:6px;display:flex;flex-direction:column;gap:4px}
.review textarea{font:inherit;width:100%;box-sizing:border-box}.review p{margin:0}
.review[data-verdict=approved] .verdict{color:#15803d;font-weight:600}.review[data-verdict=redo] .verdict{color:#b45309;font-weight:600}
.review-error{color:#b91c1c;font-size:12px}`;

const SCRIPT = `
const token = document.querySelector('meta[name="clipmill-token"]').content;
const describe = (mark) => (mark.verdict === 'approved' ? 'approved' : 'redo: ' + mark.note);
for (const box of document.querySelectorAll('.review')) {
  for (const button of box.querySelectorAll('button[data-verdict]')) {
    button.addEventListener('click', async () => {
      const error = box.querySelector('.review-error');
      const note = box.querySelector('textarea').value.trim();
      error.textContent = '';
      if (button.dataset.verdict === 'redo' && note === '') return void (error.textContent = 'write what to change first');
      try {
        const res = await fetch('/api/marks', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-clipmill-token': token },
          body: JSON.stringify({ key: box.dataset.key, request: box.dataset.request, verdict: button.dataset.verdict, note }),
        });
        const body = await res.json();
        // 409: the video was replaced (a night ran since the page was loaded): show the current one.
        if (res.status === 409) return void location.reload();
        if (!res.ok) return void (error.textContent = body.error);
        box.dataset.verdict = body.mark.verdict;
        box.querySelector('.verdict').textContent = describe(body.mark);
      } catch (e) {
        error.textContent = 'not saved (is clipmill review still running?): ' + e.message;
      }
    });
  }
}
`;

/** How many of the page's rows are approved or to redo, by their current version's mark. */
function tally(report: Report, latest: ReadonlyMap<string, Mark>): { approved: number; redo: number } {
  let approved = 0;
  let redo = 0;
  for (const row of report.rows) {
    const verdict = latest.get(versionKey(`${row.manifest}/${row.id}`, row.request))?.verdict;
    if (verdict === 'approved') approved++;
    if (verdict === 'redo') redo++;
  }
  return { approved, redo };
}

/** The page `clipmill review` serves: files linked through `link`, the token every mark must carry, scripts by nonce. */
export function renderReviewPage(
  report: Report,
  rows: ReadonlyMap<string, Markable>,
  latest: ReadonlyMap<string, Mark>,
  o: { token: string; nonce: string; link: (relative: string) => string | undefined },
): Generator<string> {
  const { approved, redo } = tally(report, latest);
  return renderHtml(report, {
    link: o.link,
    nonce: o.nonce,
    head: `<meta name="clipmill-token" content="${escapeHtml(o.token)}">\n<style nonce="${escapeHtml(o.nonce)}">${STYLE}</style>\n`,
    intro: `<p class="review-intro">Mark each video <b>approve</b>, or <b>redo</b> with a note saying what to change (saved in review.json; ${approved} approved, ${redo} to redo so far). The next <code>clipmill run</code> makes the redo rows again with the note added to the prompt, within the budget; the earlier video is kept.</p>\n`,
    cardExtra: (row) => reviewBox(row, rows.get(`${row.manifest}/${row.id}`), latest),
    script: SCRIPT,
  });
}
