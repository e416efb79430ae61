import type { RowState, UploadRecord } from '../lifecycle/events.js';
import { compactJournal, worthCompacting, type Compaction } from './compact.js';
import { Journal, type NewEvent } from './journal.js';
import { acquireLock, type HeldLock } from './lock.js';
import { planRecord, type RecordedPlan } from './plans.js';
import type { Replay } from './replay.js';
import type { StateStore } from './store.js';

/**
 * The default state store: one output folder, its lock held for as long as the store is open, and its
 * append-only journal. Replays the journal once (at open) and keeps it, so a command reads the file once.
 */
export class LocalStore implements StateStore {
  private constructor(
    private readonly outDir: string,
    private readonly lock: HeldLock,
    private readonly journal: Journal,
  ) {}

  /** Takes the folder's lock (or LockedError), then opens its journal (or the advice to repair it). */
  static async open(outDir: string, session?: string): Promise<LocalStore> {
    const lock = await acquireLock(outDir);
    try {
      return new LocalStore(outDir, lock, await Journal.open(outDir, session));
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  get session(): string {
    return this.journal.session;
  }

  /** Aborted when another run takes the folder over (this one's heartbeat stopped): new work stops, as on Ctrl-C. */
  get lost(): AbortSignal {
    return this.lock.lost;
  }

  /** The run whose stale lock was taken over, if one was. */
  get tookOverFrom(): HeldLock['tookOverFrom'] {
    return this.lock.tookOverFrom;
  }

  row(key: string): RowState | undefined {
    return this.journal.row(key);
  }

  rows(): ReadonlyMap<string, RowState> {
    return this.journal.rows();
  }

  upload(key: string): UploadRecord | undefined {
    return this.journal.upload(key);
  }

  append(event: NewEvent): Promise<RowState | undefined> {
    return this.journal.append(event);
  }

  /** What the folder's events add up to: row states, the billing ledger, the last plan. */
  get replay(): Replay {
    return this.journal.replay;
  }

  /** Records tonight's plan: only its differences from the last recorded one, so a night with nothing new barely grows the journal. */
  async recordPlan(plan: Pick<RecordedPlan, 'provider' | 'manifests' | 'items'>): Promise<void> {
    await this.journal.append(planRecord(this.session, plan, this.replay.lastPlan));
  }

  async close(): Promise<void> {
    try {
      await this.journal.close();
    } finally {
      await this.lock.release();
    }
  }

  /**
   * The end of a run: closes the journal, compacts it if it is mostly history (`worthCompacting`) while the
   * lock is still held, and releases the lock. A compaction that fails leaves the journal as it was, and says why.
   */
  async finish(): Promise<{ compacted?: Compaction; compactError?: unknown }> {
    try {
      await this.journal.close();
      // A run whose lock was taken over leaves the journal to the run that holds it now.
      if (this.lock.lost.aborted || !worthCompacting(this.replay, this.journal.bytes)) return {};
      try {
        const compacted = await compactJournal(this.outDir, new Date(), this.lock.lost);
        return compacted ? { compacted } : {};
      } catch (compactError) {
        return { compactError };
      }
    } finally {
      await this.lock.release();
    }
  }
}
