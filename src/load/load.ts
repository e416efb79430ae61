import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Pipeline } from '../config/pipeline.js';
import type { ModelProtocol } from '../model/kling-v3.js';
import type { Problem } from './problem.js';
import { parseCsvManifest } from './csv.js';
import { inspectImage, type ImageInfo } from './images.js';
import type { RawDefaults, RawRow } from './raw.js';
import { FAL_VOICE_IDS_MESSAGE, parseRow, type ImageUse, type Row } from './row.js';
import { parseYamlManifest } from './yaml.js';

export interface Manifest {
  /** The file's base name without extension: the output subfolder and the report's `manifest`. */
  name: string;
  file: string;
  /** The file as problems name it (relative to the working folder when inside it). */
  shown: string;
  rows: Row[];
}

export interface LoadedManifests {
  manifests: Manifest[];
  /** Checked local images by absolute path. */
  images: Map<string, ImageInfo>;
  problems: Problem[];
}

const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.csv'];

/** Files named on the command line, and every manifest directly inside each folder named (sorted). */
export async function expandManifestPaths(args: readonly string[]): Promise<{ files: string[]; problems: Problem[] }> {
  const files: string[] = [];
  const problems: Problem[] = [];
  for (const arg of args) {
    const abs = path.resolve(arg);
    try {
      const info = await stat(abs);
      if (info.isDirectory()) {
        const entries = (await readdir(abs)).filter((n) => MANIFEST_EXTENSIONS.includes(path.extname(n).toLowerCase()) && !n.startsWith('.'));
        if (entries.length === 0) problems.push({ file: arg, line: 0, field: '', message: 'folder holds no manifests (.yaml, .yml or .csv)' });
        files.push(...entries.sort().map((n) => path.join(abs, n)));
      } else if (MANIFEST_EXTENSIONS.includes(path.extname(abs).toLowerCase())) {
        files.push(abs);
      } else {
        problems.push({ file: arg, line: 0, field: '', message: 'not a manifest: expected a .yaml, .yml or .csv file, or a folder of them' });
      }
    } catch {
      problems.push({ file: arg, line: 0, field: '', message: 'no such file or folder' });
    }
  }
  return { files: [...new Set(files)], problems };
}

export function display(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

async function readRawRows(file: string): Promise<{ defaults: RawDefaults; rows: RawRow[]; problems: Problem[] }> {
  const shown = display(file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    return {
      defaults: new Map(),
      rows: [],
      problems: [{ file: shown, line: 0, field: '', message: `cannot read (${(error as NodeJS.ErrnoException).code})` }],
    };
  }
  if (path.extname(file).toLowerCase() === '.csv') return { defaults: new Map(), ...parseCsvManifest(bytes, shown) };
  return parseYamlManifest(bytes.toString('utf8').replace(/^\uFEFF/, ''), shown);
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
 * Defaults apply in order pipeline file < manifest `defaults:` < the row itself.
 */
export async function loadManifests(args: readonly string[], pipeline: ManifestPipeline): Promise<LoadedManifests> {
  const { files, problems } = await expandManifestPaths(args);
  const protocol = protocolOf(pipeline);
  problems.push(...defaultVoiceProblems(pipeline.defaults, protocol));
  const manifests: Manifest[] = [];
  const imageUses: ImageUse[] = [];
  const names = new Map<string, string>();
  for (const file of files) {
    const name = path.basename(file, path.extname(file));
    const other = names.get(name.toLowerCase());
    if (other !== undefined) {
      problems.push({
        file: display(file),
        line: 0,
        field: '',
        message: `has the same name as ${other}: both would write to the output folder "${name}/" (rename one)`,
      });
      continue;
    }
    names.set(name.toLowerCase(), display(file));
    const raw = await readRawRows(file);
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
    if (raw.rows.length === 0 && raw.problems.length === 0) problems.push({ file: display(file), line: 0, field: '', message: 'has no rows' });
    problems.push(...checkDuplicateIds(ids));
    manifests.push({ name, file, shown: display(file), rows });
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
