import { mkdir, open, readFile, truncate, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { applyEvent, foldEvents, uploadKey, type JournalEvent, type RowState, type UploadRecord } from './journal-events.js';
import { redactText } from './http.js';
import { InputError } from './problem.js';

export const STATE_DIR = '.clipmill';
export const JOURNAL_FILE = 'journal.jsonl';

type NewEvent = JournalEvent extends infer E ? (E extends JournalEvent ? Omit<E, 'at'> : never) : never;

/** Parses journal text; a torn last line (a crash mid-write) is ignored, a bad line elsewhere is an error. */
export function parseJournal(text: string, file: string): JournalEvent[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const events: JournalEvent[] = [];
  lines.forEach((line, i) => {
    try {
      const event = JSON.parse(line) as JournalEvent;
      if (typeof event !== 'object' || event === null || typeof event.key !== 'string' || typeof event.type !== 'string') throw new Error('not an event');
      events.push(event);
    } catch {
      if (i === lines.length - 1) return; // torn tail: the write never finished, so its side effect never started
      throw new InputError([{ file, line: i + 1, field: '', message: 'the journal line is damaged; move the journal aside to start over (videos already downloaded stay)' }]);
    }
  });
  return events;
}

/** The journal could not be written (disk full, permissions): the run stops, as it cannot keep its promise. */
export class JournalWriteError extends Error {
  constructor(file: string, cause: unknown) {
    super(`cannot write the journal ${file} (${(cause as NodeJS.ErrnoException).code ?? String(cause)}): stopping; free space and run again to resume`);
    this.name = 'JournalWriteError';
  }
}

/**
 * The append-only checkpoint of a run folder. Each event is written and fsynced before the caller
 * takes its next side effect; the in-memory state is the fold of every event.
 */
export class Journal {
  readonly states = new Map<string, RowState>();
  /** Local images already uploaded, by `uploadKey(provider, content hash)`. */
  readonly uploads = new Map<string, UploadRecord>();
  private pending: { event: JournalEvent; resolve: (state: RowState | undefined) => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | undefined;
  private broken: JournalWriteError | undefined;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    readonly session: string,
  ) {}

  /** Opens the journal for appending; every event written carries `session`. */
  static async open(outDir: string, session = new Date().toISOString()): Promise<Journal> {
    const dir = path.join(outDir, STATE_DIR);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, JOURNAL_FILE);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const events = parseJournal(text, file);
    if (text.length > 0 && !text.endsWith('\n')) {
      // A torn tail (a crash or a full disk mid-write) is cut off, so it never ends up in the middle of the file.
      const keep = Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1));
      await truncate(file, keep);
    }
    const handle = await open(file, 'a');
    const journal = new Journal(file, handle, session);
    for (const event of events) journal.fold(event);
    return journal;
  }

  /** Reads a folder's journal without opening it for writing (status, estimate, report). */
  static async read(outDir: string): Promise<Map<string, RowState>> {
    return foldEvents(await Journal.events(outDir));
  }

  static async events(outDir: string): Promise<JournalEvent[]> {
    const file = path.join(outDir, STATE_DIR, JOURNAL_FILE);
    const text = await readFile(file, 'utf8').catch(() => '');
    return parseJournal(text, file);
  }

  /**
   * Appends one event and resolves once it is on disk (fsync). Events appended while a flush is under
   * way go out together in the next write + fsync (group commit), in the order they were appended.
   */
  append(event: NewEvent): Promise<RowState | undefined> {
    // Provider text in a message may echo a key or a signed URL: it is cut before it is written down for good.
    const safe = 'message' in event ? { ...event, message: redactText(event.message) } : event;
    const full = { at: new Date().toISOString(), session: this.session, ...safe } as JournalEvent;
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<RowState | undefined>((resolve, reject) => {
      this.pending.push({ event: full, resolve, reject });
      if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      try {
        await this.handle.write(batch.map((p) => `${JSON.stringify(p.event)}\n`).join(''));
        await this.handle.datasync();
      } catch (error) {
        // After a failed write the file may end in a partial line: nothing more may be appended after it.
        this.broken = new JournalWriteError(this.file, error);
        for (const p of [...batch, ...this.pending.splice(0)]) p.reject(this.broken);
        return;
      }
      for (const p of batch) p.resolve(this.fold(p.event));
    }
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.handle.close();
  }

  private fold(event: JournalEvent): RowState | undefined {
    if (event.type === 'uploaded') {
      const provider = event.provider ?? 'runflow';
      this.uploads.set(uploadKey(provider, event.request), { assetId: event.assetId, provider });
      return undefined;
    }
    if (event.type === 'planned') return undefined;
    const state = applyEvent(this.states.get(event.key), event);
    this.states.set(event.key, state);
    return state;
  }
}
