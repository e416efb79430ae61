import type { Redis } from 'ioredis';
import type { BudgetBook } from '../money/budget.js';
import { runScript, type FleetKeys } from './redis.js';
import { GROW, REBASE, RESERVE, SETTLE } from './scripts.js';

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
   * Sets the fleet's limit (the enqueuer's). The committed sum is re-based on what the journal says the
   * budget's period spent when nothing is in flight and no event came since `lastEventId` was read;
   * otherwise only reservations and bills move it, so an enqueue while workers run loses nothing.
   */
  static async open(redis: Redis, keys: FleetKeys, o: { limitMicros: number | undefined; spentMicros: number; lastEventId: string }): Promise<void> {
    if (o.limitMicros === undefined) await redis.hdel(keys.budget, 'limit');
    else await redis.hset(keys.budget, 'limit', Math.round(o.limitMicros));
    await runScript(redis, REBASE, [keys.budget, keys.reserved, keys.events], [o.lastEventId, Math.round(o.spentMicros)]);
  }

  private async reserveOrCommit(key: string, micros: number, mode: 'reserve' | 'commit'): Promise<boolean> {
    const keys = [this.keys.budget, this.keys.reserved, this.keys.lease(key), this.keys.settled];
    const ok = await runScript(this.redis, RESERVE, keys, [this.tokenOf(key), key, micros, mode]);
    return ok === 1;
  }

  reserve(key: string, micros: number): Promise<boolean> {
    return this.reserveOrCommit(key, Math.round(micros), 'reserve');
  }

  async commit(key: string, micros: number): Promise<void> {
    await this.reserveOrCommit(key, Math.round(micros), 'commit');
  }

  async grow(key: string, micros: number): Promise<void> {
    await runScript(this.redis, GROW, [this.keys.budget, this.keys.reserved, this.keys.lease(key)], [this.tokenOf(key), key, Math.round(micros)]);
  }

  async settle(key: string, _reservedMicros: number, billedMicros: number): Promise<boolean> {
    const keys = [this.keys.budget, this.keys.reserved, this.keys.lease(key), this.keys.settled];
    const [, committed, limit] = (await runScript(this.redis, SETTLE, keys, [this.tokenOf(key), key, Math.round(billedMicros)])) as number[];
    this.committed = committed ?? this.committed;
    return limit !== undefined && limit >= 0 && this.committed > limit;
  }
}

/** A fleet's budget as Redis holds it now: the limit the enqueuer set, the committed sum (spent in the period and reserved), each row's open reservation. */
export interface FleetBudgetState {
  limitMicros: number | undefined;
  committedMicros: number;
  reserved: Map<string, number>;
}

/** Reads the fleet's budget without touching it (`clipmill status`). */
export async function readFleetBudget(redis: Redis, keys: FleetKeys): Promise<FleetBudgetState> {
  const [limit, committed] = await redis.hmget(keys.budget, 'limit', 'committed');
  const reserved = new Map(Object.entries(await redis.hgetall(keys.reserved)).map(([key, micros]) => [key, Number(micros)]));
  return { limitMicros: limit === null ? undefined : Number(limit), committedMicros: Number(committed ?? 0), reserved };
}
