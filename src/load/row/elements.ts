/** Elements (a video, or an image set) and voices a row may give, and the prompt references that must point at them. */
import { MAX_REFERENCE_IMAGES, MAX_VOICES, type Element, type ImageRef } from '../../model/kling-v3.js';
import type { RawValue } from '../raw.js';
import type { Collector } from './collector.js';
import { readImage, show } from './fields.js';
import type { ImageUse } from './types.js';

/** What a fal pipeline says about `voice_ids`, wherever they are given (a row, a manifest's or a pipeline's defaults). */
export const FAL_VOICE_IDS_MESSAGE =
  "fal's schema for this model has no voice_ids (only Runflow takes them): remove them, or use a video element with voice_id, or run this manifest with a Runflow pipeline";

/** One element as read: `element` when it is usable as written, `failed` when the list as a whole must be refused. */
interface ReadElement {
  element?: Element;
  failed: boolean;
}

function readVideoElement(raw: RawValue, field: string, e: Record<string, unknown>, out: Collector): ReadElement {
  let failed = false;
  let voiceId: string | undefined;
  if (e.voice_id !== undefined) {
    voiceId = typeof e.voice_id === 'string' || typeof e.voice_id === 'number' ? String(e.voice_id).trim() : '';
    if (voiceId === '') {
      out.add(raw, `${field}.voice_id`, `${show(e.voice_id)} must be a voice id (from Kling's create-voice endpoint)`);
      failed = true;
    }
  }
  const url = typeof e.video === 'string' ? e.video.trim() : '';
  if (e.frontal_image !== undefined || e.reference_images !== undefined)
    out.add(raw, field, 'is either a video or an image set (frontal_image + reference_images), not both');
  let valid = /^https:\/\//i.test(url);
  try {
    new URL(url);
  } catch {
    valid = false;
  }
  if (!valid) {
    out.add(raw, `${field}.video`, `${show(e.video)} must be an https URL of a 3 to 10 second video`);
    return { failed };
  }
  return { element: { kind: 'video', url: new URL(url).href, ...(voiceId && { voiceId }) }, failed };
}

function readImageSetElement(raw: RawValue, field: string, e: Record<string, unknown>, out: Collector, images: ImageUse[]): ReadElement {
  let failed = false;
  if (e.voice_id !== undefined) {
    out.add(raw, `${field}.voice_id`, 'only a video element has a voice ({video, voice_id}); an image set (frontal_image + reference_images) takes none');
    failed = true;
  }
  const refs = Array.isArray(e.reference_images) ? e.reference_images : e.reference_images === undefined ? [] : [e.reference_images];
  const countOk = refs.length >= 1 && refs.length <= MAX_REFERENCE_IMAGES;
  if (e.frontal_image === undefined) out.add(raw, `${field}.frontal_image`, 'is required (or video for a video element)');
  if (!countOk) out.add(raw, `${field}.reference_images`, `needs 1 to ${MAX_REFERENCE_IMAGES} images, got ${refs.length}`);
  const frontal = e.frontal_image === undefined ? undefined : readImage({ ...raw, value: e.frontal_image }, `${field}.frontal_image`, out, images);
  const references = refs.map((r, j) => readImage({ ...raw, value: r }, `${field}.reference_images[${j + 1}]`, out, images));
  if (!frontal || references.some((r) => r === undefined) || !countOk) return { failed: true };
  return { element: { kind: 'images', frontal, references: references as ImageRef[] }, failed };
}

export function readElements(raw: RawValue, out: Collector, images: ImageUse[]): Element[] | undefined {
  const v = raw.value;
  if (!Array.isArray(v) || v.length === 0) {
    out.add(raw, 'elements', 'must be a list of elements, each {frontal_image, reference_images} or {video, voice_id}');
    return undefined;
  }
  const elements: Element[] = [];
  let failed = false;
  for (const [i, item] of (v as unknown[]).entries()) {
    const field = `elements[${i + 1}]`;
    const e = (typeof item === 'object' && item !== null && !Array.isArray(item) ? item : {}) as Record<string, unknown>;
    const extra = Object.keys(e).filter((k) => !['frontal_image', 'reference_images', 'video', 'voice_id'].includes(k));
    if (extra.length > 0) out.add(raw, field, `unknown key ${extra.join(', ')} (allowed: frontal_image, reference_images, video, voice_id)`);
    const read = e.video !== undefined ? readVideoElement(raw, field, e, out) : readImageSetElement(raw, field, e, out, images);
    if (read.element) elements.push(read.element);
    if (read.failed) failed = true;
  }
  if (elements.filter((e) => e.kind === 'video').length > 1) out.add(raw, 'elements', 'at most one video element');
  return failed || elements.length !== v.length ? undefined : elements;
}

export function readVoiceIds(raw: RawValue, out: Collector): string[] | undefined {
  const list = Array.isArray(raw.value) ? raw.value : [raw.value];
  const ids = list.map((v) => (typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '')).filter(Boolean);
  if (ids.length !== list.length || ids.length < 1 || ids.length > MAX_VOICES) {
    out.add(raw, 'voice_ids', `must be 1 to ${MAX_VOICES} voice ids (from Kling's create-voice endpoint)`);
    return undefined;
  }
  return ids;
}

/** `@Element3` needs three elements, `<<<voice_2>>>` two voices: a reference to nothing is a mistake to catch before paying. */
export function checkReferences(
  texts: { field: string; text: string; at: RawValue | { file: string; line: number } }[],
  elements: number,
  voices: number,
  out: Collector,
): void {
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
