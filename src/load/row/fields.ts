/** The row's fields, and how one written value (YAML or a spreadsheet cell) is read into a typed one. */
import path from 'node:path';
import { MAX_DURATION_S, MIN_DURATION_S, type ImageRef } from '../../model/kling-v3.js';
import type { RawValue } from '../raw.js';
import { isUrlShown } from '../source.js';
import type { Collector } from './collector.js';
import type { ImageUse } from './types.js';

export const ROW_FIELDS = [
  'id',
  'image',
  'prompt',
  'multi_prompt',
  'shot_type',
  'duration',
  'generate_audio',
  'end_image',
  'negative_prompt',
  'cfg_scale',
  'elements',
  'voice_ids',
  'notes',
] as const;

/** Fields that may have a default (an id or a note never applies to every row). */
export const DEFAULTABLE_FIELDS: readonly string[] = ROW_FIELDS.filter((f) => f !== 'id' && f !== 'notes');

export function isBlank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

/** A value quoted for a message, cut short. */
export function show(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 40 ? `"${s.slice(0, 37)}..."` : `"${s}"`;
}

export function readString(raw: RawValue, field: string, out: Collector, maxChars?: number): string | undefined {
  const v = raw.value;
  if (typeof v !== 'string' && typeof v !== 'number') {
    out.add(raw, field, `must be text, got ${Array.isArray(v) ? 'a list' : typeof v}`);
    return undefined;
  }
  const s = String(v).trim();
  if (maxChars !== undefined && s.length > maxChars) {
    out.add(raw, field, `is ${s.length} characters long (at most ${maxChars})`);
    return undefined;
  }
  return s;
}

/** Whole seconds; spreadsheets write 5 as "5", "5.0" or "5s". A clip is 3 to 15 s; one shot of a multi-shot clip may be 1 s (`min`). */
export function readSeconds(raw: RawValue, field: string, out: Collector, min = MIN_DURATION_S): number | undefined {
  const v = raw.value;
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim().replace(/\s*s(ec(onds?)?)?$/i, '') : '';
  const n = text === '' ? Number.NaN : Number(text);
  const allowed = `whole seconds from ${min} to ${MAX_DURATION_S}`;
  if (!Number.isInteger(n)) {
    out.add(raw, field, `${show(v)} is not a whole number of seconds (${allowed})`);
    return undefined;
  }
  if (n < min || n > MAX_DURATION_S) {
    out.add(raw, field, `${n} is out of range (${allowed})`);
    return undefined;
  }
  return n;
}

const TRUE_WORDS = new Set(['true', 'yes', 'y', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'no', 'n', '0', 'off']);

export function readBoolean(raw: RawValue, field: string, out: Collector): boolean | undefined {
  const v = raw.value;
  if (typeof v === 'boolean') return v;
  if (typeof v !== 'string' && typeof v !== 'number') {
    out.add(raw, field, `must be yes or no (true or false), got ${Array.isArray(v) ? 'a list' : typeof v}`);
    return undefined;
  }
  const word = String(v).trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  out.add(raw, field, `${show(v)} is not a yes/no value (true or false)`);
  return undefined;
}

export function readNumber(raw: RawValue, field: string, out: Collector, min: number, max: number): number | undefined {
  const v = raw.value;
  // Spreadsheets in comma-decimal locales write 0,5.
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim().replace(',', '.')) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    out.add(raw, field, `${show(v)} is not a number from ${min} to ${max}`);
    return undefined;
  }
  return n;
}

/** Rows naming the same image share one ref: 100,000 rows of one image held 100,000 copies of its path. */
const fileRefs = new Map<string, Extract<ImageRef, { kind: 'file' }>>();
const FILE_REFS_KEPT = 10_000;

function fileRef(writtenIn: string, written: string): Extract<ImageRef, { kind: 'file' }> {
  const abs = path.resolve(path.dirname(writtenIn), written);
  const id = `${abs}\0${written}`;
  let ref = fileRefs.get(id);
  if (ref === undefined) {
    if (fileRefs.size >= FILE_REFS_KEPT) fileRefs.clear();
    ref = { kind: 'file', path: abs, written };
    fileRefs.set(id, ref);
  }
  return ref;
}

/** An https URL, or a local path (added to `images` for the caller to check on disk). */
export function readImage(raw: RawValue, field: string, out: Collector, images: ImageUse[]): ImageRef | undefined {
  const s = readString(raw, field, out);
  if (s === undefined) return undefined;
  if (/^https:\/\//i.test(s)) {
    try {
      return { kind: 'url', url: new URL(s).href };
    } catch {
      out.add(raw, field, `${show(s)} is not a valid URL`);
      return undefined;
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    out.add(raw, field, `${show(s)}: only https URLs or local file paths are accepted (the provider must be able to fetch it)`);
    return undefined;
  }
  // A sheet read from a URL has no folder, and the working folder changes with whoever runs the night.
  if (isUrlShown(raw.file) && !path.isAbsolute(s)) {
    out.add(raw, field, `${show(s)} is a relative path in a manifest read from a URL, which has no folder: use an https URL or an absolute path`);
    return undefined;
  }
  // Relative to the file the value was written in (a default in the pipeline file resolves beside it).
  const ref = fileRef(raw.file, s);
  images.push({ ref, field, file: raw.file, line: raw.line });
  return ref;
}
