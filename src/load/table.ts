/** A sheet as rows under a header, read the same way from a CSV and from an .xlsx worksheet. */
import type { Problem } from './problem.js';
import type { RawRow, RawValue } from './raw.js';

/** One line of a sheet: the line a user sees it on (CSV line, worksheet row number) and its cells, text or typed. */
export interface TableRecord {
  line: number;
  cells: readonly unknown[];
}

/** "Generate Audio " → "generate_audio": marketers type headers by hand. */
export function normaliseHeader(name: string): string {
  return name
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}

export function isBlankCell(cell: unknown): boolean {
  return cell === undefined || cell === null || (typeof cell === 'string' && cell.trim() === '');
}

/** How a column is named in a message when it has no header: CSV says "column 3", a worksheet "column C". */
export type ColumnLabel = (index: number) => string;

export const csvColumn: ColumnLabel = (i) => `column ${i + 1}`;

/** The header row's cells as field names, with a problem for a name given twice. */
export function readHeader(header: TableRecord, file: string, problems: Problem[]): string[] {
  const names = header.cells.map((cell) => (isBlankCell(cell) ? '' : normaliseHeader(String(cell))));
  const seen = new Set<string>();
  for (const name of names) {
    if (name !== '' && seen.has(name)) problems.push({ file, line: header.line, field: name, message: 'column appears twice in the header' });
    seen.add(name);
  }
  return names;
}

/** One body record as a RawRow, or undefined for a blank row (spreadsheets export blank rows as ";;;"). */
export function readRecord(
  names: readonly string[],
  record: TableRecord,
  file: string,
  problems: Problem[],
  label: ColumnLabel = csvColumn,
): RawRow | undefined {
  if (record.cells.every(isBlankCell)) return undefined;
  const { line } = record;
  const fields = new Map<string, RawValue>();
  record.cells.forEach((cell, i) => {
    const name = names[i];
    if (name === undefined || name === '') {
      if (!isBlankCell(cell))
        problems.push({ file, line, field: label(i), message: `${JSON.stringify(String(cell).trim().slice(0, 40))} is in a column without a header name` });
      return;
    }
    fields.set(name, { value: cell, file, line });
  });
  return { file, line, fields };
}
