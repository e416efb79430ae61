import { open } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { JournalEvent } from '../lifecycle/events.js';

/** One journal line as an event, or undefined when it is not one (damaged, or cut short). */
export function parseEvent(line: string): JournalEvent | undefined {
  try {
    const event: unknown = JSON.parse(line);
    if (
      typeof event !== 'object' ||
      event === null ||
      !('key' in event) ||
      typeof event.key !== 'string' ||
      !('type' in event) ||
      typeof event.type !== 'string'
    )
      return undefined;
    return event as JournalEvent;
  } catch {
    return undefined;
  }
}

/**
 * Streams a journal file line by line into `apply`, never holding it whole (100,000 rows make a journal of
 * hundreds of MB), up to the bytes it holds when opened. Returns false as soon as a line does not parse or
 * the file does not end with a newline: the caller then reads it whole, to name the damaged line or cut a
 * torn tail. With `appending` (a reader while a run may append: status, a dry run), an unfinished last line
 * is a write under way: it is left out, and the rest read. A missing file is empty.
 */
export async function foldJournalFile(file: string, apply: (event: JournalEvent) => void, options: { appending?: boolean } = {}): Promise<boolean> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return true;
  let stream: ReturnType<typeof handle.createReadStream> | undefined;
  try {
    const { size } = await handle.stat();
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    const torn = last[0] !== 0x0a;
    if (torn && options.appending !== true) return false;
    stream = handle.createReadStream({ autoClose: false, start: 0, end: size - 1 });
    // Each line is applied once the next one is seen: the last one only when it ended with its newline.
    let previous: string | undefined;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (previous !== undefined && !applyLine(previous, apply)) return false;
      previous = line;
    }
    if (previous === undefined) return true;
    if (!torn) return applyLine(previous, apply);
    // A reader beside a running writer sees what `run` will: the same rule for a line without its newline.
    const event = unterminatedEvent(previous);
    if (event) apply(event);
    return true;
  } finally {
    // The stream stops reading before its file is closed: a read still under way would otherwise hit a closed handle.
    stream?.destroy();
    await handle.close();
  }
}

/**
 * A last line whose newline was never written: kept when it parses (a JSON object that parses is whole) and
 * records what already happened (a run id, an answer); a `submitting` intent is cut, as its create was never sent
 * (the writer waits for the line), so the row is simply new rather than a look-up fal cannot do.
 */
export function unterminatedEvent(line: string): JournalEvent | undefined {
  const event = parseEvent(line);
  return event?.type === 'submitting' ? undefined : event;
}

function applyLine(line: string, apply: (event: JournalEvent) => void): boolean {
  const event = parseEvent(line);
  if (event) apply(event);
  return event !== undefined;
}
