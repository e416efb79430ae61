import { CsvError, parse } from 'csv-parse/sync';
import iconv from 'iconv-lite';
import type { Problem } from './problem.js';
import type { RawRow } from './raw.js';
import { readHeader, readRecord } from './table.js';

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

/** The line a user looks at for a CSV syntax error: the line the failing cell starts on (an unclosed quote's own line). */
export function csvErrorLine(text: string, error: CsvError): number {
  // csv-parse's `lines` is how far it read before giving up (past the mistake); `bytes` is where the failing cell starts.
  const bytes = Number(error.bytes);
  if (!Number.isInteger(bytes) || bytes < 0) return Number(error.lines ?? 0);
  const utf8 = Buffer.from(text, 'utf8');
  let line = 1;
  for (let i = utf8.indexOf(0x0a); i !== -1 && i < bytes; i = utf8.indexOf(0x0a, i + 1)) line++;
  // Skipped blank lines do not move `bytes`: the cell starts after them.
  for (let i = bytes; utf8[i] === 0x0a; i++) line++;
  return line;
}

/** csv-parse's message without its own line count (the problem's file:line says where), with what to do. */
function csvSyntaxMessage(error: unknown): string {
  if (error instanceof CsvError) {
    const column = `column ${Number(error.column) + 1}`;
    if (error.code === 'CSV_QUOTE_NOT_CLOSED')
      return `a quoted cell (${column}) starts here and its closing " is missing (a quote inside a cell is written "")`;
    if (error.code === 'INVALID_OPENING_QUOTE') return `a " inside a cell that is not quoted (${column}): put the whole cell in quotes and write the " as ""`;
    if (error.code === 'CSV_INVALID_CLOSING_QUOTE') return `a quoted cell (${column}) has text after its closing ": write each " inside a quoted cell as ""`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Invalid Record Length: /, '').replace(/ at line \d+/, '');
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
    const line = error instanceof CsvError ? csvErrorLine(text, error) + lineOffset : 0;
    problems.push({ file, line, field: '', message: `CSV syntax: ${csvSyntaxMessage(error)}` });
    return { rows: [], problems };
  }
  const table = records.map(({ record, info, raw }) => {
    // info.lines is the record's last line; a quoted cell with line breaks started earlier.
    const breaks = raw.replace(/^\n+/, '').replace(/\n$/, '').split('\n').length - 1;
    return { line: info.lines - breaks + lineOffset, cells: record };
  });
  const [header, ...body] = table;
  if (!header) {
    problems.push({ file, line: 1, field: '', message: 'the file is empty: expected a header row (id, image, prompt, duration, …)' });
    return { rows: [], problems };
  }
  const names = readHeader(header, file, problems);
  const rows: RawRow[] = [];
  for (const record of body) {
    const row = readRecord(names, record, file, problems);
    if (row) rows.push(row);
  }
  return { rows, problems };
}
