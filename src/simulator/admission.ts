import { imageSize } from 'image-size';
import { IMAGE_LIMITS, inputSchemaFor, outputSeconds, type KlingV3Input } from '../model/kling-v3.js';
import { aspectOf, type Aspect } from './clips.js';
import type { SimulatorSettings } from './options.js';
import type { FieldError, Protocol } from './types.js';

/** What the model's fetcher finds at an image URL: bytes, why it could not fetch them, or undefined for a host we cannot reach and so trust. */
export type ImageReader = (url: string) => Buffer | string | undefined;

/** Every image URL in an input, with its field, for the fetch check. */
function imageFields(input: KlingV3Input): { field: string; url: string }[] {
  const fields: { field: string; url: string }[] = [{ field: 'start_image_url', url: input.start_image_url }];
  if (input.end_image_url !== undefined) fields.push({ field: 'end_image_url', url: input.end_image_url });
  (input.elements ?? []).forEach((element, i) => {
    if ('frontal_image_url' in element) {
      fields.push({ field: `elements.${i}.frontal_image_url`, url: element.frontal_image_url });
      element.reference_image_urls.forEach((url, j) => fields.push({ field: `elements.${i}.reference_image_urls.${j}`, url }));
    }
  });
  return fields;
}

/** The width and height of image bytes, or why the model would refuse them. */
function measureImage(bytes: Buffer): { width: number; height: number } | string {
  try {
    const { width, height } = imageSize(bytes);
    if (Math.min(width, height) < IMAGE_LIMITS.minSidePx) return `image is ${width}x${height}, each side must be at least ${IMAGE_LIMITS.minSidePx}px`;
    const aspect = width / height;
    if (aspect < IMAGE_LIMITS.minAspect || aspect > IMAGE_LIMITS.maxAspect)
      return `aspect ratio ${aspect.toFixed(2)} is outside ${IMAGE_LIMITS.minAspect}-${IMAGE_LIMITS.maxAspect}`;
    return { width, height };
  } catch {
    return 'could not be decoded as an image';
  }
}

export type CheckedInput = { input: KlingV3Input; aspect: Aspect } | { errors: FieldError[] };

/** Checks a model input as the provider would: its schema, then every image it must fetch; the start image gives the video's shape. */
export function checkInput(raw: Record<string, unknown>, protocol: Protocol, readImage: ImageReader): CheckedInput {
  const parsed = inputSchemaFor(protocol).safeParse(raw);
  if (!parsed.success) return { errors: parsed.error.issues.map((i) => ({ field: i.path.map(String).join('.'), message: i.message })) };
  const input = parsed.data;
  const errors: FieldError[] = [];
  let aspect: Aspect = 'landscape';
  for (const { field, url } of imageFields(input)) {
    const found = readImage(url);
    const measured = found === undefined || typeof found === 'string' ? found : measureImage(found);
    if (typeof measured === 'string') errors.push({ field, message: measured });
    else if (field === 'start_image_url' && measured) aspect = aspectOf(measured.width, measured.height);
  }
  return errors.length > 0 ? { errors } : { input, aspect };
}

export function usdToMicros(usd: number): number {
  return Math.round(usd * 1_000_000);
}

/** What a run of this input costs: seconds of video times the rate of its audio mode (voice costs most). */
export function priceOf(input: KlingV3Input, options: SimulatorSettings): { seconds: number; audio: boolean; costMicros: number } {
  const seconds = outputSeconds(input);
  const audio = input.generate_audio ?? true; // the provider's default, which costs more
  const voice = audio && ((input.voice_ids?.length ?? 0) > 0 || (input.elements ?? []).some((e) => 'voice_id' in e && e.voice_id !== undefined));
  const usdPerSecond = voice ? options.voice_price_usd_per_second : audio ? options.audio_price_usd_per_second : options.price_usd_per_second;
  return { seconds, audio, costMicros: seconds * usdToMicros(usdPerSecond) };
}
