import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { syncDirectory, type Sidecar } from '../execute/download.js';
import { foldEvents, type JournalEvent, type RowState } from './events.js';
import { Journal, JOURNAL_FILE, readJournalText, SIDECAR_SUFFIX, sidecarPathFor, STATE_DIR, writeFully } from './journal.js';
import { ApiError } from '../infra/errors.js';
import { clientRefPrefix } from '../lifecycle/client-ref.js';
import { HttpClient } from '../infra/http.js';
import { acquireLock } from './lock.js';
import { requestHash, rowKey } from '../plan/plan.js';
import { InputError } from '../load/problem.js';
import { configuredHosts, openProvider, providerProblems } from '../providers/index.js';
import type { ListedRun } from '../providers/provider.js';
import { resolvePipeline } from '../config/pipeline.js';
import { loadValidated } from '../load/validate.js';
import { RateGate } from '../execute/rate-gate.js';
import { sha256Of } from './outputs.js';

/** `clipmill repair`'s exit codes: 0 nothing lost, 1 something could not be recovered, 2 nothing to repair from. */
export const REPAIR_EXIT = { ok: 0, lost: 1, nothingHere: 2 } as const;

export interface RepairResult {
  exitCode: number;
  /** What `clipmill repair` prints. */
  lines: string[];
  journalFile: string;
  /** The damaged original, kept beside the repaired journal (when the journal was rewritten). */
  keptAs?: string;
  /** Lines of the journal kept as they were. */
  keptLines: number;
  /** Line numbers (1-based) of damaged lines that were skipped. */
  damagedLines: number[];
  /** Row keys whose state was rebuilt from a sidecar. */
  rebuilt: string[];
  /** Videos (relative paths) whose row could not be recovered: no sidecar, or one that does not match. */
  unrecovered: string[];
  /** Rows whose last event is a create sent without an answer. */
  submitting: string[];
}

interface Video {
  /** Relative to the output folder, with `/`. */
  rel: string;
  file: string;
}

/** The videos and sidecars in the folder's manifest folders (`<out>/<manifest>/`), relative paths with `/`. */
async function scan(outDir: string): Promise<{ videos: Video[]; sidecars: string[] }> {
  const videos: Video[] = [];
  const sidecars: string[] = [];
  const folders = await readdir(outDir, { withFileTypes: true }).catch(() => []);
  for (const folder of folders.filter((f) => f.isDirectory() && !f.name.startsWith('.')).sort((a, b) => a.name.localeCompare(b.name))) {
    const names = (await readdir(path.join(outDir, folder.name)).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      if (name.endsWith('.mp4')) videos.push({ rel: `${folder.name}/${name}`, file: path.join(outDir, folder.name, name) });
      else if (name.endsWith(SIDECAR_SUFFIX)) sidecars.push(`${folder.name}/${name}`);
    }
  }
  return { videos, sidecars };
}

/** A sidecar as read back, or why it cannot be used. */
async function readSidecar(file: string): Promise<Sidecar | { problem: string } | undefined> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'its sidecar is not valid JSON' };
  }
  const s = value as Partial<Record<keyof Sidecar, unknown>> | null;
  const ok =
    typeof s === 'object' &&
    s !== null &&
    typeof s.run_id === 'string' && s.run_id !== '' &&
    typeof s.request === 'string' && s.request !== '' &&
    typeof s.key === 'string' && s.key.includes('/') &&
    typeof s.sha256 === 'string' && /^[0-9a-f]{64}$/.test(s.sha256) &&
    typeof s.bytes === 'number' && Number.isSafeInteger(s.bytes) &&
    typeof s.seconds === 'number' && Number.isFinite(s.seconds) &&
    (s.cost_micros === undefined || (typeof s.cost_micros === 'number' && Number.isSafeInteger(s.cost_micros) && s.cost_micros >= 0));
  if (!ok) return { problem: 'its sidecar lacks run_id, request, key, sha256, bytes or seconds' };
  return s as Sidecar;
}

/** The time the sidecar's events are given: when the video was downloaded (or now, when that is unreadable). */
function eventTime(sidecar: Sidecar, now: Date): string {
  const at = typeof sidecar.downloaded_at === 'string' ? Date.parse(sidecar.downloaded_at) : NaN;
  return Number.isNaN(at) ? now.toISOString() : new Date(at).toISOString();
}

