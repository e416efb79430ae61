import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { Replay, type ReplayOptions } from '../state/replay.js';
import { connectRedis, fleetKeys } from './redis.js';
import { fleetEvents } from './store.js';

export interface FleetRef {
  redisUrl: string;
  queue: string;
}

/** What a fleet's journal (its Redis stream) adds up to, as a folder's journal would: status, estimate and report read this. */
export async function fleetReplay(fleet: FleetRef, options: ReplayOptions = {}): Promise<Replay> {
  const redis = await connectRedis(fleet.redisUrl);
  try {
    const replay = new Replay(options);
    for await (const event of fleetEvents(redis, fleetKeys(fleet.queue))) replay.apply(event);
    return replay;
  } finally {
    redis.disconnect();
  }
}

/** The fleet's journal written out as `journal.jsonl` (the local journal's format), beside the reports; returns its path. */
export async function exportFleetJournal(fleet: FleetRef, outDir: string): Promise<string> {
  const file = path.join(outDir, 'journal.jsonl');
  const partial = `${file}.partial`;
  const redis = await connectRedis(fleet.redisUrl);
  try {
    const out = createWriteStream(partial);
    for await (const event of fleetEvents(redis, fleetKeys(fleet.queue))) {
      if (!out.write(`${JSON.stringify(event)}\n`)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    out.end();
    await finished(out);
    await rename(partial, file);
    return file;
  } finally {
    redis.disconnect();
  }
}
