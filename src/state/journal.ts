import { appendFile, mkdir, open, readdir, readFile, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { JournalEvent, NewEvent, RowState, UploadRecord } from '../lifecycle/events.js';
import { redactJson } from '../infra/http.js';
import { InputError } from '../load/problem.js';
import { JournalWriteError, writeFully } from './disk-write.js';
import { foldJournalFile, parseEvent, unterminatedEvent } from './journal-file.js';
import { Replay, type ReplayOptions } from './replay.js';
import type { StateStore } from './store.js';

export const STATE_DIR = '.clipmill';
export const JOURNAL_FILE = 'journal.jsonl';

export type { NewEvent } from '../lifecycle/events.js';

/** A journal's text read line by line: the events that parse, and the line numbers (1-based) of those that do not. */
export interface ReadJournal {
  events: JournalEvent[];
  /** The parsed lines' text, verbatim, in order (what `repair` keeps). */
  lines: string[];
  /** Damaged lines before the last: something was written there that cannot be read back. */
  damaged: { line: number; text: string }[];
  /** The last line did not parse: a write that never finished (a crash or a full disk), whose side effect never started. */
  tornTail: boolean;
}

/**
 * Reads every line that parses; never throws (`clipmill repair` and `parseJournal` both start here).
 * A last line without its newline is kept when `unterminatedEvent` says so (`Journal.open` then ends it
 * with its newline: dropping a `submitted` would leave a paid run to a look-up fal cannot do); otherwise it
 * is torn (its write never finished) and cut off.
 */
export function readJournalText(text: string): ReadJournal {
  const all = text.split('\n');
  const unterminated = all.at(-1) !== '';
  if (!unterminated) all.pop();
  const result: ReadJournal = { events: [], lines: [], damaged: [], tornTail: false };
  all.forEach((line, i) => {
    const event = i === all.length - 1 && unterminated ? unterminatedEvent(line) : parseEvent(line);
    if (event) {
      result.events.push(event);
      result.lines.push(line);
    } else if (i === all.length - 1) result.tornTail = true;
    else result.damaged.push({ line: i + 1, text: line });
  });
  return result;
}

/** `<out>` of `<out>/.clipmill/journal.jsonl`, for advice that names the folder. */
function outDirOfJournal(file: string): string {
  return path.basename(path.dirname(file)) === STATE_DIR ? path.dirname(path.dirname(file)) : path.dirname(file);
}

/**
 * Parses journal text; a torn last line (a crash mid-write) is ignored, a bad line elsewhere is an error
 * whose advice is `clipmill repair` (moving the journal aside would make the next run pay for every row again).
 */
export function parseJournal(text: string, file: string): JournalEvent[] {
  const read = readJournalText(text);
  const first = read.damaged[0];
  if (first) {
    const more = read.damaged.length > 1 ? ` (and ${read.damaged.length - 1} more)` : '';
    const message =
      `the journal line is damaged${more}; run \`clipmill repair --out ${outDirOfJournal(file)}\` to rebuild the journal from its readable lines ` +
      `and the sidecars beside the videos (deleting or renaming the journal would make the next run pay again for every row it recorded)`;
    throw new InputError([{ file, line: first.line, field: '', message }]);
  }
  return read.events;
}

/** A video's sidecar, `<video>.json` beside it: the journal's record of the download, to rebuild a lost or damaged journal from. */
export function sidecarPathFor(videoPath: string): string {
  return `${videoPath}.json`;
}

export const SIDECAR_SUFFIX = '.mp4.json';

/** Video sidecars in the folder's manifest folders (`<out>/<manifest>/*.mp4.json`), relative to `outDir`. */
export async function findSidecars(outDir: string): Promise<string[]> {
  const found: string[] = [];
  const folders = await readdir(outDir, { withFileTypes: true }).catch(() => []);
  for (const folder of folders) {
    if (!folder.isDirectory() || folder.name.startsWith('.')) continue;
    const names = await readdir(path.join(outDir, folder.name)).catch(() => [] as string[]);
    for (const name of names) if (name.endsWith(SIDECAR_SUFFIX) && !name.startsWith('.')) found.push(path.join(folder.name, name));
  }
  return found.sort();
}

/**
 * A journal that is not clean, read whole: a damaged line before the last is refused with the line and the
 * advice to run `clipmill repair`; a torn last line (a crash or a full disk mid-write) is cut off, so it never
 * ends up in the middle of the file.
 */
async function readUnclean(file: string): Promise<Replay> {
  const text = await readFile(file, 'utf8');
  const read = readJournalText(text);
  if (read.damaged.length > 0) parseJournal(text, file); // throws, with the line and the advice
  if (read.tornTail) {
    const body = text.endsWith('\n') ? text.slice(0, -1) : text;
    await truncate(file, Buffer.byteLength(body.slice(0, body.lastIndexOf('\n') + 1))).catch((error: unknown) => {
      throw new JournalWriteError(file, error);
    });
  } else if (text.length > 0 && !text.endsWith('\n')) {
    // A whole event whose newline was never written: ended here, so the next event starts a line of its own.
    await appendFile(file, '\n').catch((error: unknown) => {
      throw new JournalWriteError(file, error);
    });
  }
  return Replay.of(read.events);
}

/** A journal gone while videos with sidecars remain: starting afresh would pay again for every row. */
async function refuseLostJournal(outDir: string, file: string): Promise<void> {
  const sidecars = await findSidecars(outDir);
  if (sidecars.length === 0) return;
  const message =
    `the journal is missing or empty, but ${sidecars.length} downloaded video${sidecars.length === 1 ? ' has' : 's have'} a sidecar here (${sidecars[0]}${sidecars.length > 1 ? ', …' : ''}): ` +
    `run \`clipmill repair --out ${outDir}\` first, so that the next run does not pay for them again (to really start afresh, use another --out)`;
  throw new InputError([{ file, line: 0, field: '', message }]);
}

/**
 * The append-only checkpoint of a run folder. Each event is written and fsynced before the caller
 * takes its next side effect; the in-memory state is the fold of every event.
 */
export class Journal implements StateStore {
  private pending: { event: JournalEvent; resolve: (state: RowState | undefined) => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private broken: JournalWriteError | undefined;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    readonly session: string,
    /** Bytes of whole lines in the file: a failed write is cut back to here. */
    private size: number,
    /** What the events so far add up to (row states, uploads, ledger, last plan): the events themselves are not kept. */
    readonly replay: Replay,
  ) {}

  /**
   * Opens the journal for appending; every event written carries `session`. A torn last line is cut
   * off; a damaged line elsewhere, or a journal gone while videos with sidecars remain, is refused with
   * the advice to run `clipmill repair` (starting afresh would pay again for every row).
   */
  static async open(outDir: string, session = new Date().toISOString()): Promise<Journal> {
    const dir = path.join(outDir, STATE_DIR);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, JOURNAL_FILE);
    let replay = new Replay();
    if (!(await foldJournalFile(file, (event) => replay.apply(event)))) replay = await readUnclean(file);
    if (replay.applied === 0) await refuseLostJournal(outDir, file);
    const handle = await open(file, 'a');
    return new Journal(file, handle, session, (await handle.stat()).size, replay);
  }

  /** Reads a folder's journal without opening it for writing (status, estimate, report). */
  static async read(outDir: string): Promise<Map<string, RowState>> {
    return (await Journal.replay(outDir)).states;
  }

  /** A folder's journal folded without opening it for writing (status, estimate, report, a dry run); `planItems` for a report. */
  static async replay(outDir: string, options: ReplayOptions = {}): Promise<Replay> {
    const file = path.join(outDir, STATE_DIR, JOURNAL_FILE);
    const replay = new Replay(options);
    // A run may be appending: its unfinished last line is left out, never a reason to read the whole file.
    if (await foldJournalFile(file, (event) => replay.apply(event), { appending: true })) return replay;
    return Replay.of(await Journal.events(outDir), options); // a damaged line is refused with its advice
  }

  static async events(outDir: string): Promise<JournalEvent[]> {
    const file = path.join(outDir, STATE_DIR, JOURNAL_FILE);
    // Only a missing journal is empty: any other failure to read it (too large, unreadable) is an error, never "no rows".
    const text = await readFile(file, 'utf8').catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return '';
      throw error;
    });
    return parseJournal(text, file);
  }

  /** Bytes of whole lines in the file. */
  get bytes(): number {
    return this.size;
  }

  /**
   * Appends one event and resolves once it is on disk (fsync). Events appended while a flush is under
   * way go out together in the next write + fsync (group commit), in the order they were appended.
   */
  append(event: NewEvent): Promise<RowState | undefined> {
    // Provider text (a message, a code) may echo a key or a signed URL: every string is cut before it is written down for good.
    const safe = redactJson(event) as NewEvent;
    const full = { at: new Date().toISOString(), session: this.session, ...safe } as JournalEvent;
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<RowState | undefined>((resolve, reject) => {
      this.pending.push({ event: full, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /**
   * Writes batches until none is pending. `flushing` is cleared in the same synchronous step that finds
   * nothing left (callers resolved above only run after it), so an append never waits on a finished flush.
   */
  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0);
        const buffer = Buffer.from(batch.map((p) => `${JSON.stringify(p.event)}\n`).join(''));
        try {
          // Every byte is checked for: a short write (a nearly full disk) is written on, or is an error.
          await writeFully(this.handle, buffer);
          await this.handle.datasync();
        } catch (error) {
          // The batch may be half written: cut the file back to its last whole line, so no partial line
          // ever sits in the middle; nothing more is appended after a failure (the run stops).
          await this.handle
            .truncate(this.size)
            .then(() => this.handle.datasync())
            .catch(() => {});
          this.broken = new JournalWriteError(this.file, error);
          for (const p of [...batch, ...this.pending.splice(0)]) p.reject(this.broken);
          return;
        }
        this.size += buffer.length;
        for (const p of batch) p.resolve(this.fold(p.event));
      }
    } finally {
      this.flushing = undefined;
    }
  }

  row(key: string): RowState | undefined {
    return this.replay.states.get(key);
  }

  rows(): ReadonlyMap<string, RowState> {
    return this.replay.states;
  }

  upload(key: string): UploadRecord | undefined {
    return this.replay.uploads.get(key);
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.handle.close();
  }

  /** The row states so far (a view of the replay). */
  get states(): ReadonlyMap<string, RowState> {
    return this.replay.states;
  }

  private fold(event: JournalEvent): RowState | undefined {
    return this.replay.apply(event);
  }
}
