/** What a manifest argument names: a file (a worksheet of one), a folder of them, or a URL; and the manifest's name. */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Problem } from './problem.js';

export type ManifestSource =
  | { kind: 'file'; path: string; sheet?: string; name: string; file: string; shown: string }
  | { kind: 'url'; url: string; sheet?: string; name: string; file: string; shown: string };

export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.csv', '.xlsx'];
/** Spreadsheet formats clipmill does not read: the user is told to save as .xlsx or CSV instead of the file being skipped. */
const OTHER_SPREADSHEETS = ['.xls', '.xlsm', '.xlsb', '.ods', '.numbers'];
const KINDS = '.yaml, .yml, .csv or .xlsx';

/** A manifest's name is an output folder and a journal key: the same rule as a row id, so it is safe as a folder name. */
const NAME_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._ -]{0,99}$/;
/** Last path segments that say nothing about the sheet (Google's `…/pub`, `…/export`): the name must be given. */
const GENERIC_SEGMENTS = new Set(['', 'pub', 'pubhtml', 'export', 'download', 'edit', 'view', 'gviz', 'tq', 'csv', 'xlsx']);
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function display(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

/** `campaign.xlsx#Autumn 2025` → the file and the sheet; anything else is a path as written. */
export function splitSheet(arg: string): { path: string; sheet?: string } {
  const m = /^(.*?\.xlsx)#(.+)$/is.exec(arg);
  return m ? { path: m[1]!, sheet: m[2]! } : { path: arg };
}

const problemAt = (file: string, message: string): Problem => ({ file, line: 0, field: '', message });

/** Pure: percent-escapes decoded where they are valid; a stray `%` (a sheet named "Q3 50%") stays as written. */
export function decodeLeniently(text: string): string {
  return text.replace(/(?:%[0-9a-f]{2})+/gi, (run) => {
    try {
      return decodeURIComponent(run);
    } catch {
      return run; // bytes that are not UTF-8
    }
  });
}

/** A manifest named by its file: the base name, and the sheet's name after it when one is picked. */
export function fileSource(abs: string, sheet?: string): ManifestSource {
  const base = path.basename(abs, path.extname(abs));
  const shown = display(abs) + (sheet === undefined ? '' : `#${sheet}`);
  return {
    kind: 'file',
    path: abs,
    ...(sheet !== undefined && { sheet }),
    name: sheet === undefined ? base : `${base}-${sheet}`,
    file: abs + (sheet === undefined ? '' : `#${sheet}`),
    shown,
  };
}

/**
 * Pure: a URL manifest as problems, logs, the reports and the journal show it: `name=` and the scheme and host, as the
 * argument was written but never the path or the query (a published Google Sheet's `/d/e/2PACX-…/pub` path is its
 * secret): `spring=https://docs.google.com/…`, `book-Autumn=https://cdn.example.com/…#Autumn`. Before a name is known,
 * the scheme and host only. The name keeps two sheets of one host apart, night after night.
 */
export function shownUrl(url: URL, name?: string, sheet?: string): string {
  const where = `${url.protocol}//${url.host}/…`;
  return name === undefined ? where : `${name}=${where}${sheet === undefined ? '' : `#${sheet}`}`;
}

/** Pure: whether a manifest's shown file is a URL manifest's (`name=https://host/…`): a file's path never holds "://". */
export function isUrlShown(file: string): boolean {
  return /^([^=/\\:]+=)?https?:\/\//i.test(file);
}

/** Pure: a URL argument (`https://…`, or `name=https://…`) as a source, or why it cannot be one. Never echoes its path or query. */
export function urlSource(arg: string): ManifestSource | Problem {
  const prefixed = /^([^=/\\:]+)=(https?:\/\/.*)$/is.exec(arg);
  const given = prefixed?.[1]?.trim();
  let url: URL;
  try {
    url = new URL(prefixed?.[2] ?? arg);
  } catch {
    // Only what comes before "://": the rest may hold a password (user:pass@) or a token.
    const scheme = /^(.*?https?):\/\//is.exec(arg)?.[1];
    return problemAt(scheme === undefined ? '(a URL)' : `${scheme}://…`, 'is not a valid URL (it is not repeated here: it may hold a password or a token)');
  }
  const sheet = url.hash.length > 1 ? decodeLeniently(url.hash.slice(1)) : undefined;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname)))
    return problemAt(shownUrl(url), 'only https URLs are read (plain http only from this machine: 127.0.0.1, localhost, ::1)');
  const named = manifestNameOfUrl(url, given, sheet);
  if ('problem' in named) return problemAt(shownUrl(url), named.problem);
  const shown = shownUrl(url, named.name, sheet);
  url.hash = '';
  return { kind: 'url', url: url.href, ...(sheet !== undefined && { sheet }), name: named.name, file: shown, shown };
}

/**
 * Pure: the name of a URL manifest, from the argument only (never the server's answer, so it is the same every night):
 * `name=` when given, else the last path segment without its extension; a Google Sheets link or a generic segment needs `name=`.
 */
