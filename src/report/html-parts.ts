/** Pure: the pieces of report.html (a card per row, a folding section per manifest, the download list). */
import { formatUsd, usdToMicros } from '../money/cost.js';
import type { Report, ReportRow } from './build.js';

export const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
export const money = (usd: number | null) => (usd === null ? '—' : formatUsd(usdToMicros(usd)));
/** A relative path as a URL: each segment encoded, so ids with dots or spaces still load. */
const hrefOf = (relative: string) => relative.split('/').map(encodeURIComponent).join('/');
const isRemote = (link: string) => /^https?:\/\//.test(link);

/** How the page is put together: the static report by default; the review server adds its controls and links files by id. */
export interface HtmlOptions {
  /** The URL of a file the report names by a path relative to its folder; undefined when it cannot be served. */
  link?: (relative: string) => string | undefined;
  /** Extra HTML at the end of each card (the review controls). */
  cardExtra?: (row: ReportRow) => string;
  /** Extra lines in <head>, under the heading, and a script after the page's own. */
  head?: string;
  intro?: string;
  script?: string;
  /** The nonce the page's inline scripts carry (the review server's Content-Security-Policy allows only them). */
  nonce?: string;
}

/** The attribute-ready URL of a relative path, or undefined. */
export function linkOf(relative: string, o: HtmlOptions): string | undefined {
  const url = o.link ? o.link(relative) : hrefOf(relative);
  return url === undefined ? undefined : escapeHtml(url);
}

/** The name a downloaded video is saved under: the manifest in front, as ids are unique only within a manifest. */
const savedName = (row: ReportRow, file: string) => escapeHtml(`${row.manifest}-${file.split('/').pop() ?? file}`);

function thumbnail(row: ReportRow, o: HtmlOptions): string {
  const src = row.image === null ? undefined : isRemote(row.image) ? escapeHtml(row.image) : linkOf(row.image, o);
  if (src === undefined) return `<div class="thumb no-image" title="a signed or inline image is never written into a report">remote image</div>`;
  return `<img class="thumb" loading="lazy" src="${src}" alt="input image of ${escapeHtml(row.id)}">`;
}

function video(row: ReportRow, o: HtmlOptions): string {
  const src = row.status === 'done' && row.output ? linkOf(row.output, o) : undefined;
  if (src !== undefined) return `<video controls preload="metadata" src="${src}" data-expected-seconds="${row.duration}"></video>`;
  return `<div class="placeholder">${escapeHtml(row.status === 'owed' ? 'paid, not downloaded' : row.status.replace('_', ' '))}</div>`;
}

/** The download link of the row's video, and its earlier version (an edited row) folded beside it. */
function links(row: ReportRow, o: HtmlOptions): string {
  const parts: string[] = [];
  const current = row.status === 'done' && row.output ? linkOf(row.output, o) : undefined;
  if (current !== undefined) parts.push(`<a class="download" download="${savedName(row, row.output!)}" href="${current}">download</a>`);
  const earlier = row.earlier_output === null ? undefined : linkOf(row.earlier_output, o);
  if (earlier !== undefined)
    parts.push(`<details class="earlier"><summary>earlier version</summary>
    <video controls preload="none" src="${earlier}"></video>
    <a class="download-earlier" download="${savedName(row, row.earlier_output!)}" href="${earlier}">download the earlier version</a></details>`);
  return parts.length === 0 ? '' : `<div class="links">${parts.join('\n  ')}</div>`;
}

export function card(row: ReportRow, o: HtmlOptions): string {
  const error = row.error ? `<p class="error">${escapeHtml(row.error)}</p>` : '';
  return `<article class="card status-${row.status}" data-manifest="${escapeHtml(row.manifest)}" data-status="${row.status}" data-key="${escapeHtml(`${row.manifest}/${row.id}`)}">
  <div class="media">${thumbnail(row, o)}${video(row, o)}</div>
  <header><strong>${escapeHtml(row.id)}</strong> <span class="badge">${escapeHtml(row.status)}</span>${row.changed ? ' <span class="badge changed">edited</span>' : ''}</header>
  <p class="prompt">${escapeHtml(row.prompt)}</p>
  ${links(row, o)}
  <dl>
    <dt>manifest</dt><dd>${escapeHtml(row.manifest)}</dd>
    <dt>source</dt><dd><code>${escapeHtml(`${row.file}:${row.line}`)}</code></dd>
    <dt>duration</dt><dd>${row.duration} s${row.video_seconds !== null && row.video_seconds !== row.duration ? ` (file: ${row.video_seconds} s)` : ''}</dd>
    <dt>audio</dt><dd>${escapeHtml(row.audio_mode)}</dd>
    <dt>cost</dt><dd>${money(row.actual_usd)} <small>(${escapeHtml(row.cost_source)}; est. ${money(row.estimated_usd)})</small></dd>
  </dl>
  ${error}${o.cardExtra ? o.cardExtra(row) : ''}
</article>`;
}

/** A manifest's section opens folded out; its summary says how far it got. */
export function sectionStart(name: string, report: Report): string {
  const m = report.manifests.find((x) => x.name === name);
  const counts = m ? `${m.done} of ${m.rows} done${m.failed > 0 ? `, ${m.failed} failed` : ''} · ${money(m.actual_usd)}` : '';
  return `<details class="manifest" open data-manifest="${escapeHtml(name)}">
<summary><strong>${escapeHtml(name)}</strong> <span class="counts">${counts}</span></summary>
<div class="grid">
`;
}

export const SECTION_END = '</div>\n</details>\n';

/** Every finished video's link in one place (current versions; an earlier version is linked on its card). */
export function* downloadList(report: Report, o: HtmlOptions): Generator<string> {
  const done = report.rows.filter((r) => r.status === 'done' && r.output !== null);
  yield `<section id="downloads">
<h2>Download all</h2>
<p>${done.length} video${done.length === 1 ? '' : 's'}${done.length > 0 ? ' · <button type="button" id="download-all">download all</button> (the browser may ask once to allow several downloads)' : ''}</p>
<details${done.length <= 50 ? ' open' : ''}><summary>the list</summary>
<ol class="downloads">
`;
  for (const row of done) {
    const href = linkOf(row.output!, o);
    if (href !== undefined) yield `<li><a download="${savedName(row, row.output!)}" href="${href}">${escapeHtml(row.output!)}</a></li>\n`;
  }
  yield '</ol>\n</details>\n</section>\n';
}
