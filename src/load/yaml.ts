import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { syntaxErrors } from './yaml-errors.js';
import type { Problem } from './problem.js';
import type { RawDefaults, RawRow, RawValue } from './raw.js';
import { DEFAULTABLE_FIELDS } from './row.js';
import { ROWS_PER_CHUNK, splitYamlRows, type YamlSplit } from './yaml-split.js';

/** Line of an offset, in the file (a chunk's lines are shifted to where the chunk starts). */
interface Lines {
  linePos(offset: number): { line: number };
}

export interface LoadedYamlManifest {
  defaults: RawDefaults;
  rows: RawRow[];
  problems: Problem[];
}

const TOP_LEVEL_KEYS = ['defaults', 'rows'];

export { yamlMessage } from './yaml-errors.js';

function keyName(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value).trim() : String(pair.key);
}

function lineOf(lines: Lines, node: { range?: [number, number, number] | null } | null | undefined): number {
  return node?.range ? lines.linePos(node.range[0]).line : 0;
}

/** Reads the pairs of a YAML mapping into named values with the line of each key. */
export function readYamlMap(node: Node, file: string, lines: Lines): Map<string, RawValue> {
  const fields = new Map<string, RawValue>();
  if (!isMap(node)) return fields;
  for (const pair of node.items) {
    const value = pair.value as Node | null;
    fields.set(keyName(pair), {
      value: value && typeof value.toJSON === 'function' ? value.toJSON() : value,
      file,
      line: lineOf(lines, pair.key as Node),
    });
  }
  return fields;
}

interface Parsed {
  doc: Document.Parsed;
  lines: Lines;
  problems: Problem[];
}

/** Parses YAML text whose first line is `firstLine` of the file; syntax errors become problems at the file's lines. */
function parseText(text: string, file: string, firstLine: number): Parsed {
  const problems: Problem[] = [];
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true });
  const shift = firstLine - 1;
  for (const error of syntaxErrors(doc, text, counter)) {
    problems.push({ file, line: error.line + shift, field: '', message: `YAML syntax: ${error.message}` });
  }
  return { doc, problems, lines: shift === 0 ? counter : { linePos: (offset) => ({ line: counter.linePos(offset).line + shift }) } };
}

/**
 * Parses a YAML manifest (`defaults:` + `rows:`) keeping the line of every row and field. A long
 * block-style `rows:` list is parsed in chunks (`yaml-split.ts`), one chunk's tree in memory at a time:
 * a whole document tree costs kilobytes per row. Anything amiss is judged by the whole document instead.
 */
export function parseYamlManifest(text: string, file: string, rowsPerChunk = ROWS_PER_CHUNK): LoadedYamlManifest {
  // 0: one document tree (tests compare the two readings).
  const split = rowsPerChunk > 0 ? splitYamlRows(text, rowsPerChunk) : null;
  return (
    (split && readInChunks(split, file)) ??
    readManifest(parseText(text, file, 1), file, (root, lines, problems) => readRows(root.get('rows', true) as Node | undefined, root, file, lines, problems))
  );
}

type RowsReader = (root: YAMLMap, lines: Lines, problems: Problem[]) => RawRow[];

/** The chunked reading, or undefined when the whole document must judge (a syntax error anywhere, an unexpected `rows:`). */
function readInChunks(split: YamlSplit, file: string): LoadedYamlManifest | undefined {
  const head = parseText(split.head, file, 1);
  const headRows = isMap(head.doc.contents) ? head.doc.contents.get('rows', true) : undefined;
  if (head.problems.length > 0 || !(isScalar(headRows) && headRows.value === null)) return undefined;
  const rows: RawRow[] = [];
  const rowProblems: Problem[] = [];
  for (const chunk of split.chunks) {
    const parsed = parseText(chunk.text, file, chunk.firstLine);
    if (parsed.problems.length > 0 || !isSeq(parsed.doc.contents)) return undefined;
    rows.push(...readRows(parsed.doc.contents, parsed.doc.contents, file, parsed.lines, rowProblems));
  }
  return readManifest(head, file, (_root, _lines, problems) => {
    problems.push(...rowProblems);
    return rows;
  });
}

/** The top level (a mapping, not a pipeline file, known keys, `defaults:`), then the rows as `readRowsOf` reads them. */
function readManifest(parsed: Parsed, file: string, readRowsOf: RowsReader): LoadedYamlManifest {
  const { doc, lines, problems } = parsed;
  const result: LoadedYamlManifest = { defaults: new Map(), rows: [], problems };
  if (problems.length > 0) return result;
  const root = doc.contents;
  if (!isMap(root)) {
    problems.push({ file, line: lineOf(lines, root), field: '', message: 'expected a mapping with `rows:` (a list of rows) and optionally `defaults:`' });
    return result;
  }
  if (root.has('provider') && !root.has('rows')) {
    problems.push({
      file,
      line: 1,
      field: '',
      message: 'this is a pipeline file, not a manifest: pass it with --pipeline and keep it outside the manifests folder',
    });
    return result;
  }
  for (const pair of root.items) {
    const name = keyName(pair);
    if (!TOP_LEVEL_KEYS.includes(name)) {
      problems.push({ file, line: lineOf(lines, pair.key as Node), field: name, message: `unknown top-level key (allowed: ${TOP_LEVEL_KEYS.join(', ')})` });
    }
  }
  result.defaults = readDefaults(root, file, lines, problems);
  result.rows = readRowsOf(root, lines, problems);
  return result;
}

/** The `defaults:` block: a mapping of fields a row can inherit; absent or empty is no defaults. */
function readDefaults(root: YAMLMap, file: string, lines: Lines, problems: Problem[]): RawDefaults {
  const defaults = root.get('defaults', true) as Node | null | undefined;
  if (defaults == null || (isScalar(defaults) && defaults.value === null)) return new Map();
  if (!isMap(defaults)) {
    problems.push({ file, line: lineOf(lines, defaults), field: 'defaults', message: 'must be a mapping of field: value' });
    return new Map();
  }
  const read = readYamlMap(defaults, file, lines);
  problems.push(...defaultsProblems(read, file));
  return read;
}

/** The `rows:` list, each row a mapping with the line of every field; a row that is not a mapping is a problem. */
function readRows(rows: Node | undefined, parent: Node, file: string, lines: Lines, problems: Problem[]): RawRow[] {
  if (!isSeq(rows)) {
    problems.push({
      file,
      line: lineOf(lines, rows ?? parent),
      field: 'rows',
      message: 'is required: a list of rows, each a mapping with image, prompt, duration…',
    });
    return [];
  }
  const read: RawRow[] = [];
  for (const item of rows.items as Node[]) {
    const line = lineOf(lines, item);
    if (!isMap(item)) {
      problems.push({ file, line, field: '', message: 'each row must be a mapping (image: …, prompt: …, duration: …)' });
      continue;
    }
    read.push({ file, line, fields: readYamlMap(item, file, lines) });
  }
  return read;
}

/** A `defaults:` block (a manifest's or the pipeline's) may only name row fields that can have a default. */
export function defaultsProblems(defaults: RawDefaults, file: string): Problem[] {
  const allowed = DEFAULTABLE_FIELDS.join(', ');
  return [...defaults]
    .filter(([name]) => !DEFAULTABLE_FIELDS.includes(name))
    .map(([name, value]) => ({ file, line: value.line, field: `defaults.${name}`, message: `not a row field that can have a default (allowed: ${allowed})` }));
}
