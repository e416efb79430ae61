import { createHash } from 'node:crypto';
import path from 'node:path';
import {
  MAX_REFERENCE_IMAGES,
  MAX_VOICES,
  type Element,
  MAX_DURATION_S,
  MAX_PROMPT_CHARS,
  MAX_SHOTS,
  MIN_DURATION_S,
  MIN_SHOT_S,
  SHOT_TYPES,
  type ImageRef,
  type KlingRequest,
  type ModelProtocol,
  type Shot,
  type ShotType,
} from '../model/kling-v3.js';
import type { Problem } from './problem.js';
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
  'elements',
  'voice_ids',
  'notes',
] as const;

/** Spreadsheet columns for list fields: `shot_1_prompt`, `element_2_frontal`, `element_1_voice`, `voice_1`… (see README). */
const NUMBERED_COLUMN = /^(shot|element|voice)_(\d+)(?:_(prompt|duration|frontal|references|video|voice))?$/;
const LIST_SEPARATOR = '|';

/** Fields that may have a default (an id or a note never applies to every row). */
export const DEFAULTABLE_FIELDS: readonly string[] = ROW_FIELDS.filter((f) => f !== 'id' && f !== 'notes');

const ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
const ID_RULE = "letters, digits, '.', '_' and '-', at most 100 characters, not starting with '.'";

export class Collector {
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

function readBoolean(raw: RawValue, field: string, out: Collector): boolean | undefined {
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
    const durationSeconds = isBlank(shot.duration) ? undefined : readSeconds({ ...raw, value: shot.duration }, `${field}.duration`, out, MIN_SHOT_S);
    if (isBlank(shot.duration)) out.add(raw, `${field}.duration`, `is required (${MIN_SHOT_S} to ${MAX_DURATION_S} seconds; the shots together ${MIN_DURATION_S} to ${MAX_DURATION_S})`);
    if (prompt !== undefined && durationSeconds !== undefined) shots.push({ prompt, durationSeconds });
  });
  return shots.length === v.length ? shots : undefined;
}

/**
 * Folds a spreadsheet row's numbered columns into the list fields YAML writes directly:
 * `shot_N_prompt`/`shot_N_duration` → multi_prompt, `element_N_frontal`/`_references`/`_video`/`_voice` → elements,
 * `voice_N` → voice_ids. Blank cells are ignored, so unused columns can stay in the sheet.
 */
export function gatherNumberedColumns(fields: ReadonlyMap<string, RawValue>, out: Collector): Map<string, RawValue> {
  const result = new Map<string, RawValue>();
  const groups = { shot: new Map<number, Record<string, unknown>>(), element: new Map<number, Record<string, unknown>>(), voice: new Map<number, Record<string, unknown>>() };
  const firstAt: Partial<Record<keyof typeof groups, RawValue>> = {};
  const elementVoiceAt = new Map<number, { name: string; at: RawValue }>();
  for (const [name, value] of fields) {
    const m = NUMBERED_COLUMN.exec(name);
    if (!m) {
      result.set(name, value);
      continue;
    }
    const kind = m[1] as keyof typeof groups;
    const part = m[3];
    const valid = kind === 'voice' ? part === undefined : kind === 'shot' ? part === 'prompt' || part === 'duration' : part === 'frontal' || part === 'references' || part === 'video' || part === 'voice';
    if (!valid) {
      out.add(value, name, 'unknown column (shot_N_prompt, shot_N_duration, element_N_frontal, element_N_references, element_N_video, element_N_voice, voice_N)');
      continue;
    }
    if (isBlank(value.value)) continue;
    const n = Number(m[2]);
    const entry = groups[kind].get(n) ?? {};
    entry[part ?? 'id'] = typeof value.value === 'string' ? value.value.trim() : value.value;
    groups[kind].set(n, entry);
    firstAt[kind] ??= value;
    if (kind === 'element' && part === 'voice') elementVoiceAt.set(n, { name, at: value });
  }
  // A voice belongs to a video element: said here in the sheet's own column names, and left out of the element.
  for (const [n, { name, at }] of elementVoiceAt) {
    const entry = groups.element.get(n)!;
    if (entry.video !== undefined) continue;
    out.add(at, name, `only a video element has a voice (fill element_${n}_video, or clear ${name}; an image-set element takes no voice)`);
    delete entry.voice;
    if (Object.keys(entry).length === 0) groups.element.delete(n);
  }
  const ordered = (g: Map<number, Record<string, unknown>>) => [...g.entries()].sort(([a], [b]) => a - b).map(([, v]) => v);
  const split = (v: unknown) => (typeof v === 'string' ? v.split(LIST_SEPARATOR).map((s) => s.trim()).filter(Boolean) : v);
  const put = (field: string, kind: keyof typeof groups, value: unknown) => {
    const at = firstAt[kind]!;
    if (result.has(field) && !isBlank(result.get(field)?.value)) out.add(at, field, `given both as ${field} and as numbered ${kind} columns`);
    else result.set(field, { value, file: at.file, line: at.line });
  };
  if (groups.shot.size > 0) put('multi_prompt', 'shot', ordered(groups.shot));
  if (groups.element.size > 0) put('elements', 'element', ordered(groups.element).map((e) => ({ ...(e.frontal !== undefined && { frontal_image: e.frontal }), ...(e.references !== undefined && { reference_images: split(e.references) }), ...(e.video !== undefined && { video: e.video }), ...(e.voice !== undefined && { voice_id: e.voice }) })));
  if (groups.voice.size > 0) put('voice_ids', 'voice', ordered(groups.voice).map((v) => v.id));
  return result;
}

