import pLimit, { type LimitFunction } from 'p-limit';

/**
 * Runs `work` on each item in order, at most `width` at once. Each worker pulls the next item when it is
 * free, so 100,000 waiting items cost nothing, where a queued task per item costs a closure and a promise.
 */
export async function eachInPool<T>(items: Iterable<T>, width: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const worker = async (): Promise<void> => {
    for (let next = iterator.next(); next.done !== true; next = iterator.next()) await work(next.value);
  };
  await Promise.all(Array.from({ length: Math.max(1, width) }, worker));
}

/** Work handed off to run in the background under a cap; `drained()` waits for all of it and rethrows the first failure. */
export class CappedTasks {
  private readonly limit: LimitFunction;
  private readonly running = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  constructor(width: number) {
    this.limit = pLimit(Math.max(1, width));
  }

  /** Callers of `room()` waiting for a queued task to start. */
  private readonly waiters: (() => void)[] = [];

  add(task: () => Promise<void>): void {
    const started = (): Promise<void> => {
      this.waiters.shift()?.();
      return task();
    };
    const done: Promise<void> = this.limit(started)
      .catch((error: unknown) => {
        this.failure ??= { error };
      })
      .finally(() => this.running.delete(done));
    this.running.add(done);
  }

  /** Resolves once at most `backlog` tasks are queued behind the running ones. */
  async room(backlog: number): Promise<void> {
    while (this.limit.pendingCount > backlog) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async drained(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
    if (this.failure) throw this.failure.error;
  }
}
