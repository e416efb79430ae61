/** One worksheet cell as the value a row field gets: typed as the spreadsheet typed it, or why it cannot be read. */
import type { CellValue, Worksheet } from 'exceljs';

export type CellRead = { value: unknown } | { problem: string };

/** Columns that name an image or a video: a linked cell there stands for its link when the link is a web address. */
export function isLinkColumn(name: string): boolean {
  return name === 'image' || name === 'end_image' || /^element_\d+_(frontal|references|video)$/.test(name);
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * A date cell as ISO 8601 text: `2025-03-14`, or `2025-03-14T09:30:00` when it has a time. Spreadsheets store the
 * date and time as written, with no time zone; exceljs hands them over as that wall-clock time in UTC.
 */
export function isoOfCellDate(date: Date): string {
  const at = new Date(Math.round(date.getTime() / 1000) * 1000); // a stored 09:30 can come back as 09:29:59.9997
  const day = `${pad(at.getUTCFullYear(), 4)}-${pad(at.getUTCMonth() + 1)}-${pad(at.getUTCDate())}`;
  if (at.getUTCHours() === 0 && at.getUTCMinutes() === 0 && at.getUTCSeconds() === 0) return day;
  return `${day}T${pad(at.getUTCHours())}:${pad(at.getUTCMinutes())}:${pad(at.getUTCSeconds())}`;
}

function plainText(text: unknown): string {
  if (typeof text === 'string') return text;
  if (typeof text === 'object' && text !== null && 'richText' in text && Array.isArray(text.richText))
    return (text.richText as { text?: unknown }[]).map((run) => (typeof run.text === 'string' ? run.text : '')).join('');
  return typeof text === 'number' || typeof text === 'boolean' ? String(text) : '';
}

function errorProblem(error: unknown): string {
  return `the cell shows the error ${String(error)}: fix the formula or the value, or clear the cell`;
}

/**
 * A cell's value: numbers, booleans and text as they are, dates as ISO text, formulas as their saved result, rich text
 * as plain text. `calculated`: the sheet was saved by a program that calculates (some formula has a saved result).
 */
export function readCell(value: CellValue, linkColumn: boolean, calculated = false): CellRead {
  if (value === null || value === undefined) return { value: undefined };
  // 15 significant digits, as spreadsheet programs show numbers (and export them to CSV): =(0.7+0.1)*10 is 8, 0.1+0.2 is 0.3.
  if (typeof value === 'number') return { value: Number(value.toPrecision(15)) };
  if (typeof value === 'string' || typeof value === 'boolean') return { value };
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? { problem: 'the cell holds a date that is not valid' } : { value: isoOfCellDate(value) };
  if ('error' in value) return { problem: errorProblem(value.error) };
  if ('formula' in value || 'sharedFormula' in value) {
    const result = value.result;
    // Excel and LibreOffice save an empty text result (="", =IF(…,"")) as an empty value, which exceljs reads as none:
    // in a calculated sheet that is a blank. A program that does not calculate (a script) leaves every formula without one.
    if (result === undefined)
      return calculated ? { value: undefined } : { problem: 'formula has no saved value; open and save the file in a spreadsheet program' };
    return readCell(result, linkColumn);
  }
  if ('richText' in value) return { value: plainText(value) };
  if ('hyperlink' in value) {
    const text = plainText(value.text).trim();
    const link = typeof value.hyperlink === 'string' ? value.hyperlink.trim() : '';
    // "Hero image" linked to https://cdn…/hero.jpg in an image column means the file; elsewhere the words are meant.
    return { value: linkColumn && /^https?:\/\//i.test(link) ? link : text || link };
  }
  return { problem: 'the cell holds a kind of value clipmill cannot read: type the value in plainly' };
}

/** Columns read as numbers or yes/no: a number format there changes only how the value looks. */
export function isNumberColumn(name: string): boolean {
  return /^(duration|cfg_scale|generate_audio|shot_\d+_duration)$/.test(name);
}

/**
 * Why a number cell in a text column (an id, a prompt) cannot be read as the sheet shows it: its number format makes
 * the text (`000` shows 7 as 007) and exceljs gives the number only. General, Text (`@`) and `0` on a whole number read as shown.
 */
export function formattedNumberProblem(value: CellValue, numFmt: string | undefined, column: string): string | undefined {
  const result = typeof value === 'object' && value !== null && 'result' in value ? value.result : undefined;
  const n = typeof value === 'number' ? value : typeof result === 'number' ? result : undefined;
  const format = numFmt?.trim() ?? 'General';
  if (n === undefined || column === '' || isNumberColumn(column) || /^(general|@)$/i.test(format)) return undefined;
  if (format === '0' && Number.isInteger(n)) return undefined;
  return `the cell shows the number ${n} through the number format ${JSON.stringify(format)}, which clipmill does not apply: format the cells as Text and type the ${column} as it should read`;
}

/** Whether a sheet's formulas were calculated when it was saved: some formula has a saved result. */
export function hasSavedResults(worksheet: Worksheet): boolean {
  let found = false;
  worksheet.eachRow({ includeEmpty: false }, (row) => {
    if (!found)
      row.eachCell({ includeEmpty: false }, (cell) => {
        const value = cell.value;
        if (typeof value === 'object' && value !== null && ('formula' in value || 'sharedFormula' in value) && value.result !== undefined) found = true;
      });
  });
  return found;
}