function readElements(raw: RawValue, out: Collector, images: ImageUse[]): Element[] | undefined {
  const v = raw.value;
  if (!Array.isArray(v) || v.length === 0) {
    out.add(raw, 'elements', 'must be a list of elements, each {frontal_image, reference_images} or {video, voice_id}');
    return undefined;
  }
  const elements: Element[] = [];
  let failed = false;
  v.forEach((item: unknown, i) => {
    const field = `elements[${i + 1}]`;
    const e = (typeof item === 'object' && item !== null && !Array.isArray(item) ? item : {}) as Record<string, unknown>;
    const extra = Object.keys(e).filter((k) => !['frontal_image', 'reference_images', 'video', 'voice_id'].includes(k));
    if (extra.length > 0) out.add(raw, field, `unknown key ${extra.join(', ')} (allowed: frontal_image, reference_images, video, voice_id)`);
    if (e.video !== undefined) {
      let voiceId: string | undefined;
      if (e.voice_id !== undefined) {
        voiceId = typeof e.voice_id === 'string' || typeof e.voice_id === 'number' ? String(e.voice_id).trim() : '';
        if (voiceId === '') {
          out.add(raw, `${field}.voice_id`, `${show(e.voice_id)} must be a voice id (from Kling's create-voice endpoint)`);
          failed = true;
        }
      }
      const url = typeof e.video === 'string' ? e.video.trim() : '';
      if (e.frontal_image !== undefined || e.reference_images !== undefined) out.add(raw, field, 'is either a video or an image set (frontal_image + reference_images), not both');
      let valid = /^https:\/\//i.test(url);
      try {
        new URL(url);
      } catch {
        valid = false;
      }
      if (!valid) out.add(raw, `${field}.video`, `${show(e.video)} must be an https URL of a 3 to 10 second video`);
      else elements.push({ kind: 'video', url: new URL(url).href, ...(voiceId && { voiceId }) });
      return;
    }
    if (e.voice_id !== undefined) {
      out.add(raw, `${field}.voice_id`, 'only a video element has a voice ({video, voice_id}); an image set (frontal_image + reference_images) takes none');
      failed = true;
    }
    const refs = Array.isArray(e.reference_images) ? e.reference_images : e.reference_images === undefined ? [] : [e.reference_images];
    if (e.frontal_image === undefined) out.add(raw, `${field}.frontal_image`, 'is required (or video for a video element)');
    if (refs.length < 1 || refs.length > MAX_REFERENCE_IMAGES) out.add(raw, `${field}.reference_images`, `needs 1 to ${MAX_REFERENCE_IMAGES} images, got ${refs.length}`);
    const frontal = e.frontal_image === undefined ? undefined : readImage({ ...raw, value: e.frontal_image }, `${field}.frontal_image`, out, images);
    const references = refs.map((r, j) => readImage({ ...raw, value: r }, `${field}.reference_images[${j + 1}]`, out, images));
    if (!frontal || references.some((r) => r === undefined) || refs.length < 1 || refs.length > MAX_REFERENCE_IMAGES) failed = true;
    else elements.push({ kind: 'images', frontal, references: references as ImageRef[] });
  });
  if (elements.filter((e) => e.kind === 'video').length > 1) out.add(raw, 'elements', 'at most one video element');
  return failed || elements.length !== v.length ? undefined : elements;
}

