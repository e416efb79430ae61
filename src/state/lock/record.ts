/** The lock file's format: who holds the folder, and how a record is read back (pure). */

export const LOCK_FILE = 'lock';

export interface LockHolder {
  pid: number;
  host: string;
  started_at: string;
}

/**
 * Who the holding process is on its machine, so that a live pid is told apart from a reused one (Linux /proc; each
 * field is left out where it cannot be read). `pid_start` is field 22 (`starttime`) of `/proc/<pid>/stat`, in clock
 * ticks since boot; `boot_id` names the boot it counts from; `pid_ns` the pid namespace the pid belongs to.
 */
export interface ProcIdentity {
  pid_start?: string;
  boot_id?: string;
  pid_ns?: string;
}

/** What a lock (or a takeover claim) file holds: the holder, and a token unique to one acquisition. */
export interface LockRecord extends LockHolder, ProcIdentity {
  token: string;
}

/** A record as read back: older lock formats lack the token and the process identity. */
export type ReadRecord = LockHolder & ProcIdentity & { token?: string };

export const BOOT_ID = /^[0-9a-f-]{8,64}$/;
export const PID_NS = /^pid:\[\d+\]$/;

/** A lock or claim file's text as a record; undefined when it is not one (empty, torn, or foreign). */
export function parseRecord(text: string): ReadRecord | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, started_at, token, pid_start, boot_id, pid_ns } = value as Record<string, unknown>;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || typeof host !== 'string') return undefined;
    return {
      pid,
      host,
      started_at: typeof started_at === 'string' ? started_at : 'unknown',
      ...(typeof token === 'string' && { token }),
      ...(typeof pid_start === 'string' && /^\d+$/.test(pid_start) && { pid_start }),
      ...(typeof boot_id === 'string' && BOOT_ID.test(boot_id) && { boot_id }),
      ...(typeof pid_ns === 'string' && PID_NS.test(pid_ns) && { pid_ns }),
    };
  } catch {
    return undefined;
  }
}

/** The part of a record a user is told about (never the token). */
export function holderOf(record: LockHolder): LockHolder {
  return { pid: record.pid, host: record.host, started_at: record.started_at };
}
