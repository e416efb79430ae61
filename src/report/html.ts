import type { Report } from './build.js';
import { card, downloadList, escapeHtml, money, sectionStart, SECTION_END, type HtmlOptions } from './html-parts.js';

export type { HtmlOptions } from './html-parts.js';

/** Bars of actual (and estimated) cost per manifest, as inline SVG: no chart library, no network. */
function costChart(report: Report): string {
  const max = Math.max(0.000001, ...report.manifests.flatMap((m) => [m.actual_usd, m.estimated_usd]));
  const rowHeight = 28;
  const width = 520;
  const label = 150;
  const bars = report.manifests
    .map((m, i) => {
      const y = i * rowHeight + 4;
      const est = ((width - label - 80) * m.estimated_usd) / max;
      const act = ((width - label - 80) * m.actual_usd) / max;
      return `<g><text x="0" y="${y + 16}" class="label">${escapeHtml(m.name)}</text>
<rect x="${label}" y="${y}" width="${est.toFixed(1)}" height="20" class="estimated"/>
<rect x="${label}" y="${y + 5}" width="${act.toFixed(1)}" height="10" class="actual"/>
<text x="${(label + Math.max(est, act) + 6).toFixed(1)}" y="${y + 15}" class="value">${money(m.actual_usd)}</text></g>`;
    })
    .join('\n');
  return `<svg class="chart" role="img" aria-label="cost per manifest" width="${width}" height="${report.manifests.length * rowHeight + 8}" viewBox="0 0 ${width} ${report.manifests.length * rowHeight + 8}">${bars}</svg>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f5f5f4;color:#1c1917}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:20px;margin:0 0 4px}
.totals{display:flex;gap:16px;flex-wrap:wrap;margin:8px 0 16px}
.totals div{background:#fff;border-radius:8px;padding:8px 12px;box-shadow:0 1px 2px #0002}
.totals b{display:block;font-size:18px}
.filters{margin:12px 0;display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.manifest{margin:0 0 16px}.manifest>summary{cursor:pointer;font-size:16px;padding:6px 0}.manifest .counts{color:#78716c;font-size:13px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:10px;box-shadow:0 1px 2px #0002;display:flex;flex-direction:column;gap:6px}
.media{display:grid;grid-template-columns:1fr 3fr;gap:6px;align-items:center}
.thumb{width:100%;aspect-ratio:1;object-fit:contain;background:#e7e5e4;border-radius:4px}
.no-image{display:flex;align-items:center;justify-content:center;font-size:11px;color:#57534e;text-align:center}
.card video,.placeholder{width:100%;aspect-ratio:16/9;background:#000;border-radius:4px}
.placeholder{display:flex;align-items:center;justify-content:center;color:#fff;background:#57534e}
.status-failed{border-left:4px solid #dc2626}.status-done{border-left:4px solid #16a34a}
.badge{font-size:12px;background:#e7e5e4;border-radius:4px;padding:1px 6px}.changed{background:#fef3c7}
.prompt{margin:0;color:#44403c;white-space:pre-line}
.links{font-size:13px}.earlier summary{cursor:pointer;color:#57534e}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 8px;margin:0;font-size:12px}dt{color:#78716c}dd{margin:0}
.error{color:#b91c1c;font-size:12px;margin:0}
.chart .estimated{fill:#d6d3d1}.chart .actual{fill:#2563eb}.chart .label,.chart .value{font-size:12px;fill:#1c1917}
.failed-list li{margin:2px 0}
.downloads{columns:2;font-size:13px}
`;

const SCRIPT = `
const manifest = document.getElementById('filter-manifest');
const status = document.getElementById('filter-status');
const shown = document.getElementById('shown');
function apply() {
  let n = 0;
  for (const card of document.querySelectorAll('.card')) {
    const ok = (manifest.value === '' || card.dataset.manifest === manifest.value) && (status.value === '' || card.dataset.status === status.value);
    card.hidden = !ok;
    if (ok) n++;
  }
  for (const section of document.querySelectorAll('details.manifest')) section.hidden = !section.querySelector('.card:not([hidden])');
  shown.textContent = n + ' shown';
}
manifest.addEventListener('change', apply);
status.addEventListener('change', apply);
apply();
const all = document.getElementById('download-all');
if (all) all.addEventListener('click', async () => {
  // One at a time, a moment apart: browsers drop downloads started all at once.
  for (const link of document.querySelectorAll('.downloads a')) {
    link.click();
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
});
`;

/** The rows in manifest sections that fold; a manifest whose rows come apart gets a section per run of rows. */
function* sections(report: Report, o: HtmlOptions): Generator<string> {
  let current: string | undefined;
  for (const row of report.rows) {
    if (row.manifest !== current) {
      if (current !== undefined) yield SECTION_END;
      current = row.manifest;
      yield sectionStart(current, report);
    }
    yield `${card(row, o)}\n`;
  }
  if (current !== undefined) yield SECTION_END;
}

/**
 * Pure: one self-contained page for the morning review, in pieces (a card per row); videos and local images are
 * referenced by path relative to the report (or as `o.link` says: the review server).
 */
export function* renderHtml(report: Report, o: HtmlOptions = {}): Generator<string> {
  const t = report.totals;
  const statuses = [...new Set(report.rows.map((r) => r.status))];
  const failed = report.rows.filter((r) => r.status === 'failed' || r.status === 'unknown' || r.status === 'owed' || r.cost_alert);
  const nonce = o.nonce === undefined ? '' : ` nonce="${escapeHtml(o.nonce)}"`;
  yield `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${o.head ?? ''}<title>clipmill review — ${t.done} of ${t.rows} videos</title>
<style${nonce}>${STYLE}</style>
</head>
<body>
<main>
<h1>clipmill review</h1>
<p>Generated ${escapeHtml(report.generated_at)} · provider ${escapeHtml(report.provider)} · <a href="#downloads">download all</a></p>
${o.intro ?? ''}<section class="totals">
  <div>videos done<b id="total-done">${t.done} / ${t.rows}</b></div>
  <div>failed<b>${t.failed}</b>${t.owed > 0 ? `<small>${t.owed} paid, not downloaded</small>` : ''}</div>
  <div>seconds of video<b>${t.seconds}</b></div>
  <div>cost<b>${money(t.actual_usd)}</b><small>estimated ${money(t.estimated_usd)}</small></div>
  <div>this run<b>${money(report.money.this_run_usd)}</b><small>earlier ${money(report.money.earlier_runs_usd)}</small></div>
  <div>billed in this folder<b>${money(report.money.billed_usd)}</b><small>${report.billed_runs.length} runs (ledger.csv)</small></div>
</section>
<h2>Cost per manifest</h2>
${costChart(report)}
${failed.length > 0 ? `<h2>Needs attention</h2><ul class="failed-list">${failed.map((r) => `<li><code>${escapeHtml(`${r.file}:${r.line}`)}</code> ${escapeHtml(`${r.manifest}/${r.id}`)}: ${escapeHtml(r.error ?? r.status)}</li>`).join('')}</ul>` : ''}
<h2>Videos</h2>
<div class="filters">
  <label>manifest <select id="filter-manifest"><option value="">all</option>${report.manifests.map((m) => `<option value="${escapeHtml(m.name)}">${escapeHtml(m.name)}</option>`).join('')}</select></label>
  <label>status <select id="filter-status"><option value="">all</option>${statuses.map((s) => `<option value="${escapeHtml(s)}">${escapeHtml(s)}</option>`).join('')}</select></label>
  <span id="shown"></span>
</div>
`;
  yield* sections(report, o);
  yield* downloadList(report, o);
  yield `</main>
<script${nonce}>${SCRIPT}</script>
${o.script === undefined ? '' : `<script${nonce}>${o.script}</script>\n`}</body>
</html>
`;
}
