import { performance } from 'node:perf_hooks';
import type { Seen } from './files.js';

/**
 * What one acquisition has seen, by its own monotonic clock (performance.now()): since when the lock, and each
 * claim, has stood unchanged (the same instance with the same mtime). Another host's files are judged by this
 * alone: its clock may run ahead or behind ours, so its mtimes are compared only with each other, never with our time.
 */
export class Watch {
  private lockSeen: { key: string; since: number } | undefined;
  private readonly claimsSeen = new Map<string, { key: string; since: number }>();

  /** How long the lock has stood as `seen` shows it, and whether it changed since the last look (which restarts the count). */
  lock(seen: Seen): { ms: number; changed: boolean } {
    const key = `${seen.identity}:${seen.mtimeMs}`;
    const now = performance.now();
    if (this.lockSeen?.key === key) return { ms: now - this.lockSeen.since, changed: false };
    const changed = this.lockSeen !== undefined;
    this.lockSeen = { key, since: now };
    return { ms: 0, changed };
  }

  /** How long the claim `file` has stood as `seen` shows it. */
  claim(file: string, seen: Seen): number {
    const key = `${seen.identity}:${seen.mtimeMs}`;
    const now = performance.now();
    const before = this.claimsSeen.get(file);
    if (before?.key === key) return now - before.since;
    this.claimsSeen.set(file, { key, since: now });
    return 0;
  }
}
