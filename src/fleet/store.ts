import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redactJson } from '../infra/http.js';
import { applyEvent, isRowEvent, type JournalEvent, type NewEvent, type RowState, type UploadRecord } from '../lifecycle/events.js';
import { JournalWriteError } from '../state/disk-write.js';
import type { StateStore } from '../state/store.js';
import { runScript, type FleetKeys } from './redis.js';
import { APPEND, LEASE, RELEASE, RENEW } from './scripts.js';

/** How long a row's lease lasts without renewal, by default. */
export const LEASE_MS = 10_000;

/** Another job of this process holds the row (its row job handing over to its download job): look again this soon. */
const SAME_PROCESS_RETRY_MS = 500;

export type Lease = { held: true; state: RowState | undefined } | { held: false; retryInMs: number };

/**
 * A fleet's state store: the journal is a Redis stream (the same events as `journal.jsonl`), each row's
 * folded state a hash field written in the same script, and a row's events are accepted only from the
 * worker holding its lease. An event is durable once `append` resolves (Redis with `appendfsync always`).
 */
export class FleetStore implements StateStore {
  private readonly states = new Map<string, RowState>();
  private readonly uploads = new Map<string, UploadRecord>();
  /** This worker's lease token per row it holds. */
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly redis: Redis,
    readonly keys: FleetKeys,
    readonly session: string = new Date().toISOString(),
    /** How long a lease lasts unrenewed: a dead worker's rows are free again this soon. */
    readonly leaseMs = LEASE_MS,
    /** How long a create's intent holds its row (the create's own timeout and a lease): see APPEND. */
    private readonly intentHoldMs = 0,
  ) {}

  /** Takes a row's lease; with it, the row's state as the fleet knows it. A row is one job's at a time, in this process too. */
  async lease(key: string, ttlMs = this.leaseMs): Promise<Lease> {
    if (this.tokens.has(key)) return { held: false, retryInMs: SAME_PROCESS_RETRY_MS };
    const token = `${this.session}/${randomUUID()}`;
    const [held, value] = (await runScript(this.redis, LEASE, [this.keys.lease(key), this.keys.rows], [token, ttlMs, key])) as [number, string | number];
    if (held !== 1) return { held: false, retryInMs: Math.max(1, Number(value)) };
    this.tokens.set(key, token);
    const state = value === '' ? undefined : (JSON.parse(String(value)) as RowState);
    if (state) this.states.set(key, state);
    else this.states.delete(key);
    return { held: true, state };
  }

  /** Keeps a held lease alive; false when it was lost (expired and taken). */
  async renew(key: string, ttlMs = this.leaseMs): Promise<boolean> {
    const token = this.tokens.get(key);
    if (token === undefined) return false;
    return (await runScript(this.redis, RENEW, [this.keys.lease(key)], [token, ttlMs])) === 1;
  }

  async release(key: string): Promise<void> {
    const token = this.tokens.get(key);
    this.tokens.delete(key);
    this.states.delete(key);
    if (token !== undefined) await runScript(this.redis, RELEASE, [this.keys.lease(key)], [token]);
  }

  /** The lease token of a row held here (the budget's scripts are fenced by it too). */
  tokenOf(key: string): string {
    return this.tokens.get(key) ?? '';
  }

  row(key: string): RowState | undefined {
    return this.states.get(key);
  }

  rows(): ReadonlyMap<string, RowState> {
    return this.states;
  }

  upload(key: string): UploadRecord | undefined {
    return this.uploads.get(key);
  }

  /** Reads every upload the fleet has recorded (the enqueuer uploads before adding jobs). */
  async loadUploads(): Promise<void> {
    const all = await this.redis.hgetall(this.keys.uploads);
    for (const [key, json] of Object.entries(all)) this.uploads.set(key, JSON.parse(json) as UploadRecord);
  }

  async append(event: NewEvent): Promise<RowState | undefined> {
    // Provider text may echo a key or a signed URL: cut before it is written down for good, as the local journal does.
    const full = { at: new Date().toISOString(), session: this.session, ...(redactJson(event) as NewEvent) } as JournalEvent;
    const rowEvent = isRowEvent(full);
    const state = rowEvent ? applyEvent(this.states.get(full.key), full) : undefined;
    const upload = full.type === 'uploaded' ? { assetId: full.assetId, provider: full.provider ?? 'runflow' } : undefined;
    const args = [
      rowEvent ? this.tokenOf(full.key) : '',
      rowEvent ? full.key : '',
      state ? JSON.stringify(state) : '',
      JSON.stringify(full),
      upload ? full.key : '',
      upload ? JSON.stringify(upload) : '',
      full.type === 'submitting' ? this.intentHoldMs : 0,
    ];
    try {
      await runScript(this.redis, APPEND, [this.keys.events, this.keys.rows, this.keys.lease(full.key), this.keys.uploads], args);
    } catch (error) {
      if (error instanceof Error && error.message.includes('LEASE_LOST')) throw new LeaseLostError(full.key);
      throw new JournalWriteError(this.keys.events, error, 'the fleet journal (Redis stream)');
    }
    if (state) this.states.set(full.key, state);
    if (upload) this.uploads.set(full.key, upload);
    return state;
  }

  async close(): Promise<void> {
    await Promise.all([...this.tokens.keys()].map((key) => this.release(key)));
  }
}

/** This worker's lease on a row ran out and another worker holds it: this worker leaves the row alone (nothing more is sent for it). */
export class LeaseLostError extends Error {
  constructor(readonly key: string) {
    super(`${key}: another worker took this row over (this worker's lease ran out); leaving it to that worker`);
  }
}

/** Every event of a fleet's stream, oldest first, read in pages; `seen.lastId` follows the last one read. */
export async function* fleetEvents(
  redis: Redis,
  keys: FleetKeys,
  seen: { lastId: string } = { lastId: '0-0' },
  pageSize = 5_000,
): AsyncGenerator<JournalEvent> {
  let from = '-';
  for (;;) {
    const page = (await redis.xrange(keys.events, from, '+', 'COUNT', pageSize)) as [string, string[]][];
    for (const [id, fields] of page) {
      seen.lastId = id;
      yield JSON.parse(fields[1]!) as JournalEvent;
    }
    if (page.length < pageSize) return;
    from = `(${page[page.length - 1]![0]}`;
  }
}
