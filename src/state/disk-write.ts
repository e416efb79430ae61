/** Writing the run's state to disk: every byte, or an error that names the file and what to do (a full disk, permissions). */
import type { FileHandle } from 'node:fs/promises';
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
