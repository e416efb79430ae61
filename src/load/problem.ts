import { ClipmillError } from '../infra/errors.js';

/** One thing wrong with the user's input, located precisely enough to fix without guessing. */
export interface Problem {
  file: string;
  line: number;
  field: string;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}` : p.file;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}

/** Sorted by file then line, so a long list reads top to bottom like the manifest. */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.field.localeCompare(b.field));
}

/** Thrown when input or configuration is invalid: the CLI prints every problem and exits 2. */
export class InputError extends ClipmillError {
  readonly exit = 'invalid';
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[], summary?: string, options?: { cause?: unknown }) {
    super(summary ?? `${problems.length} problem${problems.length === 1 ? '' : 's'} in the input`, options);
    this.name = 'InputError';
    this.problems = sortProblems(problems);
  }
}
