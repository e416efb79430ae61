import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { isRowEvent, type JournalEvent } from '../lifecycle/events.js';
import { foldJournalFile } from './journal-file.js';
import { commitFile, syncDirectory } from '../execute/download.js';
import { writeFileAtomic } from './disk-write.js';
import { JOURNAL_FILE, STATE_DIR } from './journal.js';
import { Replay } from './replay.js';

/** Where the journals a compaction replaced are kept, gzipped: history for an audit by hand, never read by a command. */
export const ARCHIVE_DIR = 'archive';

/** A journal is compacted at the end of a run once it is this large and mostly history. */
const AUTO_MIN_BYTES = 8 * 1024 * 1024;
const AUTO_EVENTS_PER_FACT = 2;

export interface Compaction {
  beforeBytes: number;
  afterBytes: number;
  /** The replaced journal, gzipped. */
  archive: string;
}

/** Pure: a journal worth compacting holds many more events than the facts they add up to. */
export function worthCompacting(replay: Replay, bytes: number): boolean {
  const facts = replay.states.size + replay.uploads.size + replay.runCount + 1;
  return bytes >= AUTO_MIN_BYTES && replay.applied > AUTO_EVENTS_PER_FACT * facts;
}

/**
 * Pure: what a journal adds up to, as events that replay to it exactly: the uploads, the last plan whole with the
 * review notes every plan recorded (rows it does not name too: a lost review.json must not take them back), every
 * run the ledger knows (billed or not, with its night and estimate), and every row's state, dated by the row's
 * last event (`lastEventAt`) so its age survives compaction (`clipmill status`).
 */
export function* compactedEvents(replay: Replay, at: string, lastEventAt?: ReadonlyMap<string, string>): Generator<JournalEvent> {
  for (const [key, upload] of replay.uploads) {
    const sha256 = key.slice(`upload:${upload.provider}:`.length);
    yield { type: 'uploaded', at, key, request: sha256, assetId: upload.assetId, provider: upload.provider };
  }
  const plan = replay.lastPlan;
  if (plan) {
    const { session, provider, manifests, items } = plan;
    const reviews = replay.reviews.size > 0 ? { reviews: Object.fromEntries(replay.reviews) } : {};
    yield { type: 'planned', at, session, key: `plan:${session}`, request: session, provider, manifests, items, ...reviews };
  }
  yield* replay.runFacts();
  for (const state of replay.states.values()) {
    const submits = replay.submits.get(state.key);
    yield { type: 'row_state', at: lastEventAt?.get(state.key) ?? at, key: state.key, request: state.request, state, ...(submits && { submits }) };
  }
}

/**
 * A digest of what a command reads of a journal (row states, uploads, billed runs, the plan, the review notes): the compacted one
 * must read the same, or it is not used. Hashed piece by piece, so neither reading is ever one string.
 */
function readingOf(replay: Replay): string {
  const hash = createHash('sha256');
  const add = (value: unknown) => hash.update(`${JSON.stringify(value)}\n`);
  for (const entry of replay.states) add(entry);
  for (const entry of replay.submits) add(entry);
  for (const entry of replay.uploads) add(entry);
  for (const run of replay.billedRuns()) add(run);
  for (const entry of replay.reviews) add(entry);
  const plan = replay.lastPlan;
  if (plan) {
    add([plan.session, plan.provider, plan.manifests]);
    for (const item of plan.items) add(item);
    for (const print of plan.prints) add(print);
  }
  return hash.digest('hex');
}

/** The journal as its compacted form reads, or undefined when it cannot be read cleanly; each row's last event time noted in `lastEventAt`. */
async function replayOf(file: string, lastEventAt?: Map<string, string>): Promise<Replay | undefined> {
  const replay = new Replay({ planItems: true, submits: true });
  const apply = (event: JournalEvent) => {
    replay.apply(event);
    if (lastEventAt && isRowEvent(event)) lastEventAt.set(event.key, event.at);
  };
  return (await foldJournalFile(file, apply)) ? replay : undefined;
}

/** The events as journal lines. */
function* linesOf(events: Iterable<JournalEvent>): Generator<string> {
  for (const event of events) yield `${JSON.stringify(event)}\n`;
}

async function gzipInto(source: string, target: string): Promise<void> {
  const temporary = `${target}.tmp`;
  await pipeline(createReadStream(source), createGzip(), createWriteStream(temporary));
  await commitFile(temporary, target);
}

/**
 * Rewrites a folder's journal as what it adds up to (`compactedEvents`), checks that it replays to exactly
 * what the old one did (row states, uploads, every billed run, the plan), keeps the old one gzipped in
 * `.clipmill/archive/`, then swaps the new one in. The caller holds the folder's lock and has the journal
 * closed. Undefined when there is nothing to compact, or the plan is incomplete (a repaired journal).
 */
export async function compactJournal(outDir: string, now = new Date(), lost?: AbortSignal): Promise<Compaction | undefined> {
  const dir = path.join(outDir, STATE_DIR);
  const file = path.join(dir, JOURNAL_FILE);
  const temporary = path.join(dir, `.${JOURNAL_FILE}.compact.tmp`);
  try {
    // One reading in memory at a time: the old one is digested and let go before the new one is read.
    const reading = await (async () => {
      const lastEventAt = new Map<string, string>();
      const before = await replayOf(file, lastEventAt);
      if (before === undefined || before.applied === 0 || before.lastPlan?.incomplete) return undefined;
      await writeFileAtomic(temporary, linesOf(compactedEvents(before, now.toISOString(), lastEventAt)));
      return readingOf(before);
    })();
    if (reading === undefined) return undefined;
    const after = await replayOf(temporary);
    if (after === undefined || readingOf(after) !== reading)
      throw new Error('the compacted journal does not replay to the same rows and money; the journal is left as it was');
    await mkdir(path.join(dir, ARCHIVE_DIR), { recursive: true });
    const archive = path.join(dir, ARCHIVE_DIR, `journal-${now.toISOString().replace(/[:.]/g, '-')}.jsonl.gz`);
    const beforeBytes = (await stat(file)).size;
    await gzipInto(file, archive);
    // A run that lost the folder's lock must not swap the journal: the run that took it over is appending to it.
    if (lost?.aborted === true) throw new Error('the folder was taken over by another run meanwhile');
    await rename(temporary, file);
    await syncDirectory(dir);
    return { beforeBytes, afterBytes: (await stat(file)).size, archive };
  } finally {
    await rm(temporary, { force: true });
  }
}
