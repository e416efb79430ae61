/** What the review page shows and may mark, from the folder's journal; and the journal's row states, re-read only when it changed. */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { reportFromReplay } from '../commands/report.js';
import type { RowState } from '../lifecycle/events.js';
import type { Report } from '../report/build.js';
import { Journal, JOURNAL_FILE, STATE_DIR } from '../state/journal.js';
import type { Markable } from './posted.js';
import { longestPrompt, reviewStandingOf } from './redo.js';
import type { Served } from './serve-file.js';

/** The report as the page shows it, the files it may serve (by id) and the rows it may mark. */
export interface View {
  report: Report;
  files: Map<string, Served>;
  rows: Map<string, Markable>;
}

export const fileId = (relative: string) => createHash('sha256').update(relative).digest('hex').slice(0, 24);

const journalOf = (outDir: string) => path.join(outDir, STATE_DIR, JOURNAL_FILE);

/** The journal file's identity and size: appended to, or replaced by a compaction, it differs. */
async function signatureOf(outDir: string): Promise<string> {
  const info = await stat(journalOf(outDir)).catch(() => undefined);
  return info === undefined ? 'none' : `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
}

/** The page's rows, from the report (its status says whether the video is there) and the plan's rows (their prompts). */
export async function loadView(outDir: string, states: JournalStates): Promise<View> {
  const signature = await signatureOf(outDir);
  const replay = await Journal.replay(outDir, { planItems: true });
  states.remember(signature, replay.states);
  const { report } = await reportFromReplay(replay, outDir, journalOf(outDir));
  const prompts = new Map((replay.lastPlan?.items ?? []).map((item) => [item.key, longestPrompt(item.row.request)]));
  const files = new Map<string, Served>();
  const rows = new Map<string, Markable>();
  // A video stays within the output folder, an input image within its own folder, once symlinks are followed.
  const add = (relative: string | null, within?: string) => {
    if (relative === null || /^https?:/.test(relative)) return;
    const file = path.resolve(outDir, relative);
    files.set(fileId(relative), { path: file, within: within ?? path.dirname(file) });
  };
  for (const row of report.rows) {
    if (row.status === 'done') add(row.output, outDir);
    add(row.earlier_output, outDir);
    add(row.image);
    const key = `${row.manifest}/${row.id}`;
    const state = replay.states.get(key);
    // A failed row's run may have timed out, or its lost create been forgotten, and still be billed: the standing says, the report's "failed" does not.
    const standing = row.status === 'done' ? 'done' : reviewStandingOf(state?.request === row.request ? state : undefined);
    if (row.status === 'done' || row.status === 'failed') rows.set(key, { request: row.request, standing, promptChars: prompts.get(key) ?? 0 });
  }
  return { report, files, rows };
}

/** Every row's journal state, replayed again only when the journal changed (a click does not replay 100,000 rows). */
export class JournalStates {
  private signature: string | undefined;
  private states: ReadonlyMap<string, RowState> = new Map();

  constructor(private readonly outDir: string) {}

  remember(signature: string, states: ReadonlyMap<string, RowState>): void {
    this.signature = signature;
    this.states = states;
  }

  async current(): Promise<ReadonlyMap<string, RowState>> {
    const signature = await signatureOf(this.outDir);
    // Measured before the replay: a line appended meanwhile makes the next call replay again, never miss it.
    if (signature !== this.signature) this.remember(signature, (await Journal.replay(this.outDir)).states);
    return this.states;
  }
}
