/** What /proc and the kernel say about a process on this machine: the only I/O the liveness rules need. */
import { readFile, readlink } from 'node:fs/promises';
import { BOOT_ID, PID_NS, type ProcIdentity } from './record.js';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 (`starttime`) of a `/proc/<pid>/stat` text: clock ticks since boot. Undefined when it is not there. */
export function startTicksOf(statText: string): string | undefined {
  // Field 2 (comm) is in parentheses and may itself hold spaces and parentheses: count from the last ')'.
  const fields = statText.slice(statText.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** Field 22 (`starttime`) of `/proc/<pid>/stat`: clock ticks since boot. Undefined when it cannot be read. */
export async function startTicks(pid: number): Promise<string | undefined> {
  try {
    return startTicksOf(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

let ownIdentity: Promise<ProcIdentity> | undefined;

/** This process's identity, read once: nothing where /proc is unavailable. */
export function readOwnIdentity(): Promise<ProcIdentity> {
  return (ownIdentity ??= (async () => {
    const [start, boot, ns] = await Promise.all([
      startTicks(process.pid),
      readFile('/proc/sys/kernel/random/boot_id', 'utf8').then(
        (text) => text.trim(),
        () => undefined,
      ),
      readlink('/proc/self/ns/pid').catch(() => undefined),
    ]);
    return {
      ...(start !== undefined && { pid_start: start }),
      ...(boot !== undefined && BOOT_ID.test(boot) && { boot_id: boot }),
      ...(ns !== undefined && PID_NS.test(ns) && { pid_ns: ns }),
    };
  })());
}
