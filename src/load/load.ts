import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pipeline } from '../config/pipeline.js';
import type { ModelProtocol } from '../model/kling-v3.js';
import type { Problem } from './problem.js';
import { parseCsvManifest } from './csv.js';
import { inspectImage, type ImageInfo } from './images.js';
import type { RawDefaults, RawRow } from './raw.js';
import { downloadManifest, type DownloadOptions } from './remote.js';
import { formatOfDownload } from './remote-format.js';
import { FAL_VOICE_IDS_MESSAGE, parseRow, type ImageUse, type Row } from './row.js';
import { expandManifestArgs, nameProblem, type ManifestSource } from './source.js';
import { parseXlsxManifest } from './xlsx.js';
import { WORKBOOK_LIMITS, workbookSizeProblem } from './xlsx-zip.js';
import { parseYamlManifest } from './yaml.js';

export { display } from './source.js';

export interface Manifest {
  /** The file's base name without extension (and `-<sheet>` when a sheet is picked), or a URL's given name: the output subfolder and the report's `manifest`. */
  name: string;
  /** What loads it again: the file's absolute path (`#sheet` after it when one was picked); a URL manifest's `shown` (never loaded again). */
  file: string;
  /** The manifest as problems name it: the file relative to the working folder when inside it, or `name=https://host/…` (source.ts `shownUrl`). */
  shown: string;
  /** A URL manifest's rows as read (`rowsDigest`), so a run can tell the sheet changed. */
  sha256?: string;
  rows: Row[];
}

export interface LoadedManifests {
  manifests: Manifest[];
  /** Checked local images by absolute path. */
  images: Map<string, ImageInfo>;
  problems: Problem[];
}

interface RawManifest {
  defaults: RawDefaults;
  rows: RawRow[];
  problems: Problem[];
  sha256?: string;
}

const failed = (shown: string, message: string): RawManifest => ({ defaults: new Map(), rows: [], problems: [{ file: shown, line: 0, field: '', message }] });

/** A manifest's bytes, read by its format: YAML, CSV or a worksheet of an .xlsx. */
async function parseBytes(bytes: Buffer, format: 'yaml' | 'csv' | 'xlsx', source: ManifestSource): Promise<RawManifest> {
  if (source.sheet !== undefined && format !== 'xlsx')
    return failed(source.shown, `#${source.sheet} picks a sheet of an .xlsx workbook; this manifest is ${format.toUpperCase()}`);
  if (format === 'csv') return { defaults: new Map(), ...parseCsvManifest(bytes, source.shown) };
  if (format === 'xlsx') return { defaults: new Map(), ...(await parseXlsxManifest(bytes, source.shown, source.sheet)) };
  return parseYamlManifest(bytes.toString('utf8').replace(/^\uFEFF/, ''), source.shown);
}

/**
 * The SHA-256 of the rows as read (each row's line and fields), not of the bytes: a server that rebuilds the same
 * sheet with new bytes each time (an .xlsx export's timestamps) is not a changed sheet.
 */
export function rowsDigest(rows: readonly RawRow[]): string {
  const hash = createHash('sha256');
  for (const row of rows) hash.update(`${JSON.stringify([row.line, [...row.fields].map(([name, raw]) => [name, raw.value ?? null])])}\n`);
  return hash.digest('hex');
}

async function readRawRows(source: ManifestSource, download: DownloadOptions): Promise<RawManifest> {
  if (source.kind === 'url') {
    // Downloaded here, once, before anything is sent: the night runs on the bytes hashed now.
    const got = await downloadManifest(source.url, download);
    if ('problem' in got) return failed(source.shown, got.problem);
    const format = formatOfDownload(got.url, new URL(source.url), got.contentType, got.bytes);
    if (typeof format !== 'string') return failed(source.shown, format.problem);
    const parsed = await parseBytes(got.bytes, format, source);
    return { ...parsed, sha256: rowsDigest(parsed.rows) };
  }
  const ext = path.extname(source.path).toLowerCase();
  let bytes: Buffer;
  try {
    // A workbook is read whole: one larger than the cap is refused before it is in memory.
    const size = ext === '.xlsx' ? (await stat(source.path)).size : 0;
    if (size > WORKBOOK_LIMITS.fileBytes) return failed(source.shown, workbookSizeProblem(size, []) ?? '');
    bytes = await readFile(source.path);
  } catch (error) {
    return failed(source.shown, `cannot read (${(error as NodeJS.ErrnoException).code})`);
  }
  return parseBytes(bytes, ext === '.csv' ? 'csv' : ext === '.xlsx' ? 'xlsx' : 'yaml', source);
}

interface RowId {
  id: string;
  idDerived: boolean;
  file: string;
  line: number;
}

