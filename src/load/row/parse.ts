/** One raw row (YAML or a sheet's line) validated against the model's rules into a Row, or every problem it has. */
import {
  MAX_DURATION_S,
  MAX_PROMPT_CHARS,
  MIN_DURATION_S,
  MIN_SHOT_S,
  SHOT_TYPES,
  type Element,
  type ImageRef,
  type KlingRequest,
  type ModelProtocol,
  type Shot,
  type ShotType,
} from '../../model/kling-v3.js';
import type { Problem } from '../problem.js';
import type { RawDefaults, RawRow, RawValue } from '../raw.js';
import { Collector } from './collector.js';
import { gatherNumberedColumns } from './columns.js';
import { checkReferences, FAL_VOICE_IDS_MESSAGE, readElements, readVoiceIds } from './elements.js';
import { isBlank, readBoolean, readImage, readNumber, readSeconds, readString, ROW_FIELDS, show } from './fields.js';
import { deriveRowId, readRowId } from './id.js';
import { readShots } from './shots.js';
import type { ImageUse, Row } from './types.js';

export interface ParsedRow {
  row?: Row;
  /** The row's explicit id when it is usable, even if other fields are wrong (for duplicate checks). */
  id?: string;
  images: ImageUse[];
  problems: Problem[];
}

interface At {
  file: string;
  line: number;
}

/** A row's fields after the sheet's numbered columns are folded in, and how a field's value is found. */
interface Lookup {
  rowAt: At;
  fields: Map<string, RawValue>;
  /** The row's own value, when not blank. */
  own(name: string): RawValue | undefined;
  /** The row's own value, else the default (not blank either). */
  get(name: string): RawValue | undefined;
}

function lookUpFields(raw: RawRow, defaults: RawDefaults, out: Collector): Lookup {
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
  return { rowAt: { file: raw.file, line: raw.line }, fields, own, get };
}

interface Prompts {
  promptRaw: RawValue | undefined;
  shotsRaw: RawValue | undefined;
  prompt: string | undefined;
  multiPrompt: Shot[] | undefined;
}

/** prompt XOR multi_prompt: exactly one of them. */
function readPrompts(look: Lookup, out: Collector): Prompts {
  const promptRaw = look.get('prompt');
  const shotsRaw = look.get('multi_prompt');
  const prompt = promptRaw ? readString(promptRaw, 'prompt', out, MAX_PROMPT_CHARS) : undefined;
  const multiPrompt = shotsRaw ? readShots(shotsRaw, out) : undefined;
  if (promptRaw && shotsRaw) {
    out.add(look.fields.get('multi_prompt') ?? look.fields.get('prompt') ?? look.rowAt, 'prompt', 'give either prompt or multi_prompt, not both');
  } else if (!promptRaw && !shotsRaw) {
    out.add(look.rowAt, 'prompt', 'is required (or multi_prompt for a multi-shot video)');
  }
  return { promptRaw, shotsRaw, prompt, multiPrompt };
}

function readShotType(look: Lookup, shotsRaw: RawValue | undefined, out: Collector): ShotType | undefined {
  let shotType: ShotType | undefined;
  const shotTypeRaw = look.get('shot_type');
  if (shotTypeRaw) {
    const s = readString(shotTypeRaw, 'shot_type', out)?.toLowerCase();
    if (s !== undefined && (SHOT_TYPES as readonly string[]).includes(s)) shotType = s as ShotType;
    else if (s !== undefined) out.add(shotTypeRaw, 'shot_type', `${show(s)} is not allowed (${SHOT_TYPES.join(' or ')})`);
  }
  const ownShotType = look.own('shot_type');
  if (ownShotType && !shotsRaw) out.add(ownShotType, 'shot_type', 'only applies to multi_prompt rows (give the shots, or remove shot_type)');
  return shotType;
}

/** A multi-shot video lasts as long as its shots; a row-level duration that disagrees is a mistake, not a default. */
function shotsDuration(look: Lookup, shots: Shot[], shotsRaw: RawValue | undefined, durationSeconds: number | undefined, out: Collector): number {
  const total = shots.reduce((sum, shot) => sum + shot.durationSeconds, 0);
  if (total > MAX_DURATION_S) out.add(shotsRaw ?? look.rowAt, 'multi_prompt', `shots last ${total}s together (at most ${MAX_DURATION_S}s)`);
  if (total < MIN_DURATION_S)
    out.add(
      shotsRaw ?? look.rowAt,
      'multi_prompt',
      `shots last ${total}s together (at least ${MIN_DURATION_S}s; each shot ${MIN_SHOT_S} to ${MAX_DURATION_S}s)`,
    );
  const ownDuration = look.fields.get('duration');
  if (ownDuration && !isBlank(ownDuration.value) && durationSeconds !== undefined && durationSeconds !== total) {
    out.add(ownDuration, 'duration', `is ${durationSeconds}s but the shots add up to ${total}s (leave it empty for multi-shot rows)`);
  }
  return total;
}

function readDuration(look: Lookup, prompts: Prompts, out: Collector): number | undefined {
  const durationRaw = look.get('duration');
  const durationSeconds = durationRaw ? readSeconds(durationRaw, 'duration', out) : undefined;
  if (prompts.multiPrompt) return shotsDuration(look, prompts.multiPrompt, prompts.shotsRaw, durationSeconds, out);
  if (durationRaw === undefined && !prompts.shotsRaw)
    out.add(look.rowAt, 'duration', `is required (whole seconds from ${MIN_DURATION_S} to ${MAX_DURATION_S})`);
  return durationSeconds;
}

