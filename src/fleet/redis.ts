/**
 * The fleet's one Redis connection and its key names. Every key of a fleet lives under
 * `clipmill:<queue>:`, so several fleets (or a test per fleet) can share one Redis.
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { registerSecret } from '../infra/http.js';

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

export function connectRedis(url: string): Redis {
  redisOptionsOf(url);
  return new Redis(url, { maxRetriesPerRequest: null, lazyConnect: false });
}

export interface FleetKeys {
  prefix: string;
  rows: string;
  events: string;
  uploads: string;
  budget: string;
  reserved: string;
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
