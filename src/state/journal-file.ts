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
 * hundreds of MB). Returns false as soon as a line does not parse or the file does not end with a newline:
 * the caller then reads it whole, to name the damaged line or cut a torn tail. A missing file is empty.
 */
export async function foldJournalFile(file: string, apply: (event: JournalEvent) => void): Promise<boolean> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return true;
  const stream = handle.createReadStream({ autoClose: false });
  try {
    const { size } = await handle.stat();
    if (size === 0) return true;
    const last = Buffer.alloc(1);
    await handle.read(last, 0, 1, size - 1);
    if (last[0] !== 0x0a) return false;
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      const event = parseEvent(line);
      if (!event) return false;
      apply(event);
    }
    return true;
  } finally {
    // The stream stops reading before its file is closed: a read still under way would otherwise hit a closed handle.
    stream.destroy();
    await handle.close();
  }
}
