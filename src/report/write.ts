import path from 'node:path';
import { writeFileAtomic } from '../state/disk-write.js';
import type { Report } from './build.js';
import { renderHtml } from './html.js';
import { renderCsv, renderJson, renderLedgerCsv, renderMarkdown } from './render.js';

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
