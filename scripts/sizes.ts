/**
 * Lists files over the line limit and functions (declarations, methods, arrows, function expressions) over the
 * function limit, measured with the TypeScript parser so that strings and comments never confuse the count.
 *
 *   node --import tsx scripts/sizes.ts [--max-file N] [--max-function N] [--fail] [path...]
 *
 * Paths are files or folders (default `src`); `--fail` exits 1 when anything is over, for CI.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

interface Limits {
  maxFileLines: number;
  maxFunctionLines: number;
}

interface Finding {
  file: string;
  line: number;
  name: string;
  lines: number;
}

interface Arguments extends Limits {
  roots: string[];
  fail: boolean;
}

function parseArguments(argv: readonly string[]): Arguments {
  const parsed: Arguments = { maxFileLines: 300, maxFunctionLines: 60, roots: [], fail: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--fail') parsed.fail = true;
    else if (arg === '--max-file' || arg === '--max-function') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value <= 0) throw new Error(`${arg} needs a positive whole number`);
      if (arg === '--max-file') parsed.maxFileLines = value;
      else parsed.maxFunctionLines = value;
    } else parsed.roots.push(arg);
  }
  if (parsed.roots.length === 0) parsed.roots.push('src');
  return parsed;
}

/** Every .ts file under `root` (declaration files are not code), in a stable order. */
function listSources(root: string): string[] {
  if (statSync(root).isFile()) return [root];
  return readdirSync(root, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(root, entry.name);
      if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : listSources(full);
      return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [full] : [];
    });
}

function isFunctionLike(node: ts.Node): node is ts.FunctionLikeDeclaration {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isArrowFunction(node) ||
    ts.isFunctionExpression(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node)
  );
}

/** A readable name: the declared one, the variable or property an arrow is assigned to, or the call it is passed to. */
function nameOf(node: ts.FunctionLikeDeclaration, source: ts.SourceFile): string {
  const owner = ts.isClassLike(node.parent) && node.parent.name ? `${node.parent.name.text}.` : '';
  if (ts.isConstructorDeclaration(node)) return `${owner}constructor`;
  if (node.name) return `${owner}${node.name.getText(source)}`;
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) return parent.name.getText(source);
  if (ts.isCallExpression(parent)) return `<callback of ${parent.expression.getText(source).slice(0, 40)}>`;
  return '<anonymous>';
}

function lineOf(source: ts.SourceFile, position: number): number {
  return source.getLineAndCharacterOfPosition(position).line + 1;
}

/** Functions longer than the limit, counted from their first token (not their doc comment) to their closing line. */
function longFunctions(file: string, text: string, maxLines: number): Finding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Finding[] = [];
  const visit = (node: ts.Node): void => {
    if (isFunctionLike(node) && node.body) {
      const first = lineOf(source, node.getStart(source));
      const lines = lineOf(source, node.getEnd()) - first + 1;
      if (lines > maxLines) found.push({ file, line: first, name: nameOf(node, source), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Lines as an editor shows them; a final newline does not start another line. */
function countLines(text: string): number {
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

function main(): void {
  const args = parseArguments(process.argv.slice(2));
  const longFiles: Finding[] = [];
  const functions: Finding[] = [];
  for (const file of args.roots.flatMap(listSources)) {
    const text = readFileSync(file, 'utf8');
    const lines = countLines(text);
    if (lines > args.maxFileLines) longFiles.push({ file, line: 1, name: '', lines });
    functions.push(...longFunctions(file, text, args.maxFunctionLines));
  }
  const lines = [`files over ${args.maxFileLines} lines: ${longFiles.length}`];
  for (const f of longFiles.sort((a, b) => b.lines - a.lines)) lines.push(`  ${String(f.lines).padStart(5)}  ${f.file}`);
  lines.push(`functions over ${args.maxFunctionLines} lines: ${functions.length}`);
  for (const f of functions.sort((a, b) => b.lines - a.lines)) lines.push(`  ${String(f.lines).padStart(5)}  ${f.file}:${f.line}  ${f.name}`);
  // A reader that stops early (`| head`) is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.fail && longFiles.length + functions.length > 0) process.exitCode = 1;
}

main();
