/**
 * The review marks file, `<out>/review.json`: a list of `{ key, request, verdict, note?, at }`, one mark per line.
 * A mark is about one version of a row (its request hash); the later mark for a (key, request) wins.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { display } from '../load/load.js';
import { InputError, type Problem } from '../load/problem.js';
import { writeFileAtomic } from '../state/disk-write.js';

export const MARKS_FILE = 'review.json';
/** A note is a short instruction appended to the prompt: long enough for a sentence or two, far under the prompt's 2,500. */
export const MAX_NOTE_CHARS = 500;
export const VERDICTS = ['approved', 'redo'] as const;
export type Verdict = (typeof VERDICTS)[number];

export interface Mark {
  /** `<manifest>/<id>`. */
  key: string;
  /** The request hash of the version judged (`requestHash`, as the journal and the report hold it). */
  request: string;
  verdict: Verdict;
  note?: string;
  /** ISO time the mark was made. */
  at: string;
}

/** Newlines and tabs are a note's own; other control and format characters (zero-width, bidi overrides) would reach the prompt unseen. */
const INVISIBLE = /(?![\n\t])[\p{Cc}\p{Cf}]/u;

const noteField = z
  .string()
  .max(MAX_NOTE_CHARS, `at most ${MAX_NOTE_CHARS} characters`)
  .refine((s) => !INVISIBLE.test(s), 'holds an invisible character (a control, zero-width or direction mark): type the note again');

export const markSchema = z
  .object({
    key: z.string().regex(/^[^/]+\/.+$/, 'must be <manifest>/<id>'),
    request: z.string().regex(/^[0-9a-f]{16}$/, 'must be a request hash (16 hex digits, as report.json shows)'),
    verdict: z.enum(VERDICTS, { error: `must be ${VERDICTS.join(' or ')}` }),
    note: noteField.optional(),
    at: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO time'),
  })
  .strict()
  .refine((m) => m.verdict !== 'redo' || (m.note ?? '').trim() !== '', { path: ['note'], message: 'a redo needs a note: what to change' });

/** The key of one version of a row. */
export const versionKey = (key: string, request: string) => `${key}\u0000${request}`;

/** Pure: the text of review.json → its marks, or every problem (file, line, field). */
export function parseMarks(text: string, file: string): Mark[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new InputError([
      {
        file,
        line: 0,
        field: '',
        message: `not JSON (${(error as Error).message}): restore review.json from a backup, or fix it by hand (the journal keeps the notes of redos already run, so none of them is paid again)`,
      },
    ]);
  }
  if (!Array.isArray(raw))
    throw new InputError([{ file, line: 0, field: '', message: 'must be a list of marks ([{ "key", "request", "verdict", "note", "at" }])' }]);
  // Written one mark per line, after the opening bracket: entry i is on line i + 2 (a hand-formatted file: no line).
  const lines = text.trimEnd().split('\n');
  const lineOf = (i: number) => (lines.length === raw.length + 2 ? i + 2 : 0);
  const problems: Problem[] = [];
  const marks: Mark[] = [];
  raw.forEach((entry: unknown, i) => {
    const parsed = markSchema.safeParse(entry);
    if (parsed.success) marks.push(parsed.data as Mark);
    else
      for (const issue of parsed.error.issues) problems.push({ file, line: lineOf(i), field: `[${[i, ...issue.path].join('].[')}]`, message: issue.message });
  });
  if (problems.length > 0) throw new InputError(problems);
  return marks;
}

/** Pure: the marks as review.json holds them, one per line (a diff shows each mark made). */
export function renderMarks(marks: readonly Mark[]): string {
  if (marks.length === 0) return '[]\n';
  return `[\n${marks.map((m) => `  ${JSON.stringify(m)}`).join(',\n')}\n]\n`;
}

/** Pure: the mark that counts for each version of a row: the later one in the list. */
export function latestMarks(marks: readonly Mark[]): Map<string, Mark> {
  const latest = new Map<string, Mark>();
  for (const mark of marks) latest.set(versionKey(mark.key, mark.request), mark);
  return latest;
}

/** Pure: the list with a new mark, which replaces any earlier one for the same version (the file keeps one per version). */
export function withMark(marks: readonly Mark[], mark: Mark): Mark[] {
  const version = versionKey(mark.key, mark.request);
  return [...marks.filter((m) => versionKey(m.key, m.request) !== version), mark];
}

export const marksFile = (outDir: string) => path.join(outDir, MARKS_FILE);

/** The folder's marks; none when it has no review.json. */
export async function readMarks(outDir: string): Promise<Mark[]> {
  const file = marksFile(outDir);
  const shown = display(file);
  const text = await readFile(file, 'utf8').catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new InputError([{ file: shown, line: 0, field: '', message: `cannot read (${code ?? String(error)})` }]);
  });
  return text === undefined ? [] : parseMarks(text, shown);
}

/** review.json replaced whole: a reader sees the old marks or the new ones, never half a file. */
export async function writeMarks(outDir: string, marks: readonly Mark[]): Promise<void> {
  await writeFileAtomic(marksFile(outDir), renderMarks(marks));
}
