import type { Redis } from 'ioredis';
import type { BudgetBook } from '../money/budget.js';
import { runScript, type FleetKeys } from './redis.js';
import { RESERVE, SETTLE } from './scripts.js';

/**
 * A fleet's one budget, in integer micro-dollars in Redis: every worker's reservation is checked against
 * the limit in one script, so the sum reserved never passes it, whatever the number of workers. A row
 * reserves once (a re-run of its job keeps the reservation), fenced by the row's lease.
 */
export class FleetBudget implements BudgetBook {
  private committed = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: FleetKeys,
    readonly limitMicros: number | undefined,
    /** The lease token a row's scripts are fenced by. */
    private readonly tokenOf: (key: string) => string,
  ) {}

  get committedMicros(): number {
    return this.committed;
  }

  /**
   * Sets the fleet's limit (the enqueuer's); the committed sum starts at what the journal says was spent,
   * once: after that only reservations and bills move it, so an enqueue while workers run loses nothing.
   */
  static async open(redis: Redis, keys: FleetKeys, limitMicros: number | undefined, spentBeforeMicros: number): Promise<void> {
    const limit = limitMicros === undefined ? redis.multi().hdel(keys.budget, 'limit') : redis.multi().hset(keys.budget, 'limit', Math.round(limitMicros));
    await limit.hsetnx(keys.budget, 'committed', Math.round(spentBeforeMicros)).exec();
  }

  private async reserveOrCommit(key: string, micros: number, mode: 'reserve' | 'commit'): Promise<boolean> {
    const ok = await runScript(this.redis, RESERVE, [this.keys.budget, this.keys.reserved, this.keys.lease(key)], [this.tokenOf(key), key, micros, mode]);
    return ok === 1;
  }

  reserve(key: string, micros: number): Promise<boolean> {
    return this.reserveOrCommit(key, Math.round(micros), 'reserve');
  }

  async commit(key: string, micros: number): Promise<void> {
    await this.reserveOrCommit(key, Math.round(micros), 'commit');
  }

  async grow(key: string, micros: number): Promise<void> {
    await this.redis.multi().hincrby(this.keys.budget, 'committed', Math.round(micros)).hincrby(this.keys.reserved, key, Math.round(micros)).exec();
  }

  async settle(key: string, _reservedMicros: number, billedMicros: number): Promise<boolean> {
    const [, committed, limit] = (await runScript(this.redis, SETTLE, [this.keys.budget, this.keys.reserved], [key, Math.round(billedMicros)])) as number[];
    this.committed = committed ?? this.committed;
    return limit !== undefined && limit >= 0 && this.committed > limit;
  }
}
