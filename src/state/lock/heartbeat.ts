import { open, unlink } from 'node:fs/promises';
import { LockLostError } from './errors.js';
import { code, readSeen } from './files.js';
import type { Settings } from './options.js';
import { parseRecord, type LockHolder, type LockRecord } from './record.js';

export interface HeldLock {
  file: string;
  /** Set when a stale lock (process gone, pid reused, heartbeat stopped, unreadable) was taken over. */
  tookOverFrom?: LockHolder;
  /** Aborted (with a LockLostError) when the heartbeat finds the lock is no longer ours. */
  lost: AbortSignal;
  /** Stops the heartbeat and removes the lock if it still holds our token. */
  release(): Promise<void>;
}

/** Refreshes the lock's mtime if it still holds `token`; otherwise says who (or what) holds it now. */
async function refreshIfOurs(file: string, token: string): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, 'r');
    const record = parseRecord(await handle.readFile('utf8'));
    if (record?.token !== token)
      return record ? `pid ${record.pid} on ${record.host} (started ${record.started_at}) holds it now` : 'the lock file holds something else';
    // The descriptor we read the token through: we refresh the file we checked, never one that replaced it.
    const now = new Date();
    await handle.utimes(now, now);
    return undefined;
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Holds the lock `file` (which has our token): a heartbeat every `heartbeatMs`, `lost` aborted when it is no longer ours. */
export function hold(file: string, me: LockRecord, o: Settings, tookOverFrom: LockHolder | undefined): HeldLock {
  const controller = new AbortController();
  let lastBeat = Date.now();
  let beating: Promise<void> | undefined;
  const beat = async (): Promise<void> => {
    try {
      const lostTo = await refreshIfOurs(file, me.token);
      if (lostTo !== undefined) controller.abort(new LockLostError(file, lostTo));
      else lastBeat = Date.now();
    } catch (error) {
      if (code(error) === 'ENOENT') controller.abort(new LockLostError(file, 'the lock file was deleted'));
      else if (Date.now() - lastBeat > o.staleMs / 2)
        controller.abort(new LockLostError(file, `the lock could not be refreshed (${(error as Error).message})`));
    }
  };
  const timer = setInterval(() => {
    if (beating || controller.signal.aborted) return;
    beating = beat().finally(() => {
      beating = undefined;
      if (controller.signal.aborted) clearInterval(timer);
    });
  }, o.heartbeatMs);
  timer.unref();
  let released: Promise<void> | undefined;
  const release = async (): Promise<void> => {
    clearInterval(timer);
    await beating;
    const seen = await readSeen(file).catch(() => undefined);
    if (seen?.record?.token === me.token)
      await unlink(file).catch((error: unknown) => {
        if (code(error) !== 'ENOENT') throw error;
      });
  };
  return {
    file,
    ...(tookOverFrom && { tookOverFrom }),
    lost: controller.signal,
    release: () => (released ??= release()),
  };
}
