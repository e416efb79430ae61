/** An .xlsx's size checked from its zip directory before exceljs opens it: exceljs unpacks and models every sheet in memory. */

export interface WorkbookLimits {
  /** The workbook file itself (the same cap as a manifest URL's download). */
  fileBytes: number;
  /** Every worksheet's XML together: exceljs reads all of them, whichever sheet is picked. */
  sheetsBytes: number;
  /** The shared strings (xl/sharedStrings.xml): the text of every cell. */
  sharedStringsBytes: number;
  /** Everything in the zip, unpacked. */
  unpackedBytes: number;
}

/**
 * A 100,000-row manifest of six columns is 3–4 MB as a file and 24–36 MB of sheet XML, which exceljs reads in about
 * 2 s and 500–600 MB of memory; 64 MB of sheets takes about 1 GB, well inside Node's heap (a 17 MB file unpacking to
 * hundreds of MB used to end the process out of memory).
 */
export const WORKBOOK_LIMITS: WorkbookLimits = { fileBytes: 20_000_000, sheetsBytes: 64_000_000, sharedStringsBytes: 64_000_000, unpackedBytes: 192_000_000 };

export interface ZipEntrySize {
  path: string;
  uncompressedSize: number;
}

const mb = (bytes: number) => `${Math.round(bytes / 1e5) / 10} MB`;
const WHAT_TO_DO = 'move the manifest to a workbook of its own, split the sheet, or save it as CSV';

/** Pure: why a workbook of this size with these zip entries is too big to read, or undefined. */
export function workbookSizeProblem(fileBytes: number, entries: readonly ZipEntrySize[], limits: WorkbookLimits = WORKBOOK_LIMITS): string | undefined {
  if (fileBytes > limits.fileBytes)
    return `is ${mb(fileBytes)}, larger than ${mb(limits.fileBytes)} (the most an .xlsx manifest may be): remove pictures and other sheets, split the sheet, or save it as CSV`;
  const sum = (pick: (path: string) => boolean) => entries.filter((e) => pick(e.path)).reduce((total, e) => total + e.uncompressedSize, 0);
  const sheets = sum((p) => /(^|\/)worksheets\/[^/]+\.xml$/i.test(p));
  if (sheets > limits.sheetsBytes)
    return `its worksheets unpack to ${mb(sheets)} (every sheet of a workbook is read; the most is ${mb(limits.sheetsBytes)}, about 200,000 rows of six columns): ${WHAT_TO_DO}`;
  const strings = sum((p) => /(^|\/)sharedStrings\.xml$/i.test(p));
  if (strings > limits.sharedStringsBytes) return `its text unpacks to ${mb(strings)} (the most is ${mb(limits.sharedStringsBytes)}): ${WHAT_TO_DO}`;
  const all = sum(() => true);
  if (all > limits.unpackedBytes) return `unpacks to ${mb(all)} (the most is ${mb(limits.unpackedBytes)}): ${WHAT_TO_DO}`;
  return undefined;
}

/** The entries a zip's central directory lists, with their declared sizes, read without unpacking anything. */
export async function zipEntries(bytes: Uint8Array): Promise<ZipEntrySize[] | { problem: string }> {
  try {
    const { default: unzipper } = await import('unzipper'); // loaded only when a workbook is read, as exceljs
    const directory = await unzipper.Open.buffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return directory.files.map((f) => ({ path: f.path, uncompressedSize: f.uncompressedSize }));
  } catch {
    return { problem: 'cannot be read as an .xlsx workbook (its zip directory is missing or cut short): open it and save it again as .xlsx, or as CSV' };
  }
}
