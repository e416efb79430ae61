import { Lexer } from 'yaml';

/** A run of `rows:` items cut from a manifest, parsed on its own; `firstLine` is the 1-based line its text starts on. */
export interface RowsChunk {
  text: string;
  firstLine: number;
}

/** A manifest cut in two: the top level with the rows' lines blanked (same line numbers), and the rows in chunks. */
export interface YamlSplit {
  head: string;
  chunks: RowsChunk[];
}

/** Rows per chunk: a chunk's tree is garbage before it is promoted (100,000 rows peak at 467 MiB with 100, 614 MiB with 1,000). */
export const ROWS_PER_CHUNK = 100;

/** Lexer markers that carry no source text (yaml's CST: document mode, flow error end, scalar). */
const MARKERS = new Set(['\x02', '\x18', '\x1f']);

/** Anchors, aliases, tags, directives, documents, explicit keys, broken flow: the whole-document parse handles these. */
function isExotic(token: string): boolean {
  return /^[&*!%?]/.test(token) || token === '---' || token === '...' || token === '\x18';
}

interface Scan {
  offset: number;
  lineStart: number;
  atLineStart: boolean;
  column: number;
  depth: number;
  phase: 'before' | 'key' | 'colon' | 'items' | 'after';
  /** A block scalar's header (`|`, `>-`…) was seen: its body, whatever its first line, is inside the item. */
  blockBody: boolean;
  itemIndent: number;
  starts: number[];
  end: number;
}

/** The first token of a line, in the rows block: an item start, part of an item, or the block's end. */
function lineToken(scan: Scan, token: string): void {
  if (token.startsWith('#') || token === '\n' || token === '\r\n') return;
  if (scan.itemIndent < 0) {
    if (token !== '-') throw new NotSplittable();
    scan.itemIndent = scan.column;
  }
  if (token === '-' && scan.column === scan.itemIndent) scan.starts.push(scan.lineStart);
  else if (scan.column <= scan.itemIndent) {
    // Only the next top-level key ends the rows; anything else out of line is for the whole parse to judge.
    if (scan.column !== 0) throw new NotSplittable();
    scan.end = scan.lineStart;
    scan.phase = 'after';
  }
}

class NotSplittable extends Error {}

/** One lexer token: tracks lines, indentation and flow depth, and finds `rows:` and the lines its items start on. */
function feed(scan: Scan, token: string): void {
  if (MARKERS.has(token) && token !== '\x18') return;
  if (isExotic(token)) throw new NotSplittable();
  const start = scan.offset;
  scan.offset += token.length;
  if (scan.atLineStart) {
    // A block scalar's body comes as one token that starts with its indentation.
    const spaces = /^ */.exec(token)?.[0].length ?? 0;
    scan.column += spaces;
    if (spaces === token.length) return;
  }
  const body = scan.blockBody && token !== '\n' && token !== '\r\n' && !token.startsWith('#');
  if (body) scan.blockBody = false;
  else if (/^[|>][-+0-9]*$/.test(token)) scan.blockBody = true;
  if (body) {
    // A block scalar's body is inside its item, even when its first line is blank.
  } else if (scan.atLineStart && scan.depth === 0 && (scan.phase === 'colon' || scan.phase === 'items')) {
    scan.phase = 'items';
    lineToken(scan, token);
  } else if (scan.phase === 'before' && scan.atLineStart && scan.column === 0 && scan.depth === 0 && token === 'rows') scan.phase = 'key';
  else if (scan.phase === 'key') {
    if (token !== ':') throw new NotSplittable();
    scan.phase = 'colon';
  } else if (scan.phase === 'colon' && !/^[ \t]*$/.test(token) && !token.startsWith('#') && token !== '\n' && token !== '\r\n') throw new NotSplittable();
  if (token === '{' || token === '[') scan.depth++;
  if (token === '}' || token === ']') scan.depth--;
  scan.atLineStart = token.endsWith('\n');
  if (scan.atLineStart) {
    scan.column = 0;
    scan.lineStart = start + token.length;
  }
}

function newlinesIn(text: string, from: number, to: number): number {
  let count = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) count++;
  return count;
}

/**
 * Pure: cuts a manifest's block-style `rows:` list into chunks of `perChunk` items at the lines the
 * lexer says items start on, so a 100,000-row file is never one document tree in memory. Null when
 * the file uses anything a chunk could not parse on its own (anchors, aliases, tags, flow `rows`).
 */
export function splitYamlRows(text: string, perChunk = ROWS_PER_CHUNK): YamlSplit | null {
  const scan: Scan = {
    offset: 0,
    lineStart: 0,
    atLineStart: true,
    column: 0,
    depth: 0,
    phase: 'before',
    blockBody: false,
    itemIndent: -1,
    starts: [],
    end: -1,
  };
  try {
    for (const token of new Lexer().lex(text)) feed(scan, token);
  } catch (error) {
    if (error instanceof NotSplittable) return null;
    throw error;
  }
  const first = scan.starts[0];
  if (first === undefined) return null;
  const end = scan.phase === 'after' ? scan.end : text.length;
  const chunks: RowsChunk[] = [];
  let line = 1 + newlinesIn(text, 0, first);
  for (let i = 0; i < scan.starts.length; i += perChunk) {
    const from = scan.starts[i] ?? end;
    const to = scan.starts[i + perChunk] ?? end;
    chunks.push({ text: text.slice(from, to), firstLine: line });
    line += newlinesIn(text, from, to);
  }
  const head = `${text.slice(0, first)}${'\n'.repeat(newlinesIn(text, first, end))}${text.slice(end)}`;
  return { head, chunks };
}
