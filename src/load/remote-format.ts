/** What a downloaded manifest is, from its bytes first: a zip is a workbook and a web page is a page, whatever the server says. */
import { isOleWorkbook, isZip } from './xlsx.js';

export const WEB_PAGE_PROBLEM =
  'the server answered with a web page, not a CSV or .xlsx file: for a Google Sheet use File → Share → Publish to web, pick CSV or Microsoft Excel (.xlsx), and use the link it gives';

/** Pure: whether the bytes are an HTML page (a sign-in page, an unpublished sheet), by their start, or by the type when they start with a tag. */
export function looksLikeHtml(bytes: Uint8Array, type: string): boolean {
  const start = new TextDecoder('utf-8')
    .decode(bytes.subarray(0, 1024))
    .replace(/^\uFEFF/, '')
    .trimStart();
  if (!start.startsWith('<')) return false;
  return type === 'text/html' || /<(!doctype\s+html|html|head|body)\b/i.test(start);
}

const asFormat = (word: string | undefined): 'csv' | 'xlsx' | undefined => (word === 'xlsx' ? 'xlsx' : word === 'csv' || word === 'tsv' ? 'csv' : undefined);

/**
 * Pure: the format of a downloaded manifest: a zip (or an encrypted workbook) is an .xlsx; a web page is a problem;
 * else the extension of the URL the bytes came from (after redirects), the query's `output=` or `format=` (of that
 * URL, then of the one written), the Content-Type, and CSV.
 */
export function formatOfDownload(final: URL, written: URL, contentType: string | undefined, bytes: Uint8Array): 'csv' | 'xlsx' | { problem: string } {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (isZip(bytes) || isOleWorkbook(bytes)) return 'xlsx';
  if (looksLikeHtml(bytes, type)) return { problem: WEB_PAGE_PROBLEM };
  const query = (url: URL) => (url.searchParams.get('output') ?? url.searchParams.get('format') ?? '').toLowerCase();
  const byUrl = asFormat(/\.([a-z0-9]+)$/i.exec(final.pathname)?.[1]?.toLowerCase()) ?? asFormat(query(final)) ?? asFormat(query(written));
  if (byUrl) return byUrl;
  if (type === 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet') return 'xlsx';
  return 'csv';
}
