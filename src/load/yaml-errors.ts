/** YAML syntax errors at the line a user looks at: yaml reports some where it gave up reading, not where the mistake is. */
import { visit, type Document, type LineCounter, type YAMLError } from 'yaml';

export interface YamlSyntaxError {
  /** 1-based line in the parsed text. */
  line: number;
  message: string;
}

/** yaml's message without the position suffix and code frame, which the file:line prefix already gives. */
export function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
}

/** Where a node starts, for the quoted scalar or flow collection that ends at `offset` (where yaml gave up on it). */
function startOfNodeEndingAt(doc: Document.Parsed, offset: number, kind: 'quoted' | 'flow'): number | undefined {
  let start: number | undefined;
  const consider = (range: readonly number[] | null | undefined) => {
    if (range?.[1] === offset && range[0] !== undefined && range[0] < offset) start = range[0];
  };
  visit(doc, {
    Scalar: (_key, node) => {
      if (kind === 'quoted' && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE')) consider(node.range);
    },
    Map: (_key, node) => {
      if (kind === 'flow' && node.flow === true) consider(node.range);
    },
    Seq: (_key, node) => {
      if (kind === 'flow' && node.flow === true) consider(node.range);
    },
  });
  return start;
}

function indentOf(text: string, counter: LineCounter, line: number): number {
  const start = counter.lineStarts[line - 1] ?? 0;
  return /^ */.exec(text.slice(start, start + 200))?.[0].length ?? 0;
}

/** A key running over two lines: a line indented too far (the mistake is on it), or a field name without its ":" (on the first). */
function multilineKey(error: YAMLError, text: string, counter: LineCounter): YamlSyntaxError {
  const keyLine = counter.linePos(error.pos[0]).line;
  const colonLine = counter.linePos(error.pos[1]).line;
  if (colonLine > keyLine && indentOf(text, counter, colonLine) > indentOf(text, counter, keyLine))
    return {
      line: colonLine,
      message:
        'this line is indented more than the line above, so it reads as part of that value: line it up with the other fields (or quote a text holding ": ")',
    };
  return { line: keyLine, message: `${yamlMessage(error.message)} (is a ":" missing after the field name?)` };
}

function locate(error: YAMLError, doc: Document.Parsed, text: string, counter: LineCounter): YamlSyntaxError {
  const message = yamlMessage(error.message);
  const at = (offset: number) => counter.linePos(offset).line;
  const quote = /^Missing closing (["'])quote/.exec(message)?.[1];
  if (error.code === 'MISSING_CHAR' && quote !== undefined) {
    const opened = startOfNodeEndingAt(doc, error.pos[0], 'quoted');
    if (opened !== undefined) return { line: at(opened), message: `the ${quote} that opens this text is never closed` };
  }
  const bracket = /must be sufficiently indented and end with an? ([\]}])/.exec(message)?.[1];
  if (error.code === 'BAD_INDENT' && bracket !== undefined) {
    const opened = startOfNodeEndingAt(doc, error.pos[0], 'flow');
    if (opened !== undefined) return { line: at(opened), message: `the ${bracket === ']' ? '[' : '{'} opened here is never closed with ${bracket}` };
  }
  if (error.code === 'MULTILINE_IMPLICIT_KEY') return multilineKey(error, text, counter);
  const line = error.linePos?.[0].line ?? at(error.pos[0]);
  if (error.code === 'BLOCK_AS_IMPLICIT_KEY') return { line, message: `${message} (a text holding ": " must be in quotes)` };
  if (error.code === 'BAD_INDENT' || message.startsWith('Sequence item without')) return { line, message: `${message} (check this line's indentation)` };
  return { line, message };
}

/**
 * The document's syntax errors, each at the line of the mistake. After the first error that breaks the structure
 * (anything but a repeated key) the rest are dropped: yaml's recovery only restates that mistake on later lines.
 */
export function syntaxErrors(doc: Document.Parsed, text: string, counter: LineCounter): YamlSyntaxError[] {
  const found: YamlSyntaxError[] = [];
  for (const first of doc.errors) {
    // "Nested mappings…" and "Implicit keys…" name one key twice; the second says which lines it spans.
    const spanning =
      first.code === 'BLOCK_AS_IMPLICIT_KEY' ? doc.errors.find((e) => e.code === 'MULTILINE_IMPLICIT_KEY' && e.pos[0] === first.pos[0]) : undefined;
    const error = spanning ?? first;
    found.push(locate(error, doc, text, counter));
    if (error.code !== 'DUPLICATE_KEY') break;
  }
  return found;
}
