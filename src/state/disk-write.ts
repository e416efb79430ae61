/** Writing the run's state to disk: every byte, or an error that names the file and what to do (a full disk, permissions). */
import { randomBytes } from 'node:crypto';
import { open, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ClipmillError } from '../infra/errors.js';

/** A write that failed because the disk (or the user's quota) is full. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG';
}

/**
 * The run's state could not be written to disk (the journal, or a video and its sidecar): disk full,
 * permissions. The run stops, as it cannot keep its promise; the message names the file and what to do.
 */
export class JournalWriteError extends ClipmillError {
  readonly exit = 'invalid';
  readonly code: string;
  constructor(
    readonly file: string,
    cause: unknown,
    what = 'the journal',
  ) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
    const why = isDiskFull(cause) ? 'the disk is full' : cause instanceof Error ? cause.message : String(cause);
    super(
      `cannot write ${what} ${file} (${code}: ${why}): stopping. Free space on that disk (or fix its permissions) and run the same command again to resume; ` +
        'nothing already paid for is paid again',
      { cause },
    );
    this.name = 'JournalWriteError';
    this.code = code;
  }
}

/** Thrown by `writeFully` when the disk takes fewer bytes than asked and then none at all. */
function shortWrite(written: number, total: number): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`short write: ${written} of ${total} bytes written, then no more space`);
  error.code = 'ENOSPC';
  return error;
}

/**
 * Writes the whole buffer at the file's end: `write` may take fewer bytes than asked (a nearly full disk)
 * without an error, so it is called again for the rest; a call that writes nothing is a full disk.
 */
export async function writeFully(handle: FileHandle, buffer: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, offset, buffer.length - offset, null);
    if (bytesWritten <= 0) throw shortWrite(offset, buffer.length);
    offset += bytesWritten;
  }
}

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