function readVoiceIds(raw: RawValue, out: Collector): string[] | undefined {
  const list = Array.isArray(raw.value) ? raw.value : [raw.value];
  const ids = list.map((v) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '')).filter(Boolean);
  if (ids.length !== list.length || ids.length < 1 || ids.length > MAX_VOICES) {
    out.add(raw, 'voice_ids', `must be 1 to ${MAX_VOICES} voice ids (from Kling's create-voice endpoint)`);
    return undefined;
  }
  return ids;
}

/** What a fal pipeline says about `voice_ids`, wherever they are given (a row, a manifest's or a pipeline's defaults). */
export const FAL_VOICE_IDS_MESSAGE =
  "fal's schema for this model has no voice_ids (only Runflow takes them): remove them, or use a video element with voice_id, or run this manifest with a Runflow pipeline";

/** `@Element3` needs three elements, `<<<voice_2>>>` two voices: a reference to nothing is a mistake to catch before paying. */
function checkReferences(texts: { field: string; text: string; at: RawValue | { file: string; line: number } }[], elements: number, voices: number, out: Collector): void {
  for (const { field, text, at } of texts) {
    for (const m of text.matchAll(/@Element(\d+)/g)) {
      const n = Number(m[1]);
      if (n < 1 || n > elements) out.add(at, field, `refers to @Element${n} but the row has ${elements} element${elements === 1 ? '' : 's'}`);
    }
    for (const m of text.matchAll(/<<<voice_(\d+)>>>/g)) {
      const n = Number(m[1]);
      if (n < 1 || n > voices) out.add(at, field, `refers to <<<voice_${n}>>> but the row has ${voices} voice${voices === 1 ? '' : 's'} (voice_ids)`);
    }
  }
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
    ...(request.elements ? [request.elements.map((e) => (e.kind === 'video' ? (e.voiceId === undefined ? e.url : [e.url, e.voiceId]) : [image(e.frontal), e.references.map(image)]))] : []),
    ...(request.voiceIds ? [request.voiceIds] : []),
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
 * `protocol` is the schema the pipeline's provider speaks (default Runflow's, which takes voice_ids).
 */
