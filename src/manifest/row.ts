import { createHash } from 'node:crypto';
import path from 'node:path';
import {
  MAX_DURATION_S,
  MAX_PROMPT_CHARS,
  MAX_SHOTS,
  MIN_DURATION_S,
  SHOT_TYPES,
  type ImageRef,
  type KlingRequest,
  type Shot,
  type ShotType,
} from '../model/kling-v3.js';
import type { Problem } from '../problem.js';
import type { RawDefaults, RawRow, RawValue } from './raw.js';

/** One validated manifest row: where it came from, its key, and the request it stands for. */
export interface Row {
  manifest: string;
  file: string;
  line: number;
  id: string;
  idDerived: boolean;
  request: KlingRequest;
}

/** A local image a row refers to, still to be checked on disk. */
export interface ImageUse {
  ref: Extract<ImageRef, { kind: 'file' }>;
  field: string;
  file: string;
  line: number;
}

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
  'notes',
] as const;

/** Fields that may have a default (an id or a note never applies to every row). */
export const DEFAULTABLE_FIELDS: readonly string[] = ROW_FIELDS.filter((f) => f !== 'id' && f !== 'notes');

const ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
const ID_RULE = "letters, digits, '.', '_' and '-', at most 100 characters, not starting with '.'";

class Collector {
  readonly problems: Problem[] = [];
  add(at: { file: string; line: number }, field: string, message: string): void {
    this.problems.push({ file: at.file, line: at.line, field, message });
  }
}

function isBlank(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 40 ? `"${s.slice(0, 37)}..."` : `"${s}"`;
}

function readString(raw: RawValue, field: string, out: Collector, maxChars?: number): string | undefined {
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

/** Whole seconds; spreadsheets write 5 as "5", "5.0" or "5s". */
export function readSeconds(raw: RawValue, field: string, out: Collector): number | undefined {
  const v = raw.value;
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim().replace(/\s*s(ec(onds?)?)?$/i, '') : '';
  const n = text === '' ? Number.NaN : Number(text);
  const allowed = `whole seconds from ${MIN_DURATION_S} to ${MAX_DURATION_S}`;
  if (!Number.isInteger(n)) {
    out.add(raw, field, `${show(v)} is not a whole number of seconds (${allowed})`);
    return undefined;
  }
  if (n < MIN_DURATION_S || n > MAX_DURATION_S) {
    out.add(raw, field, `${n} is out of range (${allowed})`);
    return undefined;
  }
  return n;
}

const TRUE_WORDS = new Set(['true', 'yes', 'y', '1', 'on']);
const FALSE_WORDS = new Set(['false', 'no', 'n', '0', 'off']);

function readBoolean(raw: RawValue, field: string, out: Collector): boolean | undefined {
  const v = raw.value;
  if (typeof v === 'boolean') return v;
  const word = String(v).trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  out.add(raw, field, `${show(v)} is not a yes/no value (true or false)`);
  return undefined;
}

function readNumber(raw: RawValue, field: string, out: Collector, min: number, max: number): number | undefined {
  const v = raw.value;
  // Spreadsheets in comma-decimal locales write 0,5.
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v.trim().replace(',', '.')) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    out.add(raw, field, `${show(v)} is not a number from ${min} to ${max}`);
    return undefined;
  }
  return n;
}

function readImage(raw: RawValue, field: string, out: Collector, images: ImageUse[]): ImageRef | undefined {
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
  // Relative to the file the value was written in (a default in the pipeline file resolves beside it).
  const ref = { kind: 'file' as const, path: path.resolve(path.dirname(raw.file), s), written: s };
  images.push({ ref, field, file: raw.file, line: raw.line });
  return ref;
}