interface Voicing {
  elementsRaw: RawValue | undefined;
  elements: Element[] | undefined;
  voicesRaw: RawValue | undefined;
  voiceIds: string[] | undefined;
}

/** Elements and voices, with the rules that tie them to the provider and to generate_audio. */
function readVoicing(look: Lookup, generateAudio: boolean | undefined, protocol: ModelProtocol, out: Collector, images: ImageUse[]): Voicing {
  const elementsRaw = look.get('elements');
  const elements = elementsRaw ? readElements(elementsRaw, out, images) : undefined;
  const voicesRaw = look.get('voice_ids');
  const voiceIds = voicesRaw ? readVoiceIds(voicesRaw, out) : undefined;
  if (voicesRaw && protocol === 'fal') out.add(voicesRaw, 'voice_ids', FAL_VOICE_IDS_MESSAGE);
  if (voicesRaw && voiceIds && generateAudio === false) out.add(voicesRaw, 'voice_ids', 'voices need generate_audio: true');
  elements?.forEach((e, i) => {
    if (e.kind === 'video' && e.voiceId !== undefined && generateAudio === false)
      out.add(elementsRaw!, `elements[${i + 1}].voice_id`, 'a voice needs generate_audio: true');
  });
  return { elementsRaw, elements, voicesRaw, voiceIds };
}

/** Prompt references are checked only against element and voice lists that were themselves read without problems. */
function checkPromptReferences(prompts: Prompts, voicing: Voicing, rowAt: At, out: Collector): void {
  const texts = [
    ...(prompts.prompt !== undefined && prompts.promptRaw ? [{ field: 'prompt', text: prompts.prompt, at: prompts.promptRaw }] : []),
    ...(prompts.multiPrompt ?? []).map((shot, i) => ({ field: `multi_prompt[${i + 1}].prompt`, text: shot.prompt, at: prompts.shotsRaw ?? rowAt })),
  ];
  if (voicing.elementsRaw && !voicing.elements) return;
  if (voicing.voicesRaw && !voicing.voiceIds) return;
  checkReferences(texts, voicing.elements?.length ?? 0, voicing.voiceIds?.length ?? 0, out);
}

interface RequestParts {
  image: ImageRef;
  endImage: ImageRef | undefined;
  prompts: Prompts;
  shotType: ShotType | undefined;
  durationSeconds: number;
  generateAudio: boolean;
  negativePrompt: string | undefined;
  cfgScale: number | undefined;
  voicing: Voicing;
}

function buildRequest(p: RequestParts): KlingRequest {
  const request: KlingRequest = { image: p.image, durationSeconds: p.durationSeconds, generateAudio: p.generateAudio };
  if (p.endImage) request.endImage = p.endImage;
  if (p.prompts.multiPrompt) {
    request.multiPrompt = p.prompts.multiPrompt;
    request.shotType = p.shotType ?? 'customize';
  } else if (p.prompts.prompt !== undefined) {
    request.prompt = p.prompts.prompt;
  }
  if (p.negativePrompt !== undefined) request.negativePrompt = p.negativePrompt;
  if (p.cfgScale !== undefined) request.cfgScale = p.cfgScale;
  if (p.voicing.elements) request.elements = p.voicing.elements;
  if (p.voicing.voiceIds) request.voiceIds = p.voicing.voiceIds;
  return request;
}

/**
 * Validates one raw row against the model's rules, filling unset fields from `defaults`
 * (the row's own values win). Pure: local images are returned for the caller to check on disk.
 * `protocol` is the schema the pipeline's provider speaks (default Runflow's, which takes voice_ids).
 */
export function parseRow(raw: RawRow, defaults: RawDefaults, manifest: string, protocol: ModelProtocol = 'runflow'): ParsedRow {
  const out = new Collector();
  const images: ImageUse[] = [];
  const look = lookUpFields(raw, defaults, out);
  const id = readRowId(look.fields.get('id'), out);

  const imageRaw = look.get('image');
  const image = imageRaw ? readImage(imageRaw, 'image', out, images) : undefined;
  if (!imageRaw) out.add(look.rowAt, 'image', 'is required (a local image path or an https URL)');
  const endImageRaw = look.get('end_image');
  const endImage = endImageRaw ? readImage(endImageRaw, 'end_image', out, images) : undefined;

  const prompts = readPrompts(look, out);
  const shotType = readShotType(look, prompts.shotsRaw, out);
  const durationSeconds = readDuration(look, prompts, out);
  const audioRaw = look.get('generate_audio');
  const generateAudio = audioRaw ? readBoolean(audioRaw, 'generate_audio', out) : false;
  const negativeRaw = look.get('negative_prompt');
  const negativePrompt = negativeRaw ? readString(negativeRaw, 'negative_prompt', out, MAX_PROMPT_CHARS) : undefined;
  const cfgRaw = look.get('cfg_scale');
  const cfgScale = cfgRaw ? readNumber(cfgRaw, 'cfg_scale', out, 0, 1) : undefined;
  const voicing = readVoicing(look, generateAudio, protocol, out, images);
  checkPromptReferences(prompts, voicing, look.rowAt, out);

  if (out.problems.length > 0 || !image || durationSeconds === undefined || generateAudio === undefined) {
    return { images, problems: out.problems, ...(id !== undefined && { id }) };
  }
  const request = buildRequest({ image, endImage, prompts, shotType, durationSeconds, generateAudio, negativePrompt, cfgScale, voicing });
  const row: Row = { manifest, file: raw.file, line: raw.line, id: id ?? deriveRowId(request), idDerived: id === undefined, request };
  return { row, id: row.id, images, problems: [] };
}
