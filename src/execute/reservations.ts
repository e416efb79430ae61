import { reservationMicros, type BudgetBook } from '../money/budget.js';
import { audioModeOf, formatUsd, type AudioMode } from '../money/cost.js';
import type { WorkItem } from '../plan/plan.js';

/**
 * The night's money in flight: each row's reservation against the budget, from its create until the
 * provider's bill (or "not billed") settles it. A bill above the estimate re-prices the runs still in flight.
 */
export class Reservations {
  private readonly reserved = new Map<string, number>();
  private readonly items = new Map<string, WorkItem>();

  constructor(
    private readonly budget: BudgetBook,
    /** The provider's last billed price per second, per audio mode: a reservation never assumes less. */
    private readonly observedRates: Partial<Record<AudioMode, number>>,
  ) {}

  /** What a create of this row reserves: its estimate, or more if the provider has been billing more. */
  reservationOf(item: WorkItem): number {
    const request = item.row.request;
    return reservationMicros(item.estimateMicros, request.durationSeconds, audioModeOf(request), this.observedRates);
  }

  /** Runs that may already exist (re-attached, or a lost create) are money being spent: they count whatever the limit. */
  async commit(item: WorkItem): Promise<void> {
    if (this.reserved.has(item.key)) return;
    const reservation = this.reservationOf(item);
    this.reserved.set(item.key, reservation);
    this.items.set(item.key, item);
    await this.budget.commit(item.key, reservation);
  }

  /** Reserves a create's price; false when it does not fit the budget. A row reserved already keeps its reservation. */
  async reserve(item: WorkItem): Promise<boolean> {
    if (this.reserved.has(item.key)) return true;
    const reservation = this.reservationOf(item);
    if (!(await this.budget.reserve(item.key, reservation))) return false;
    this.reserved.set(item.key, reservation);
    this.items.set(item.key, item);
    return true;
  }

  /** Settles a row's reservation with what was billed (0 when nothing was); returns why the budget is now passed, if a bill passed it. */
  async settle(item: WorkItem, billedMicros: number): Promise<string | undefined> {
    const reserved = this.reserved.get(item.key);
    if (reserved === undefined) return undefined;
    this.reserved.delete(item.key);
    this.items.delete(item.key);
    const overLimit = await this.budget.settle(item.key, reserved, billedMicros);
    // Only a bill can push past the budget here (an unbilled end releases money).
    if (billedMicros === 0 || !overLimit) return undefined;
    return `budget ${formatUsd(this.budget.limitMicros ?? 0)} passed: ${item.key} was billed ${formatUsd(billedMicros)} (reserved ${formatUsd(reserved)}), ${formatUsd(this.budget.committedMicros)} committed in the budget period`;
  }

  /** Drops what this process knows of a row's reservation (a fleet worker, once the row's job ends: the shared book is the authority). */
  forget(key: string): void {
    this.reserved.delete(key);
    this.items.delete(key);
  }

  /** A bill shows the provider's price: runs in flight of the same mode will be billed at it too, so their reservations grow now. */
  async priceSeen(item: WorkItem, billedMicros: number): Promise<void> {
    const { durationSeconds } = item.row.request;
    const mode = audioModeOf(item.row.request);
    if (durationSeconds <= 0) return;
    const rate = Math.ceil(billedMicros / durationSeconds);
    // The same price as last time: every reservation already assumes it (this runs for every billed row).
    if (this.observedRates[mode] === rate) return;
    this.observedRates[mode] = rate;
    for (const [key, reserved] of this.reserved) {
      const other = this.items.get(key);
      if (!other || audioModeOf(other.row.request) !== mode) continue;
      const repriced = this.reservationOf(other);
      if (repriced > reserved) {
        this.reserved.set(key, repriced);
        await this.budget.grow(key, repriced - reserved);
      }
    }
  }

  /** Why the next create does not fit. */
  fullMessage(item: WorkItem): string {
    return `budget ${formatUsd(this.budget.limitMicros ?? 0)} reached: ${formatUsd(this.budget.committedMicros)} committed, the next row (${item.key}, ${formatUsd(item.estimateMicros)}) does not fit`;
  }
}