function readShots(raw: RawValue, out: Collector): Shot[] | undefined {
  const v = raw.value;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SHOTS) {
    out.add(raw, 'multi_prompt', `must be a list of 1 to ${MAX_SHOTS} shots, each {prompt, duration}`);
    return undefined;
  }
  const shots: Shot[] = [];
  v.forEach((item: unknown, i) => {
    const field = `multi_prompt[${i + 1}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      out.add(raw, field, 'must be {prompt, duration}');
      return;
    }
    const shot = item as Record<string, unknown>;
    const extra = Object.keys(shot).filter((k) => k !== 'prompt' && k !== 'duration');
    if (extra.length > 0) out.add(raw, field, `unknown key ${extra.join(', ')} (allowed: prompt, duration)`);
    const prompt = isBlank(shot.prompt) ? undefined : readString({ ...raw, value: shot.prompt }, `${field}.prompt`, out, MAX_PROMPT_CHARS);
    if (isBlank(shot.prompt)) out.add(raw, `${field}.prompt`, 'is required');
    const durationSeconds = isBlank(shot.duration) ? undefined : readSeconds({ ...raw, value: shot.duration }, `${field}.duration`, out);
    if (isBlank(shot.duration)) out.add(raw, `${field}.duration`, `is required (${MIN_DURATION_S} to ${MAX_DURATION_S} seconds)`);
    if (prompt !== undefined && durationSeconds !== undefined) shots.push({ prompt, durationSeconds });
  });
  return shots.length === v.length ? shots : undefined;
}

/** A short stable id from what the row asks for, for rows that do not name themselves. */
export function deriveRowId(request: KlingRequest): string {
  const image = (ref: ImageRef | undefined) => (ref === undefined ? null : ref.kind === 'url' ? ref.url : ref.written);
  const canonical = JSON.stringify([
    image(request.image),
    image(request.endImage),
    request.prompt ?? null,
    request.multiPrompt ?? null,
    request.shotType ?? null,
    request.durationSeconds,
    request.generateAudio,
    request.negativePrompt ?? null,
    request.cfgScale ?? null,
  ]);
  return `row-${createHash('sha256').update(canonical).digest('hex').slice(0, 10)}`;
}

export interface ParsedRow {
  row?: Row;
  /** The row's explicit id when it is usable, even if other fields are wrong (for duplicate checks). */
  id?: string;
  images: ImageUse[];
  problems: Problem[];
}

/**
 * Validates one raw row against the model's rules, filling unset fields from `defaults`
 * (the row's own values win). Pure: local images are returned for the caller to check on disk.
 */
export function parseRow(raw: RawRow, defaults: RawDefaults, manifest: string): ParsedRow {
  const out = new Collector();
  const images: ImageUse[] = [];
  const rowAt = { file: raw.file, line: raw.line };

  const known = new Set<string>(ROW_FIELDS);
  for (const [name, value] of raw.fields) {
    if (!known.has(name)) out.add(value, name, `unknown field (allowed: ${ROW_FIELDS.join(', ')})`);
  }
  const get = (name: string): RawValue | undefined => {
    const own = raw.fields.get(name);
    if (own && !isBlank(own.value)) return own;
    const fallback = defaults.get(name);
    return fallback && !isBlank(fallback.value) ? fallback : undefined;
  };

  const idRaw = raw.fields.get('id');
  let id: string | undefined;
  if (idRaw && !isBlank(idRaw.value)) {
    id = readString(idRaw, 'id', out);
    if (id !== undefined && !ID_PATTERN.test(id)) {
      out.add(idRaw, 'id', `${show(id)} cannot be used as a file name (${ID_RULE})`);
      id = undefined;
    }
  }

  const imageRaw = get('image');
  const image = imageRaw ? readImage(imageRaw, 'image', out, images) : undefined;
  if (!imageRaw) out.add(rowAt, 'image', 'is required (a local image path or an https URL)');
  const endImageRaw = get('end_image');
  const endImage = endImageRaw ? readImage(endImageRaw, 'end_image', out, images) : undefined;

  const promptRaw = get('prompt');
  const shotsRaw = get('multi_prompt');
  const prompt = promptRaw ? readString(promptRaw, 'prompt', out, MAX_PROMPT_CHARS) : undefined;
  const multiPrompt = shotsRaw ? readShots(shotsRaw, out) : undefined;
  if (promptRaw && shotsRaw) {
    out.add(raw.fields.get('multi_prompt') ?? raw.fields.get('prompt') ?? rowAt, 'prompt', 'give either prompt or multi_prompt, not both');
  } else if (!promptRaw && !shotsRaw) {
    out.add(rowAt, 'prompt', 'is required (or multi_prompt for a multi-shot video)');
  }

  let shotType: ShotType | undefined;
  const shotTypeRaw = get('shot_type');
  if (shotTypeRaw) {
    const s = readString(shotTypeRaw, 'shot_type', out)?.toLowerCase();
    if (s !== undefined && (SHOT_TYPES as readonly string[]).includes(s)) shotType = s as ShotType;
    else if (s !== undefined) out.add(shotTypeRaw, 'shot_type', `${show(s)} is not allowed (${SHOT_TYPES.join(' or ')})`);
  }

  const durationRaw = get('duration');
  let durationSeconds = durationRaw ? readSeconds(durationRaw, 'duration', out) : undefined;
  if (multiPrompt) {
    const total = multiPrompt.reduce((sum, shot) => sum + shot.durationSeconds, 0);
    if (total > MAX_DURATION_S) out.add(shotsRaw ?? rowAt, 'multi_prompt', `shots last ${total}s together (at most ${MAX_DURATION_S}s)`);
    // A multi-shot video lasts as long as its shots; a row-level duration that disagrees is a mistake, not a default.
    const ownDuration = raw.fields.get('duration');
    if (ownDuration && !isBlank(ownDuration.value) && durationSeconds !== undefined && durationSeconds !== total) {
      out.add(ownDuration, 'duration', `is ${durationSeconds}s but the shots add up to ${total}s (leave it empty for multi-shot rows)`);
    }
    durationSeconds = total;
  } else if (durationRaw === undefined) {
    out.add(rowAt, 'duration', `is required (whole seconds from ${MIN_DURATION_S} to ${MAX_DURATION_S})`);
  }

  const audioRaw = get('generate_audio');
  const generateAudio = audioRaw ? readBoolean(audioRaw, 'generate_audio', out) : false;

  const negativeRaw = get('negative_prompt');
  const negativePrompt = negativeRaw ? readString(negativeRaw, 'negative_prompt', out, MAX_PROMPT_CHARS) : undefined;
  const cfgRaw = get('cfg_scale');
  const cfgScale = cfgRaw ? readNumber(cfgRaw, 'cfg_scale', out, 0, 1) : undefined;

  if (out.problems.length > 0 || !image || durationSeconds === undefined || generateAudio === undefined) {
    return { images, problems: out.problems, ...(id !== undefined && { id }) };
  }
  const request: KlingRequest = { image, durationSeconds, generateAudio };
  if (endImage) request.endImage = endImage;
  if (multiPrompt) {
    request.multiPrompt = multiPrompt;
    request.shotType = shotType ?? 'customize';
  } else if (prompt !== undefined) {
    request.prompt = prompt;
  }
  if (negativePrompt !== undefined) request.negativePrompt = negativePrompt;
  if (cfgScale !== undefined) request.cfgScale = cfgScale;
  const row: Row = { manifest, file: raw.file, line: raw.line, id: id ?? deriveRowId(request), idDerived: id === undefined, request };
  return { row, id: row.id, images, problems: [] };
}
