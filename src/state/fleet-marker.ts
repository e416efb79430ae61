/**
 * A folder is either a single machine's (its journal in `.clipmill/`) or a fleet's (its journal in Redis),
 * never both: each journal would not know the other's runs, and a row would be paid for twice. The
 * enqueuer marks a fleet's folder; `run` refuses a marked folder and `enqueue` one with a local journal.
 */
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../load/problem.js';
import { JOURNAL_FILE, STATE_DIR } from './journal.js';

const MARKER = 'FLEET.json';

export interface FleetMark {
  queue: string;
  /** The fleet's Redis, password cut. */
  redis: string;
}

export async function fleetMarkOf(outDir: string): Promise<FleetMark | undefined> {
  const text = await readFile(path.join(outDir, STATE_DIR, MARKER), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as FleetMark);
}

/** Marks a folder as a fleet's, after checking it holds no single machine's journal with something in it. */
export async function markFleetFolder(outDir: string, mark: FleetMark): Promise<void> {
  const journal = path.join(outDir, STATE_DIR, JOURNAL_FILE);
  const size = await stat(journal).then(
    (s) => s.size,
    () => 0,
  );
  if (size > 0 && (await fleetMarkOf(outDir)) === undefined)
    throw new InputError([
      {
        file: journal,
        line: 0,
        field: '',
        message: `this folder has a single-machine journal: a fleet would not know its runs and could pay for them again. Give the fleet another --out, or finish this folder with clipmill run`,
      },
    ]);
  await mkdir(path.join(outDir, STATE_DIR), { recursive: true });
  await writeFile(path.join(outDir, STATE_DIR, MARKER), `${JSON.stringify(mark)}\n`);
}

/** `run` on a fleet's folder: refused, nothing read or sent. */
export async function refuseFleetFolder(outDir: string): Promise<void> {
  const mark = await fleetMarkOf(outDir);
  if (mark === undefined) return;
  throw new InputError([
    {
      file: path.join(outDir, STATE_DIR, MARKER),
      line: 0,
      field: '',
      message: `this folder holds the videos of fleet "${mark.queue}" (${mark.redis}), whose journal is in Redis: a run here would not know its runs and could pay for them again. Use clipmill enqueue and clipmill worker, or another --out`,
    },
  ]);
}