export function parseRow(raw: RawRow, defaults: RawDefaults, manifest: string, protocol: ModelProtocol = 'runflow'): ParsedRow {
  const out = new Collector();
  const images: ImageUse[] = [];
  const rowAt = { file: raw.file, line: raw.line };

  const fields = gatherNumberedColumns(raw.fields, out);
  const known = new Set<string>(ROW_FIELDS);
  for (const [name, value] of fields) {
    if (!known.has(name)) out.add(value, name, `unknown field (allowed: ${ROW_FIELDS.join(', ')})`);
  }
  const own = (name: string) => {
    const value = fields.get(name);
    return value && !isBlank(value.value) ? value : undefined;
  };
  // prompt and multi_prompt are one choice: a row that makes it is not overruled by a default for the other.
  const rowChoosesPrompt = own('prompt') !== undefined || own('multi_prompt') !== undefined;
  const get = (name: string): RawValue | undefined => {
    const mine = own(name);
    if (mine) return mine;
    if (rowChoosesPrompt && (name === 'prompt' || name === 'multi_prompt')) return undefined;
    const fallback = defaults.get(name);
    return fallback && !isBlank(fallback.value) ? fallback : undefined;
  };

  const idRaw = fields.get('id');
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
    out.add(fields.get('multi_prompt') ?? fields.get('prompt') ?? rowAt, 'prompt', 'give either prompt or multi_prompt, not both');
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

  if (own('shot_type') && !shotsRaw) out.add(own('shot_type')!, 'shot_type', 'only applies to multi_prompt rows (give the shots, or remove shot_type)');

  const durationRaw = get('duration');
  let durationSeconds = durationRaw ? readSeconds(durationRaw, 'duration', out) : undefined;
  if (multiPrompt) {
    const total = multiPrompt.reduce((sum, shot) => sum + shot.durationSeconds, 0);
    if (total > MAX_DURATION_S) out.add(shotsRaw ?? rowAt, 'multi_prompt', `shots last ${total}s together (at most ${MAX_DURATION_S}s)`);
    if (total < MIN_DURATION_S) out.add(shotsRaw ?? rowAt, 'multi_prompt', `shots last ${total}s together (at least ${MIN_DURATION_S}s; each shot ${MIN_SHOT_S} to ${MAX_DURATION_S}s)`);
    // A multi-shot video lasts as long as its shots; a row-level duration that disagrees is a mistake, not a default.
    const ownDuration = fields.get('duration');
    if (ownDuration && !isBlank(ownDuration.value) && durationSeconds !== undefined && durationSeconds !== total) {
      out.add(ownDuration, 'duration', `is ${durationSeconds}s but the shots add up to ${total}s (leave it empty for multi-shot rows)`);
    }
    durationSeconds = total;
  } else if (durationRaw === undefined && !shotsRaw) {
    out.add(rowAt, 'duration', `is required (whole seconds from ${MIN_DURATION_S} to ${MAX_DURATION_S})`);
  }

  const audioRaw = get('generate_audio');
  const generateAudio = audioRaw ? readBoolean(audioRaw, 'generate_audio', out) : false;

  const negativeRaw = get('negative_prompt');
  const negativePrompt = negativeRaw ? readString(negativeRaw, 'negative_prompt', out, MAX_PROMPT_CHARS) : undefined;
  const cfgRaw = get('cfg_scale');
  const cfgScale = cfgRaw ? readNumber(cfgRaw, 'cfg_scale', out, 0, 1) : undefined;

  const elementsRaw = get('elements');
  const elements = elementsRaw ? readElements(elementsRaw, out, images) : undefined;
  const voicesRaw = get('voice_ids');
  const voiceIds = voicesRaw ? readVoiceIds(voicesRaw, out) : undefined;
  if (voicesRaw && protocol === 'fal') out.add(voicesRaw, 'voice_ids', FAL_VOICE_IDS_MESSAGE);
  if (voicesRaw && voiceIds && generateAudio === false) out.add(voicesRaw, 'voice_ids', 'voices need generate_audio: true');
  elements?.forEach((e, i) => {
    if (e.kind === 'video' && e.voiceId !== undefined && generateAudio === false) out.add(elementsRaw!, `elements[${i + 1}].voice_id`, 'a voice needs generate_audio: true');
  });
  const texts = [
    ...(prompt !== undefined && promptRaw ? [{ field: 'prompt', text: prompt, at: promptRaw }] : []),
    ...(multiPrompt ?? []).map((shot, i) => ({ field: `multi_prompt[${i + 1}].prompt`, text: shot.prompt, at: shotsRaw ?? rowAt })),
  ];
  if (!(elementsRaw && !elements) && !(voicesRaw && !voiceIds)) checkReferences(texts, elements?.length ?? 0, voiceIds?.length ?? 0, out);

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
  if (elements) request.elements = elements;
  if (voiceIds) request.voiceIds = voiceIds;
  const row: Row = { manifest, file: raw.file, line: raw.line, id: id ?? deriveRowId(request), idDerived: id === undefined, request };
  return { row, id: row.id, images, problems: [] };
}
