import type { RawValue } from '../raw.js';
import type { Collector } from './collector.js';
import { isBlank } from './fields.js';

/** Spreadsheet columns for list fields: `shot_1_prompt`, `element_2_frontal`, `element_1_voice`, `voice_1`… (see README). */
const NUMBERED_COLUMN = /^(shot|element|voice)_(\d+)(?:_(prompt|duration|frontal|references|video|voice))?$/;
const LIST_SEPARATOR = '|';

type Kind = 'shot' | 'element' | 'voice';
type Entry = Record<string, unknown>;

function isValidPart(kind: Kind, part: string | undefined): boolean {
  if (kind === 'voice') return part === undefined;
  if (kind === 'shot') return part === 'prompt' || part === 'duration';
  return part === 'frontal' || part === 'references' || part === 'video' || part === 'voice';
}

/** A sheet's element columns as the YAML element they stand for; references are one `|`-separated cell. */
function elementOf(e: Entry): Entry {
  const split = (v: unknown) =>
    typeof v === 'string'
      ? v
          .split(LIST_SEPARATOR)
          .map((s) => s.trim())
          .filter(Boolean)
      : v;
  return {
    ...(e.frontal !== undefined && { frontal_image: e.frontal }),
    ...(e.references !== undefined && { reference_images: split(e.references) }),
    ...(e.video !== undefined && { video: e.video }),
    ...(e.voice !== undefined && { voice_id: e.voice }),
  };
}

/**
 * Folds a spreadsheet row's numbered columns into the list fields YAML writes directly:
 * `shot_N_prompt`/`shot_N_duration` → multi_prompt, `element_N_frontal`/`_references`/`_video`/`_voice` → elements,
 * `voice_N` → voice_ids. Blank cells are ignored, so unused columns can stay in the sheet.
 */
export function gatherNumberedColumns(fields: ReadonlyMap<string, RawValue>, out: Collector): Map<string, RawValue> {
  const result = new Map<string, RawValue>();
  const groups: Record<Kind, Map<number, Entry>> = { shot: new Map(), element: new Map(), voice: new Map() };
  const firstAt: Partial<Record<Kind, RawValue>> = {};
  const elementVoiceAt = new Map<number, { name: string; at: RawValue }>();
  for (const [name, value] of fields) {
    const m = NUMBERED_COLUMN.exec(name);
    if (!m) {
      result.set(name, value);
      continue;
    }
    const kind = m[1] as Kind;
    const part = m[3];
    if (!isValidPart(kind, part)) {
      out.add(
        value,
        name,
        'unknown column (shot_N_prompt, shot_N_duration, element_N_frontal, element_N_references, element_N_video, element_N_voice, voice_N)',
      );
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
  dropVoicesOfImageSets(groups.element, elementVoiceAt, out);
  const ordered = (g: Map<number, Entry>) => [...g.entries()].sort(([a], [b]) => a - b).map(([, v]) => v);
  const put = (field: string, kind: Kind, value: unknown) => {
    const at = firstAt[kind]!;
    if (result.has(field) && !isBlank(result.get(field)?.value)) out.add(at, field, `given both as ${field} and as numbered ${kind} columns`);
    else result.set(field, { value, file: at.file, line: at.line });
  };
  if (groups.shot.size > 0) put('multi_prompt', 'shot', ordered(groups.shot));
  if (groups.element.size > 0) put('elements', 'element', ordered(groups.element).map(elementOf));
  if (groups.voice.size > 0)
    put(
      'voice_ids',
      'voice',
      ordered(groups.voice).map((v) => v.id),
    );
  return result;
}

/** A voice belongs to a video element: said here in the sheet's own column names, and left out of the element. */
function dropVoicesOfImageSets(elements: Map<number, Entry>, voiceAt: ReadonlyMap<number, { name: string; at: RawValue }>, out: Collector): void {
  for (const [n, { name, at }] of voiceAt) {
    const entry = elements.get(n)!;
    if (entry.video !== undefined) continue;
    out.add(at, name, `only a video element has a voice (fill element_${n}_video, or clear ${name}; an image-set element takes no voice)`);
    delete entry.voice;
    if (Object.keys(entry).length === 0) elements.delete(n);
  }
}