/**
 * The events missing for a row the sidecar proves was paid (and, with `rel`, downloaded): `submitted`,
 * `succeeded`, `downloaded`, leaving out those the journal already holds for this request and run.
 */
function missingEvents(sidecar: Sidecar, state: RowState | undefined, rel: string | undefined, at: string): JournalEvent[] {
  const base = { at, key: sidecar.key, request: sidecar.request };
  const sameRun = state?.request === sidecar.request && state.runId === sidecar.run_id;
  const events: JournalEvent[] = [];
  if (!(sameRun && ['submitted', 'succeeded', 'downloaded'].includes(state.status))) events.push({ ...base, type: 'submitted', runId: sidecar.run_id });
  if (!(sameRun && (state.status === 'succeeded' || state.status === 'downloaded'))) {
    events.push({ ...base, type: 'succeeded', runId: sidecar.run_id, ...(sidecar.cost_micros !== undefined && { costMicros: sidecar.cost_micros }) });
  }
  if (rel !== undefined) events.push({ ...base, type: 'downloaded', runId: sidecar.run_id, path: rel, bytes: sidecar.bytes, sha256: sidecar.sha256, seconds: sidecar.seconds });
  return events;
}

/**
 * Where a row's rebuilt events go in the journal (after the line at the returned index; -1 = first):
 * after the row's last event for the same request, else in time order among the row's events, else at the end.
 */
function insertionPoint(events: readonly JournalEvent[], key: string, request: string, at: string): number {
  let lastSameRequest = -1;
  let lastBefore = -1;
  let first = -1;
  const atMs = Date.parse(at);
  events.forEach((event, i) => {
    if (event.key !== key) return;
    if (first === -1) first = i;
    if (event.request === request) lastSameRequest = i;
    if (Date.parse(event.at) <= atMs) lastBefore = i;
  });
  if (lastSameRequest !== -1) return lastSameRequest;
  if (first === -1) return events.length - 1;
  return lastBefore !== -1 ? lastBefore : first - 1;
}

/** The row a damaged line seems to be about, from its text, to say so (never trusted further). */
/** The intent of a create from a damaged line, when its type, key, request, attempt, time and client_ref can still be read. */
function salvageSubmitting(text: string): Extract<JournalEvent, { type: 'submitting' }> | undefined {
  const field = (name: string) => new RegExp(`"${name}":"([^"\\\\]+)"`).exec(text)?.[1];
  if (field('type') !== 'submitting') return undefined;
  const key = field('key');
  const request = field('request');
  const clientRef = field('clientRef');
  const at = field('at');
  const attempt = Number(/"attempt":(\d+)/.exec(text)?.[1]);
  if (!key || !request || !clientRef || !at || !Number.isFinite(Date.parse(at)) || !Number.isInteger(attempt)) return undefined;
  const session = field('session');
  return { type: 'submitting', at, key, request, attempt, clientRef, ...(session !== undefined && { session }) };
}

function keyIn(text: string): string | undefined {
  return /"key"\s*:\s*"([^"\\]{1,300})"/.exec(text)?.[1];
}

function timestamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

/** Writes the whole journal under a temporary name, on disk, then renames it into place. */
async function writeJournalAtomically(file: string, lines: readonly string[]): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.repair-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await writeFully(handle, Buffer.from(lines.map((l) => `${l}\n`).join('')));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    await syncDirectory(path.dirname(file));
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * `clipmill repair`: rebuilds a folder's journal from every line that still parses, and from the
 * sidecars beside the videos (the `downloaded` state of rows the journal lost), under the folder's lock.
 * Sends nothing to any provider. The damaged original is kept beside the repaired one.
 */
