/** An .xlsx manifest: one worksheet read as a CSV is (a header row, then rows), with the cells' own types. */
import type ExcelJS from 'exceljs';
import type { Problem } from './problem.js';
import type { RawRow } from './raw.js';
import { isBlankCell, readHeader, readRecord, type ColumnLabel, type TableRecord } from './table.js';
import { formattedNumberProblem, hasSavedResults, isLinkColumn, readCell, type CellRead } from './xlsx-cells.js';
import { workbookSizeProblem, zipEntries } from './xlsx-zip.js';

export interface LoadedXlsxManifest {
  rows: RawRow[];
  problems: Problem[];
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** OLE compound file: Excel 97-2003 .xls, and any password-protected (encrypted) workbook, .xlsx included. */
const CFB_MAGIC = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];

const startsWith = (bytes: Uint8Array, magic: readonly number[]) => magic.every((b, i) => bytes[i] === b);

export function isZip(bytes: Uint8Array): boolean {
  return startsWith(bytes, ZIP_MAGIC);
}

/** An OLE compound file: an encrypted .xlsx or an .xls, read as a workbook so its problem says so. */
export function isOleWorkbook(bytes: Uint8Array): boolean {
  return startsWith(bytes, CFB_MAGIC);
}

/** "A", "B" … "Z", "AA": how a spreadsheet names the column at a 0-based index. */
export function columnLetters(index: number): string {
  let n = index + 1;
  let letters = '';
  while (n > 0) {
    letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
    n = Math.floor((n - 1) / 26);
  }
  return letters;
}

const sheetColumn: ColumnLabel = (i) => `column ${columnLetters(i)}`;

/** Why these bytes are not a workbook clipmill can open, or undefined. */
function formatProblem(bytes: Uint8Array): string | undefined {
  if (startsWith(bytes, CFB_MAGIC))
    return 'is password-protected, or an Excel 97-2003 workbook named .xlsx: remove the password (or open it and save as .xlsx or CSV)';
  if (!isZip(bytes)) return 'is not an .xlsx workbook (an .xlsx file is a zip archive; this one is not): save it as .xlsx or CSV';
  return undefined;
}

async function openWorkbook(bytes: Uint8Array): Promise<ExcelJS.Workbook | { problem: string }> {
  const problem = formatProblem(bytes);
  if (problem) return { problem };
  const entries = await zipEntries(bytes);
  if ('problem' in entries) return entries;
  const tooBig = workbookSizeProblem(bytes.byteLength, entries);
  if (tooBig) return { problem: tooBig };
  // Loaded only when a workbook is read: exceljs costs every other command about 130 ms and 27 MiB at start.
  const { default: Excel } = await import('exceljs');
  const workbook = new Excel.Workbook();
  try {
    // exceljs types its argument as an ArrayBuffer; its zip reader takes a Node Buffer as it is (no copy).
    await workbook.xlsx.load(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as unknown as ArrayBuffer);
  } catch (error) {
    const why = (error instanceof Error ? error.message : String(error)).split('\n')[0]?.slice(0, 120) ?? '';
    return { problem: `cannot be read as an .xlsx workbook (${why}): open it and save it again as .xlsx, or as CSV` };
  }
  return workbook;
}

/**
 * The sheet asked for by its exact name, or the first visible one. Not ignoring case as Excel does: the name written
 * names the manifest, so `#autumn` and `#Autumn` would be two manifests whose rows are paid twice.
 */
function pickSheet(workbook: ExcelJS.Workbook, name: string | undefined): ExcelJS.Worksheet | { problem: string } {
  const sheets = workbook.worksheets;
  if (sheets.length === 0) return { problem: 'the workbook holds no worksheets' };
  if (name === undefined) return sheets.find((s) => s.state === 'visible') ?? sheets[0]!;
  const found = sheets.find((s) => s.name === name);
  if (found) return found;
  const cased = sheets.find((s) => s.name.toLowerCase() === name.toLowerCase());
  if (cased)
    return { problem: `no sheet ${JSON.stringify(name)}: did you mean ${JSON.stringify(cased.name)}? (write the sheet's name exactly as the workbook has it)` };
  return { problem: `has no sheet named ${JSON.stringify(name)} (its sheets: ${sheets.map((s) => JSON.stringify(s.name)).join(', ')})` };
}

interface SheetContext {
  file: string;
  problems: Problem[];
  calculated: boolean;
}

/** A worksheet row's cells by column (a merged area counts once, in its first cell; one reaching down from a row above is a problem); `readable` is false when a cell's problem was listed. */
function rowCells(row: ExcelJS.Row, names: readonly string[], sheet: SheetContext): { cells: unknown[]; readable: boolean } {
  const { file, problems } = sheet;
  const sparse: unknown[] = [];
  let readable = true;
  row.eachCell({ includeEmpty: false }, (cell, column) => {
    const i = column - 1;
    const name = names[i] ?? '';
    if (cell.isMerged && cell.master !== cell) {
      // Merged down over rows, the value shows on each but belongs to the first: this row would read it as blank.
      if (cell.master.row !== cell.row && name !== '') {
        const message = `${cell.address} is inside the merged cells that start at ${cell.master.address}, whose value belongs to that row only: unmerge them and fill in each row`;
        problems.push({ file, line: row.number, field: name, message });
        readable = false;
      }
      return;
    }
    const formatted = formattedNumberProblem(cell.value, cell.numFmt, name);
    const read: CellRead = formatted ? { problem: formatted } : readCell(cell.value, isLinkColumn(name), sheet.calculated);
    if ('problem' in read) {
      problems.push({ file, line: row.number, field: name || sheetColumn(i), message: `${cell.address}: ${read.problem}` });
      readable = false;
    } else sparse[i] = read.value;
  });
  const width = Math.max(sparse.length, names.length);
  return { cells: Array.from({ length: width }, (_, i) => sparse[i]), readable };
}

/**
 * Reads one worksheet of an .xlsx manifest (the first visible one unless `sheet` names another): the first row with
 * values is the header, as in a CSV; every row keeps the sheet's own row number as its line.
 */
export async function parseXlsxManifest(bytes: Uint8Array, file: string, sheet?: string): Promise<LoadedXlsxManifest> {
  const problems: Problem[] = [];
  const workbook = await openWorkbook(bytes);
  if ('problem' in workbook) return { rows: [], problems: [{ file, line: 0, field: '', message: workbook.problem }] };
  const worksheet = pickSheet(workbook, sheet);
  if ('problem' in worksheet) return { rows: [], problems: [{ file, line: 0, field: '', message: worksheet.problem }] };
  const rows: RawRow[] = [];
  const context: SheetContext = { file, problems, calculated: hasSavedResults(worksheet) };
  let names: string[] | undefined;
  worksheet.eachRow({ includeEmpty: false }, (row) => {
    if (names === undefined) {
      const { cells } = rowCells(row, [], context);
      // A row of blank cells (spaces, ="" formulas) above the header is not the header.
      if (!cells.every(isBlankCell)) names = readHeader({ line: row.number, cells }, file, problems);
      return;
    }
    const { cells, readable } = rowCells(row, names, context);
    if (!readable) return; // its cells' problems are listed; the row's own rules wait for them to be fixed
    const record: TableRecord = { line: row.number, cells };
    const raw = readRecord(names, record, file, problems, sheetColumn);
    if (raw) rows.push(raw);
  });
  if (names === undefined)
    problems.push({
      file,
      line: 1,
      field: '',
      message: `the sheet ${JSON.stringify(worksheet.name)} is empty: expected a header row (id, image, prompt, duration, …)`,
    });
  return { rows, problems };
}