export function manifestNameOfUrl(url: URL, given: string | undefined, sheet?: string): { name: string } | { problem: string } {
  const ask = (why: string) => ({
    problem: `${why}: write the manifest's name (its output folder and journal key) before the URL, as in spring-launch=https://…`,
  });
  if (given !== undefined) {
    if (!NAME_PATTERN.test(given)) return { problem: `the name ${JSON.stringify(given)} cannot be a folder name (letters, digits, spaces, '.', '_', '-')` };
    return { name: given };
  }
  if (/(^|\.)docs\.google\.com$/i.test(url.hostname)) return ask("a Google Sheets link does not say the sheet's name");
  const segments = url.pathname.split('/');
  const last = decodeLeniently(segments[segments.length - 1] ?? '');
  const base = last.replace(/\.[^.]*$/, '');
  if (GENERIC_SEGMENTS.has(base.toLowerCase()) || !NAME_PATTERN.test(base)) return ask(`the URL's last part ${JSON.stringify(last)} is not a usable name`);
  const name = sheet === undefined ? base : `${base}-${sheet}`;
  return NAME_PATTERN.test(name) ? { name } : ask(`${JSON.stringify(name)} is not a usable folder name`);
}

/** Pure: why a manifest's name cannot be an output folder (a workbook can name a sheet anything), or undefined. */
export function nameProblem(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[/\\\x00-\x1f]/.test(name) || /^\.*$/.test(name)) return `its name ${JSON.stringify(name)} cannot be a folder name: rename the sheet or the file`;
  return undefined;
}

/** A folder's manifests, sorted; spreadsheets it cannot read are problems (a silently skipped campaign is a night lost). */
async function folderSources(arg: string, abs: string, problems: Problem[]): Promise<ManifestSource[]> {
  const names = (await readdir(abs)).filter((n) => !n.startsWith('.') && !n.startsWith('~$')); // dotfiles, and Excel's owner files of open workbooks
  const found = names.filter((n) => MANIFEST_EXTENSIONS.includes(path.extname(n).toLowerCase())).sort();
  for (const n of names.filter((n) => OTHER_SPREADSHEETS.includes(path.extname(n).toLowerCase())).sort())
    problems.push(problemAt(display(path.join(abs, n)), otherSpreadsheetMessage(n)));
  if (found.length === 0) problems.push(problemAt(arg, `folder holds no manifests (${KINDS})`));
  return found.map((n) => fileSource(path.join(abs, n)));
}

/** A workbook in a format we do not read (.xls, .ods…): a manifest that cannot be read, which `--skip-invalid` may set aside. */
export function isOtherSpreadsheet(file: string): boolean {
  return OTHER_SPREADSHEETS.includes(path.extname(file).toLowerCase());
}

function otherSpreadsheetMessage(file: string): string {
  return `${path.extname(file)} workbooks are not read: open it and save it as .xlsx (Excel Workbook) or CSV`;
}

/** Files named on the command line, every manifest directly inside each folder named (sorted), and URLs, each once. */
export async function expandManifestArgs(args: readonly string[]): Promise<{ sources: ManifestSource[]; problems: Problem[] }> {
  const sources: ManifestSource[] = [];
  const problems: Problem[] = [];
  for (const arg of args) {
    if (/^([^=/\\:]+=)?https?:\/\//i.test(arg)) {
      const source = urlSource(arg);
      if ('message' in source) problems.push(source);
      else sources.push(source);
      continue;
    }
    // A file whose own name holds ".xlsx#" is that file, not a sheet of another.
    const exists = await stat(arg).then(
      () => true,
      () => false,
    );
    const { path: written, sheet } = exists ? { path: arg, sheet: undefined } : splitSheet(arg);
    const abs = path.resolve(written);
    const ext = path.extname(abs).toLowerCase();
    try {
      const info = await stat(abs);
      if (info.isDirectory()) sources.push(...(await folderSources(arg, abs, problems)));
      else if (MANIFEST_EXTENSIONS.includes(ext)) sources.push(fileSource(abs, sheet));
      else if (OTHER_SPREADSHEETS.includes(ext)) problems.push(problemAt(arg, otherSpreadsheetMessage(abs)));
      else problems.push(problemAt(arg, `not a manifest: expected a ${KINDS} file, a folder of them, or an https URL of a CSV or .xlsx`));
    } catch {
      problems.push(problemAt(arg, 'no such file or folder'));
    }
  }
  const seen = new Set<string>();
  // The same argument twice is read once; two sheets of one URL are two manifests (under one name, the same-name problem).
  const key = (s: ManifestSource) => (s.kind === 'url' ? `${s.name}\0${s.url}#${s.sheet ?? ''}` : s.file);
  const unique = sources.filter((s) => {
    if (seen.has(key(s))) return false;
    seen.add(key(s));
    return true;
  });
  return { sources: unique, problems };
}