export async function repairFolder(outDirArg: string, now: Date = new Date()): Promise<RepairResult> {
  const outDir = path.resolve(outDirArg);
  const journalFile = path.join(outDir, STATE_DIR, JOURNAL_FILE);
  const result: RepairResult = { exitCode: REPAIR_EXIT.ok, lines: [], journalFile, keptLines: 0, damagedLines: [], rebuilt: [], unrecovered: [], submitting: [] };
  const print = (line: string) => result.lines.push(line);

  const folder = await stat(outDir).catch(() => undefined);
  const initialText = folder?.isDirectory() ? await readFile(journalFile, 'utf8').catch(() => '') : '';
  const initialScan = folder?.isDirectory() ? await scan(outDir) : { videos: [], sidecars: [] };
  if (initialText === '' && initialScan.sidecars.length === 0) {
    print(folder?.isDirectory() ? `nothing to repair from in ${outDir}: no journal (${path.relative(outDir, journalFile)}) and no video sidecars (<manifest>/<id>.mp4.json)` : `no such folder: ${outDir}`);
    for (const video of initialScan.videos) print(`  ${video.rel}: no sidecar, cannot be recovered`);
    result.unrecovered = initialScan.videos.map((v) => v.rel);
    result.exitCode = REPAIR_EXIT.nothingHere;
    print(`(exit ${result.exitCode})`);
    return result;
  }

  const lock = await acquireLock(outDir);
  try {
    const original = await readFile(journalFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    const read = readJournalText(original ?? '');
    result.keptLines = read.lines.length;
    result.damagedLines = read.damaged.map((d) => d.line);
    const states = foldEvents(read.events);
    const knownSha = new Set(read.events.flatMap((e) => (e.type === 'downloaded' ? [e.sha256] : [])));
    const { videos, sidecars } = await scan(outDir);

    if (original === undefined || original === '') print(`journal: ${original === undefined ? 'missing' : 'empty'} (${journalFile}); rebuilding it from the sidecars`);
    else {
      const total = read.lines.length + read.damaged.length + (read.tornTail ? 1 : 0);
      print(`journal: kept ${read.lines.length} of ${total} lines (${journalFile})`);
      for (const d of read.damaged) {
        const key = keyIn(d.text);
        print(`  line ${d.line}: damaged, skipped${key ? ` (it seems to be about ${key})` : ''}`);
      }
      if (read.tornTail) print(`  line ${total}: torn (a write that never finished, so its step never started), dropped`);
    }

    // What the sidecars prove, row by row: one group of events per video (or per sidecar whose video is gone).
    const groups: { key: string; request: string; at: string; events: JournalEvent[]; text: string }[] = [];
    const alreadyKnown: string[] = [];
    const videoShas = new Set<string>();
    const problems: string[] = [];
    for (const video of videos) {
      const info = await stat(video.file);
      const sha256 = await sha256Of(video.file);
      videoShas.add(sha256);
      if (knownSha.has(sha256)) {
        alreadyKnown.push(video.rel);
        continue;
      }
      const sidecar = await readSidecar(sidecarPathFor(video.file));
      if (sidecar === undefined) {
        problems.push(`${video.rel}: no sidecar, and the journal does not record this video`);
        result.unrecovered.push(video.rel);
        continue;
      }
      const problem =
        'problem' in sidecar
          ? sidecar.problem
          : sidecar.sha256 !== sha256 || sidecar.bytes !== info.size
            ? 'its sidecar does not match the file (sha256 or size differ)'
            : `${sidecar.key}.mp4` !== video.rel
              ? `its sidecar names another row (${sidecar.key})`
              : undefined;
      if (problem !== undefined || 'problem' in sidecar) {
        problems.push(`${video.rel}: ${problem}, and the journal does not record this video`);
        result.unrecovered.push(video.rel);
        continue;
      }
      const state = states.get(sidecar.key);
      if (state?.request === sidecar.request && state.status === 'downloaded') {
        alreadyKnown.push(video.rel);
        continue;
      }
      const at = eventTime(sidecar, now);
      const events = missingEvents(sidecar, state, video.rel, at);
      groups.push({ key: sidecar.key, request: sidecar.request, at, events, text: `${sidecar.key}: downloaded ${video.rel}, run ${sidecar.run_id} (wrote ${events.map((e) => e.type).join(' + ')})` });
    }
    // A sidecar whose video is gone still proves a paid run: the next run downloads it again from that run.
    for (const rel of sidecars) {
      const videoRel = rel.slice(0, -'.json'.length);
      if (videos.some((v) => v.rel === videoRel)) continue;
      const sidecar = await readSidecar(path.join(outDir, rel));
      if (sidecar === undefined || 'problem' in sidecar || videoShas.has(sidecar.sha256) || knownSha.has(sidecar.sha256)) continue;
      const state = states.get(sidecar.key);
      if (state?.request === sidecar.request && state.runId === sidecar.run_id) continue;
      if (groups.some((g) => g.key === sidecar.key)) continue;
      const at = eventTime(sidecar, now);
      const events = missingEvents(sidecar, state, undefined, at);
      groups.push({ key: sidecar.key, request: sidecar.request, at, events, text: `${sidecar.key}: paid run ${sidecar.run_id} (video ${videoRel} is gone: the next run downloads it again from that run; wrote ${events.map((e) => e.type).join(' + ')})` });
    }

    // A damaged intent to create still says which client_ref to look up: dropping it would let the next run pay again.
    const salvaged = new Set<number>();
    for (const d of read.damaged) {
      const intent = salvageSubmitting(d.text);
      if (!intent) continue;
      salvaged.add(d.line);
      groups.push({ key: intent.key, request: intent.request, at: intent.at, events: [intent], text: `${intent.key}: line ${d.line} was damaged, but its create's client_ref ${intent.clientRef} was read back (the next run looks it up before any resubmit)` });
    }

    // Rebuilt events go where they belong in each row's history, the journal's order kept otherwise.
    const inserts = new Map<number, typeof groups>();
    for (const group of groups) {
      const at = insertionPoint(read.events, group.key, group.request, group.at);
      inserts.set(at, [...(inserts.get(at) ?? []), group].sort((a, b) => a.at.localeCompare(b.at)));
    }
    const lines: string[] = [];
    const events: JournalEvent[] = [];
    const place = (i: number) => {
      for (const group of inserts.get(i) ?? []) {
        for (const event of group.events) {
          lines.push(JSON.stringify(event));
          events.push(event);
        }
      }
    };
    place(-1);
    read.lines.forEach((line, i) => {
      lines.push(line);
      events.push(read.events[i]!);
      place(i);
    });
    result.rebuilt = groups.map((g) => g.key);

    print(`rebuilt from sidecars: ${groups.length} row${groups.length === 1 ? '' : 's'}`);
    for (const group of groups) print(`  ${group.text}`);
    if (alreadyKnown.length > 0) print(`already recorded in the journal: ${alreadyKnown.length} video${alreadyKnown.length === 1 ? '' : 's'}`);

    const lost = [...read.damaged.filter((d) => !salvaged.has(d.line)).map((d) => `journal line ${d.line}: damaged, its content cannot be read${keyIn(d.text) ? ` (it seems to be about ${keyIn(d.text)})` : ''}`), ...problems];
    if (lost.length > 0) {
      print(`could not recover: ${lost.length}`);
      for (const line of lost) print(`  ${line}`);
    }

    const after = foldEvents(events);
    result.submitting = [...after.values()].filter((s) => s.status === 'submitting').map((s) => s.key).sort();
    if (result.submitting.length > 0) {
      print(
        `rows whose last event is a create sent without an answer (submitting): ${result.submitting.length}. repair sends nothing to the provider, ` +
          'and looking runs up by client_ref is not part of repair yet: the next `clipmill run` looks each one up before any resubmit ' +
          '(on fal, which has no run list, check its dashboard first)',
      );
      for (const key of result.submitting) print(`  ${key}${after.get(key)?.clientRef ? ` (client_ref ${after.get(key)?.clientRef})` : ''}`);
    }
    if (original === undefined || original === '') {
      print('runs made but not downloaded yet left no sidecar: they cannot be found on disk (looking them up at the provider by client_ref is for later)');
    }

    const changed = read.damaged.length > 0 || read.tornTail || groups.length > 0;
    if (changed) {
      if (original !== undefined && original !== '') {
        result.keptAs = `${journalFile}.damaged-${timestamp(now)}`;
        await copyFile(journalFile, result.keptAs, constants.COPYFILE_EXCL);
      }
      await writeJournalAtomically(journalFile, lines);
      print(`wrote the repaired journal: ${lines.length} lines${result.keptAs ? `; the original is kept as ${result.keptAs}` : ''}`);
    } else {
      print('the journal needs no repair: it was left as it is');
    }

    result.exitCode = lost.length > 0 ? REPAIR_EXIT.lost : REPAIR_EXIT.ok;
    print(
      result.exitCode === REPAIR_EXIT.ok
        ? 'nothing was lost; run the same command as before to resume (nothing already paid for is paid again) (exit 0)'
        : 'something could not be recovered (listed above); the rest is in the journal, and a rerun pays nothing again for what it records (exit 1)',
    );
    return result;
  } finally {
    await lock.release();
  }
}

/**
 * `clipmill repair <manifests>…` on Runflow: runs the provider made for these rows (found by their client_ref
 * prefix, row key and request hash, in its run list) that the journal no longer knows are journaled as
 * submitted, so the next run re-attaches to them and downloads their videos instead of paying again.
 */
export async function recoverFromProvider(
  outDirArg: string,
  rows: readonly { key: string; request: string }[],
  listed: readonly ListedRun[],
): Promise<{ lines: string[]; recovered: string[]; extra: ListedRun[] }> {
  const outDir = path.resolve(outDirArg);
  const lines: string[] = [];
  const recovered: string[] = [];
  const extra: ListedRun[] = [];
  const lock = await acquireLock(outDir);
  try {
    const journal = await Journal.open(outDir);
    try {
      for (const row of rows) {
        const prefix = `${clientRefPrefix(row.key, row.request)}-a`;
        // Newest first, as the list answers: the latest attempt's run is the one to follow.
        const runs = listed.filter((run) => run.clientRef?.startsWith(prefix) && !['failed', 'canceled', 'cancelled'].includes(run.status));
        const state = journal.states.get(row.key);
        const known = state?.request === row.request ? state : undefined;
        if (runs.length === 0 || (known?.runId !== undefined && runs.some((run) => run.runId === known.runId))) continue;
        if (known && (known.status === 'downloaded' || known.status === 'succeeded' || known.status === 'submitted')) continue;
        const [run, ...others] = runs;
        await journal.append({ type: 'submitted', key: row.key, request: row.request, runId: run!.runId });
        recovered.push(row.key);
        lines.push(`  ${row.key}: run ${run!.runId} (${run!.status}, client_ref ${run!.clientRef}) found at the provider: the next run re-attaches to it`);
        for (const other of others) {
          extra.push(other);
          lines.push(`  ${row.key}: another run ${other.runId} (${other.status}) carries this row's client_ref: it may have been billed too (see clipmill audit)`);
        }
      }
    } finally {
      await journal.close();
    }
  } finally {
    await lock.release();
  }
  return { lines: [`found at the provider by client_ref: ${recovered.length} row${recovered.length === 1 ? '' : 's'}`, ...lines], recovered, extra };
}

/**
 * `clipmill repair <manifests>…`: after what the disk proves, what the provider knows. The manifests say
 * which rows and requests to look for; the provider's run list (Runflow; fal keeps none) says which runs exist.
 */
export async function repairWithProvider(o: { manifests: string[]; pipelineFile?: string; outDir?: string; env?: NodeJS.ProcessEnv; sinceMs: number }): Promise<{ exitCode: number; lines: string[] }> {
  const env = o.env ?? process.env;
  const pipeline = await resolvePipeline({ ...(o.pipelineFile !== undefined && { pipelineFile: o.pipelineFile }), ...(o.outDir !== undefined && { outDir: o.outDir }) }, env);
  const problems = providerProblems(pipeline, env);
  if (problems.length > 0) throw new InputError(problems);
  const loaded = await loadValidated(o.manifests, pipeline);
  const rows = loaded.manifests.flatMap((m) => m.rows.map((row) => ({ key: rowKey(row), request: requestHash(row, loaded.images) })));
  const local = await repairFolder(pipeline.outputDir);
  if (local.exitCode === REPAIR_EXIT.nothingHere) local.lines.pop(); // the provider may still know runs for an empty folder
  const http = new HttpClient({ connections: 4, allowedHosts: configuredHosts(pipeline, env) });
  const handle = await openProvider(pipeline, env, http, new RateGate(pipeline.requestsPerMinute));
  try {
    let listed: ListedRun[];
    try {
      listed = await handle.provider.listRunsSince(o.sinceMs, AbortSignal.timeout(10 * 60_000));
    } catch (error) {
      if (error instanceof ApiError && error.code === 'NO_RUN_LIST') return { exitCode: local.exitCode === REPAIR_EXIT.ok ? REPAIR_EXIT.lost : local.exitCode, lines: [...local.lines, `cannot look runs up at the provider: ${error.message}`] };
      throw error;
    }
    const found = await recoverFromProvider(pipeline.outputDir, rows, listed);
    const exitCode = local.exitCode === REPAIR_EXIT.nothingHere ? (found.recovered.length > 0 ? REPAIR_EXIT.ok : REPAIR_EXIT.nothingHere) : local.exitCode;
    return { exitCode, lines: [...local.lines.filter((l) => !/^\(exit \d+\)$/.test(l)), ...found.lines, `(exit ${exitCode})`] };
  } finally {
    await handle.close();
    await http.close();
  }
}
