import type { Problem } from '../problem.js';

/** Gathers every problem of a row, each with its file:line and field, so that all are reported at once. */
export class Collector {
  readonly problems: Problem[] = [];
  add(at: { file: string; line: number }, field: string, message: string): void {
    this.problems.push({ file: at.file, line: at.line, field, message });
  }
}