function checkDuplicateIds(rows: readonly RowId[]): Problem[] {
  const problems: Problem[] = [];
  // Case-insensitive: "Hero" and "hero" are the same file on macOS and Windows.
  const firstLine = new Map<string, number>();
  for (const row of rows) {
    const key = row.id.toLowerCase();
    const first = firstLine.get(key);
    if (first === undefined) {
      firstLine.set(key, row.line);
    } else if (row.idDerived) {
      problems.push({
        file: row.file,
        line: row.line,
        field: 'id',
        message: `this row asks for exactly what line ${first} asks for (give each an id if both are wanted)`,
      });
    } else {
      problems.push({
        file: row.file,
        line: row.line,
        field: 'id',
        message: `"${row.id}" is already used on line ${first} (ids must be unique within a manifest, ignoring case)`,
      });
    }
  }
  return problems;
}

/** What manifests are checked against: the pipeline's defaults and, when known, the provider (and the simulator's protocol). */
export type ManifestPipeline = Pick<Pipeline, 'defaults'> & { provider?: Pipeline['provider']; simulator?: Pick<Pipeline['simulator'], 'protocol'> };

/** The model schema the pipeline's provider speaks: fal's (no voice_ids) for fal and a simulator speaking fal, else Runflow's. */
export function protocolOf(pipeline: Omit<ManifestPipeline, 'defaults'>): ModelProtocol {
  if (pipeline.provider === 'fal') return 'fal';
  if (pipeline.provider === 'simulator' && pipeline.simulator?.protocol === 'fal') return 'fal';
  return 'runflow';
}

/** voice_ids given as a default, reported where the default is written (once, however many rows inherit it). */
function defaultVoiceProblems(defaults: RawDefaults, protocol: ModelProtocol): Problem[] {
  const voices = defaults.get('voice_ids');
  if (protocol !== 'fal' || voices?.value === undefined || voices.value === null || (typeof voices.value === 'string' && voices.value.trim() === '')) return [];
  return [{ file: voices.file, line: voices.line, field: 'voice_ids', message: FAL_VOICE_IDS_MESSAGE }];
}

/**
 * Loads and validates every manifest completely: all problems in all files, nothing sent.
 * Defaults apply in order pipeline file < manifest `defaults:` < the row itself. `download`: how URL manifests are
 * fetched (the command's signal, so Ctrl-C stops a download).
 */
export async function loadManifests(args: readonly string[], pipeline: ManifestPipeline, download: DownloadOptions = {}): Promise<LoadedManifests> {
  const { sources, problems } = await expandManifestArgs(args);
  const protocol = protocolOf(pipeline);
  problems.push(...defaultVoiceProblems(pipeline.defaults, protocol));
  const manifests: Manifest[] = [];
  const imageUses: ImageUse[] = [];
  const names = new Map<string, string>();
  for (const source of sources) {
    const { name, shown } = source;
    const other = names.get(name.toLowerCase());
    const unusable = nameProblem(name);
    if (other !== undefined || unusable !== undefined) {
      problems.push({
        file: shown,
        line: 0,
        field: '',
        message: unusable ?? `has the same name as ${other ?? ''}: both would write to the output folder "${name}/" (rename one)`,
      });
      continue;
    }
    names.set(name.toLowerCase(), shown);
    const raw = await readRawRows(source, download);
    problems.push(...raw.problems);
    problems.push(...defaultVoiceProblems(raw.defaults, protocol));
    const defaults: RawDefaults = new Map([...pipeline.defaults, ...raw.defaults]);
    const rows: Row[] = [];
    const ids: RowId[] = [];
    for (const rawRow of raw.rows) {
      const parsed = parseRow(rawRow, defaults, name, protocol);
      imageUses.push(...parsed.images);
      problems.push(...parsed.problems);
      if (parsed.row) rows.push(parsed.row);
      // Explicit ids count even on rows with other mistakes, so every clash shows in one pass.
      if (parsed.id !== undefined) ids.push({ id: parsed.id, idDerived: parsed.row?.idDerived ?? false, file: rawRow.file, line: rawRow.line });
    }
    if (raw.rows.length === 0 && raw.problems.length === 0) problems.push({ file: shown, line: 0, field: '', message: 'has no rows' });
    problems.push(...checkDuplicateIds(ids));
    manifests.push({ name, file: source.file, shown, rows, ...(raw.sha256 !== undefined && { sha256: raw.sha256 }) });
  }
  const images = new Map<string, ImageInfo>();
  const inspected = new Map<string, Promise<ImageInfo | { problem: string }>>();
  for (const use of imageUses) {
    if (!inspected.has(use.ref.path)) inspected.set(use.ref.path, inspectImage(use.ref.path));
    const result = await inspected.get(use.ref.path)!;
    if ('problem' in result)
      problems.push({ file: use.file, line: use.line, field: use.field, message: `${JSON.stringify(use.ref.written)} ${result.problem}` });
    else images.set(use.ref.path, result);
  }
  return { manifests, images, problems: dedupe(problems) };
}

/** A bad default shows once, not once per row that inherits it. */
function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file}\0${p.line}\0${p.field}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
