import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Report } from './build.js';
import { renderHtml } from './html.js';
import { renderCsv, renderJson, renderLedgerCsv, renderMarkdown } from './render.js';

/** Text is written in batches of about this many characters: a report of 100,000 rows is never one string. */
const BATCH_CHARS = 256 * 1024;

/** Writes a file so that readers see the old or the new content, never half of one; `content` may come in pieces. */
export async function writeFileAtomic(file: string, content: string | Iterable<string>): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temporary, 'w');
  try {
    let batch: string[] = [];
    let chars = 0;
    for (const piece of typeof content === 'string' ? [content] : content) {
      batch.push(piece);
      chars += piece.length;
      if (chars < BATCH_CHARS) continue;
      // writeFile, not write: it loops until every byte is written (a write may take only part of it on a full disk).
      await handle.writeFile(batch.join(''), 'utf8');
      batch = [];
      chars = 0;
    }
    await handle.writeFile(batch.join(''), 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

export async function writeReports(outDir: string, report: Report): Promise<string[]> {
  // Each file is rendered as it is written, one after the other.
  const files = [
    [path.join(outDir, 'report.json'), () => renderJson(report)],
    [path.join(outDir, 'report.csv'), () => renderCsv(report)],
    [path.join(outDir, 'report.md'), () => renderMarkdown(report)],
    [path.join(outDir, 'report.html'), () => renderHtml(report)],
    [path.join(outDir, 'ledger.csv'), () => renderLedgerCsv(report)],
  ] as const;
  for (const [file, render] of files) await writeFileAtomic(file, render());
  return files.map(([file]) => file);
}
