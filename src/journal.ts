import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { applyEvent, foldEvents, type JournalEvent, type RowState } from './journal-events.js';
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

/**
 * The append-only checkpoint of a run folder. Each event is written and fsynced before the caller
 * takes its next side effect; the in-memory state is the fold of every event.
 */
export class Journal {
  readonly states = new Map<string, RowState>();
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(outDir: string): Promise<Journal> {
    const dir = path.join(outDir, STATE_DIR);
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, JOURNAL_FILE);
    const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return '';
      throw error;
    });
    const events = parseJournal(text, file);
    const handle = await open(file, 'a');
    // A torn tail is cut off by starting the next event on a fresh line.
    if (text.length > 0 && !text.endsWith('\n')) await handle.write('\n');
    const journal = new Journal(file, handle);
    for (const event of events) journal.fold(event);
    return journal;
  }

  /** Reads a folder's journal without opening it for writing (status, report). */
  static async read(outDir: string): Promise<Map<string, RowState>> {
    const file = path.join(outDir, STATE_DIR, JOURNAL_FILE);
    const text = await readFile(file, 'utf8').catch(() => '');
    return foldEvents(parseJournal(text, file));
  }

  /** Appends and fsyncs one event; resolves only once it is durable. Appends are serialised. */
  append(event: NewEvent): Promise<RowState> {
    const full = { at: new Date().toISOString(), ...event } as JournalEvent;
    const line = `${JSON.stringify(full)}\n`;
    const write = this.tail.then(async () => {
      await this.handle.write(line);
      await this.handle.datasync();
    });
    this.tail = write.catch(() => {});
    return write.then(() => this.fold(full));
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }

  private fold(event: JournalEvent): RowState {
    const state = applyEvent(this.states.get(event.key), event);
    this.states.set(event.key, state);
    return state;
  }
}
