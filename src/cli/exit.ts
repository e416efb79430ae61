import { inspect } from 'node:util';
import { CommanderError } from 'commander';
import { ClipmillError } from '../infra/errors.js';
import { redactText } from '../infra/http.js';
import { formatProblem, InputError } from '../load/problem.js';
import { EXIT } from '../report/summary.js';

const HELP_CODES = new Set(['commander.helpDisplayed', 'commander.version', 'commander.help']);

/** Pure: the exit code of an error that reached the CLI. Ours say theirs; anything else is a bug in clipmill (4), never "rows failed". */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return HELP_CODES.has(error.code) ? EXIT.ok : EXIT.invalid;
  if (error instanceof ClipmillError) return EXIT[error.exit];
  return EXIT.internal;
}

/** The next step after an internal error, in one line: the reader at 3 a.m. needs to know nothing is lost. */
export const INTERNAL_ADVICE =
  `clipmill did not expect this (exit ${EXIT.internal}): please report it with this message (rerun with --debug or CLIPMILL_DEBUG=1 for the stack). ` +
  'Nothing is lost: the journal records each step before the next one, and running the same command again resumes where this one stopped';

/** Pure: what the CLI prints on stderr for an error that reached it (commander prints its own). Every line goes through redactText. */
export function errorLines(error: unknown, debug: boolean): string[] {
  if (error instanceof CommanderError) return [];
  const lines: string[] = [];
  if (error instanceof InputError) {
    for (const problem of error.problems) lines.push(formatProblem(problem));
    lines.push(`${error.message}; nothing was sent. Fix them and run again.`);
  } else if (error instanceof ClipmillError) {
    lines.push(`clipmill: ${error.message}`);
  } else {
    const message = error instanceof Error ? (error.name === 'Error' ? error.message : `${error.name}: ${error.message}`) : String(error);
    lines.push(`clipmill: internal error: ${message}. ${INTERNAL_ADVICE}.`);
  }
  // The stack and every cause, only when asked for: they are for whoever fixes the bug, not for the night's log.
  if (debug) lines.push(inspect(error, { depth: 4 }));
  return lines.map(redactText);
}

/** `--debug` or CLIPMILL_DEBUG set to anything but empty, 0 or false. */
export function debugWanted(flag: unknown, env: NodeJS.ProcessEnv): boolean {
  const value = env.CLIPMILL_DEBUG?.trim().toLowerCase();
  return flag === true || (value !== undefined && value !== '' && value !== '0' && value !== 'false');
}
