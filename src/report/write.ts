import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import type { Report } from './build.js';
import { renderHtml } from './html.js';
import { renderCsv, renderJson, renderLedgerCsv, renderMarkdown } from './render.js';

/** Writes a file so that readers see the old or the new content, never half of one. */
export async function writeFileAtomic(file: string, content: string): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(content, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

export async function writeReports(outDir: string, report: Report): Promise<string[]> {
  const files = [
    [path.join(outDir, 'report.json'), renderJson(report)],
    [path.join(outDir, 'report.csv'), renderCsv(report)],
    [path.join(outDir, 'report.md'), renderMarkdown(report)],
    [path.join(outDir, 'report.html'), renderHtml(report)],
    [path.join(outDir, 'ledger.csv'), renderLedgerCsv(report)],
  ] as const;
  for (const [file, content] of files) await writeFileAtomic(file, content);
  return files.map(([file]) => file);
}
