import { CsvError, parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import type { Problem } from './problem.js';
import type { RawRow } from './raw.js';

export interface LoadedCsvManifest {
  rows: RawRow[];
  problems: Problem[];
}

/**
 * Decodes a spreadsheet export: UTF-8 (with or without BOM), UTF-16 ("Unicode text" exports)
 * and, when the bytes are not valid UTF-8, Windows-1252 (Excel's legacy "CSV (Comma delimited)").
 * The legacy and UTF-16 codecs are iconv-lite's: Node 20's TextDecoder('windows-1252') maps
 * 0x80–0x9F like Latin-1 (C1 controls), so € – ’ “ ” would reach the prompt as invisible garbage.
 */
export function decodeSpreadsheetText(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return iconv.decode(bytes.subarray(2), 'utf-16le', { stripBOM: false });
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return iconv.decode(bytes.subarray(2), 'utf-16be', { stripBOM: false });
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(start));
  } catch {
    return iconv.decode(bytes, 'windows-1252');
  }
}

/** Picks the delimiter that splits the header line most (outside quotes); Excel in many locales writes `;`. */
export function sniffDelimiter(headerLine: string): string {
  const counts = new Map<string, number>([
    [',', 0],
    [';', 0],
    ['\t', 0],
  ]);
  let quoted = false;
  for (const ch of headerLine) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && counts.has(ch)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  let best = ',';
  for (const [ch, n] of counts) if (n > (counts.get(best) ?? 0)) best = ch;
  return best;
}

/** "Generate Audio " → "generate_audio": marketers type headers by hand. */
export function normaliseHeader(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

/** Parses a CSV manifest: a header row, then one row per record, keeping each record's first line. */
export function parseCsvManifest(bytes: Uint8Array, file: string): LoadedCsvManifest {
  const problems: Problem[] = [];
  // Line endings are normalised first so csv-parse's line counts stay exact for CRLF and old-Mac CR files.
  let text = decodeSpreadsheetText(bytes).replace(/\r\n?/g, '\n');
  let lineOffset = 0;
  const sep = /^sep=(.)\n/i.exec(text);
  if (sep) {
    text = text.slice(sep[0].length);
    lineOffset = 1;
  }
  const delimiter = sep?.[1] ?? sniffDelimiter(text.slice(0, !text.includes('\n') ? undefined : text.indexOf('\n')));
  let records: { record: string[]; info: { lines: number }; raw: string }[];
  try {
    records = parse(text, { delimiter, info: true, raw: true, skip_empty_lines: true, relax_column_count: true }) as unknown as typeof records;
  } catch (error) {
    const line = error instanceof CsvError ? Number(error.lines ?? 0) + lineOffset : 0;
    const message = error instanceof Error ? error.message.replace(/^Invalid Record Length: /, '') : String(error);
    problems.push({ file, line, field: '', message: `CSV syntax: ${message}` });
    return { rows: [], problems };
  }
  const [header, ...body] = records;
  if (!header) {
    problems.push({ file, line: 1, field: '', message: 'the file is empty: expected a header row (id, image, prompt, duration, …)' });
    return { rows: [], problems };
  }
  const names = header.record.map(normaliseHeader);
  const seen = new Set<string>();
  names.forEach((name) => {
    if (name !== '' && seen.has(name)) problems.push({ file, line: 1 + lineOffset, field: name, message: 'column appears twice in the header' });
    seen.add(name);
  });
  const rows: RawRow[] = [];
  for (const { record, info, raw } of body) {
    // info.lines is the record's last line; a quoted cell with line breaks started earlier.
    const breaks = raw.replace(/^\n+/, '').replace(/\n$/, '').split('\n').length - 1;
    const line = info.lines - breaks + lineOffset;
    if (record.every((cell) => cell.trim() === '')) continue; // spreadsheets export blank rows as ";;;"
    const fields = new Map<string, { value: unknown; file: string; line: number }>();
    record.forEach((cell, i) => {
      const name = names[i];
      if (name === undefined || name === '') {
        if (cell.trim() !== '')
          problems.push({ file, line, field: `column ${i + 1}`, message: `${JSON.stringify(cell.trim().slice(0, 40))} is in a column without a header name` });
        return;
      }
      fields.set(name, { value: cell, file, line });
    });
    rows.push({ file, line, fields });
  }
  return { rows, problems };
}
