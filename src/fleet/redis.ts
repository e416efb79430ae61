/**
 * The fleet's one Redis connection and its key names. Every key of a fleet lives under
 * `clipmill:<queue>:`, so several fleets (or a test per fleet) can share one Redis.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { registerSecret } from '../infra/http.js';
import type { Logger } from '../infra/log.js';
import { InputError } from '../load/problem.js';

/** A Redis URL with its password cut, for messages. */
export function shownRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    if (u.username !== '' && u.password === '') u.username = '***';
    return u.toString();
  } catch {
    return '(invalid Redis URL)';
  }
}

/** Connection settings BullMQ needs (a blocking worker client must never give up on a command). */
export function redisOptionsOf(url: string): { url: string } {
  const u = new URL(url);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`--redis ${shownRedisUrl(url)}: expected a redis:// or rediss:// URL`);
  if (u.password !== '') registerSecret(decodeURIComponent(u.password));
  return { url };
}

export async function connectRedis(url: string): Promise<Redis> {
  redisOptionsOf(url);
  // Loaded only when a fleet is reached: a single machine's commands do not pay ioredis's start-up.
  const { Redis: Client } = await import('ioredis');
  return new Client(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

/**
 * The fleet's journal is only as durable as Redis: an intent lost in a crash is a row created twice. A
 * Redis that says it is not append-only with `appendfsync always` is refused; one that hides its
 * configuration (a managed service) is let through with a warning to check it.
 */
export async function durabilityProblem(redis: Redis): Promise<{ refuse?: string; warn?: string }> {
  let config: string[];
  try {
    config = [...(await redis.config('GET', 'appendonly')), ...(await redis.config('GET', 'appendfsync'))];
  } catch {
    return { warn: 'this Redis does not show its configuration (CONFIG GET): make sure it runs with appendonly yes and appendfsync always' };
  }
  const value = (name: string) => config[config.indexOf(name) + 1];
  if (value('appendonly') === 'yes' && value('appendfsync') === 'always') return {};
  return {
    refuse: `this Redis runs with appendonly ${value('appendonly') ?? '?'}, appendfsync ${value('appendfsync') ?? '?'}: a crash could lose a create's record and pay for it twice. Set appendonly yes and appendfsync always (see the README, Redis for production)`,
  };
}

/** Refuses a Redis whose journal would not survive a crash; warns when it cannot tell. */
export async function checkDurability(redis: Redis, log?: Logger): Promise<void> {
  const { refuse, warn } = await durabilityProblem(redis);
  if (refuse !== undefined) throw new InputError([{ file: '--redis', line: 0, field: 'redis', message: refuse }]);
  if (warn !== undefined) log?.warn('redis_unchecked', warn);
}

export interface FleetKeys {
  prefix: string;
  rows: string;
  events: string;
  uploads: string;
  budget: string;
  reserved: string;
  /** Rows whose last run's bill was settled (a re-attach after a crash must not count it again). */
  settled: string;
  /** The fleet's shared limits (requests per minute), set by the enqueuer. */
  limits: string;
  gate: string;
  hold: string;
  lease(rowKey: string): string;
}

export function fleetKeys(queue: string): FleetKeys {
  const prefix = `clipmill:${queue}`;
  return {
    prefix,
    rows: `${prefix}:rows`,
    events: `${prefix}:events`,
    uploads: `${prefix}:uploads`,
    budget: `${prefix}:budget`,
    reserved: `${prefix}:reserved`,
    settled: `${prefix}:settled`,
    limits: `${prefix}:limits`,
    gate: `${prefix}:gate`,
    hold: `${prefix}:hold`,
    lease: (rowKey) => `${prefix}:lease:${rowKey}`,
  };
}

const shas = new Map<string, string>();

/** Runs a script by its hash, sending its text only when Redis does not have it yet (after a restart). */
export async function runScript(redis: Redis, script: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  try {
    return await redis.evalsha(sha, keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return redis.eval(script, keys.length, ...keys, ...args);
  }
}
