/**
 * Lists import cycles between the files under `src/` (value and type imports alike): a cycle hides which
 * module depends on which, so none is allowed.
 *
 *   node --import tsx scripts/cycles.ts [--fail]
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return filesUnder(full);
    return full.endsWith('.ts') ? [full] : [];
  });
}

/** Each file's relative imports, resolved to files. */
function graphOf(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) =>
      path.join(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')),
    );
    graph.set(file, targets);
  }
  return graph;
}

/** Depth-first search: every back edge closes a cycle, reported once by its smallest rotation. */
function cyclesOf(graph: ReadonlyMap<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        const cycle = stack.slice(stack.indexOf(next));
        const start = cycle.indexOf([...cycle].sort()[0]!);
        const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.set(rotated.join(' → '), rotated);
      } else if (!state.has(next) && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return [...found.values()];
}

const cycles = cyclesOf(graphOf(filesUnder('src')));
console.log(`import cycles: ${cycles.length}`);
for (const cycle of cycles) console.log(`  ${[...cycle, cycle[0]].join(' → ')}`);
if (process.argv.includes('--fail') && cycles.length > 0) process.exitCode = 1;
