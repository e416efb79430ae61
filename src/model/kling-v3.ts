import { z } from 'zod';

/** Kling 3.0 Pro image-to-video: the model's input rules (PROVIDERS.md), shared by Runflow and fal. */
export const MODEL_PATH = 'kuaishou/kling-video/v3/pro/image-to-video';
export const MIN_DURATION_S = 3;
export const MAX_DURATION_S = 15;
export const DEFAULT_DURATION_S = 5;
/** One shot of a multi-shot video: "1" to "15" on the wire; the shots together stay within MIN_DURATION_S..MAX_DURATION_S. */
export const MIN_SHOT_S = 1;
export const MAX_PROMPT_CHARS = 2500;
export const MAX_SHOTS = 6;
export const SHOT_TYPES = ['customize', 'intelligent'] as const;
export const MAX_REFERENCE_IMAGES = 3;
export const MAX_VOICES = 2;
export type ShotType = (typeof SHOT_TYPES)[number];
/** The wire schema a provider speaks: fal's typed schema for this model has no top-level voice_ids. */
export type ModelProtocol = 'runflow' | 'fal';

export const IMAGE_LIMITS = {
  maxBytes: 10 * 1000 * 1000,
  minSidePx: 300,
  minAspect: 0.4,
  maxAspect: 2.5,
  types: ['jpg', 'png', 'webp'] as readonly string[],
};

/** Where a row's image comes from: a local file (sent inline or uploaded) or a URL passed through. */
export type ImageRef = { kind: 'file'; path: string; written: string } | { kind: 'url'; url: string };

export interface Shot {
  prompt: string;
  durationSeconds: number;
}

/** A character or object the prompt refers to as @Element1, @Element2…: an image set, or one video (which may carry a voice). */
export type Element = { kind: 'images'; frontal: ImageRef; references: ImageRef[] } | { kind: 'video'; url: string; voiceId?: string };

/** A validated request for one clip, in our own units; the wire body is built from it. */
export interface KlingRequest {
  image: ImageRef;
  endImage?: ImageRef;
  prompt?: string;
  multiPrompt?: Shot[];
  shotType?: ShotType;
  durationSeconds: number;
  generateAudio: boolean;
  negativePrompt?: string;
  cfgScale?: number;
  elements?: Element[];
  /** Voices the prompt refers to as <<<voice_1>>>, <<<voice_2>>> (Runflow only: fal's schema for this model has no voice_ids). */
  voiceIds?: string[];
}

const secondsStrings = (min: number, max: number) => Array.from({ length: max - min + 1 }, (_, i) => String(min + i)) as [string, ...string[]];
const durationString = z.enum(secondsStrings(MIN_DURATION_S, MAX_DURATION_S), {
  error: `must be a string "${MIN_DURATION_S}" to "${MAX_DURATION_S}"`,
});
const shotDurationString = z.enum(secondsStrings(MIN_SHOT_S, MAX_DURATION_S), {
  error: `must be a string "${MIN_SHOT_S}" to "${MAX_DURATION_S}"`,
});
const imageUrl = z.string().refine((s) => /^(https?:|data:image\/)/.test(s), 'must be an http(s) URL or a data:image URI');

/** The fields both providers take (fal's typed schema for this model). */
const commonInputShape = {
  start_image_url: imageUrl,
  prompt: z.string().min(1).max(MAX_PROMPT_CHARS).optional(),
  multi_prompt: z
    .array(z.object({ prompt: z.string().min(1).max(MAX_PROMPT_CHARS), duration: shotDurationString }).strict())
    .min(1)
    .max(MAX_SHOTS)
    .optional(),
  shot_type: z.enum(SHOT_TYPES).optional(),
  duration: durationString.optional(),
  generate_audio: z.boolean().optional(),
  end_image_url: imageUrl.optional(),
  negative_prompt: z.string().max(MAX_PROMPT_CHARS).optional(),
  cfg_scale: z.number().min(0).max(1).optional(),
  elements: z
    .array(
      z.union([
        z.object({ frontal_image_url: imageUrl, reference_image_urls: z.array(imageUrl).min(1).max(MAX_REFERENCE_IMAGES) }).strict(),
        z.object({ video_url: z.url(), voice_id: z.string().min(1).optional() }).strict(),
      ]),
    )
    .min(1)
    .optional(),
};

type CommonInput = z.infer<z.ZodObject<typeof commonInputShape>>;

function checkInput(input: CommonInput, ctx: z.RefinementCtx): void {
  if ((input.prompt === undefined) === (input.multi_prompt === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'exactly one of prompt and multi_prompt is required' });
  }
  if (input.multi_prompt) {
    const total = input.multi_prompt.reduce((sum, shot) => sum + Number(shot.duration), 0);
    if (total < MIN_DURATION_S || total > MAX_DURATION_S) {
      ctx.addIssue({ code: 'custom', path: ['multi_prompt'], message: `shots total ${total}s, must be ${MIN_DURATION_S}s to ${MAX_DURATION_S}s` });
    }
    if (input.shot_type === undefined) {
      ctx.addIssue({ code: 'custom', path: ['shot_type'], message: 'required when multi_prompt is given' });
    }
  }
  if ((input.elements ?? []).filter((e) => 'video_url' in e).length > 1) {
    ctx.addIssue({ code: 'custom', path: ['elements'], message: 'at most one video element' });
  }
}

/** The wire body's `input` as Runflow validates it: the common fields plus `voice_ids`. */
export const klingV3InputSchema = z
  .object({ ...commonInputShape, voice_ids: z.array(z.string().min(1)).min(1).max(MAX_VOICES).optional() })
  .strict()
  .superRefine(checkInput);

/** The wire body as fal validates it: no top-level `voice_ids` (refused as an unknown key). */
const falInputSchema = z.object(commonInputShape).strict().superRefine(checkInput);

/** The schema the provider speaking `protocol` validates the input with. */
export function inputSchemaFor(protocol: ModelProtocol): z.ZodType<KlingV3Input> {
  return protocol === 'fal' ? falInputSchema : klingV3InputSchema;
}

export type KlingV3Input = z.infer<typeof klingV3InputSchema>;

/** The duration the provider bills and returns: multi-shot rows last as long as their shots. */
export function outputSeconds(input: Pick<KlingV3Input, 'duration' | 'multi_prompt'>): number {
  if (input.multi_prompt) return input.multi_prompt.reduce((sum, shot) => sum + Number(shot.duration), 0);
  return Number(input.duration ?? DEFAULT_DURATION_S);
}

/** Builds the wire body. `generate_audio` is always explicit because the provider defaults it to true (costs more). */
export function buildKlingInput(request: KlingRequest, imageUrlOf: (ref: ImageRef) => string): KlingV3Input {
  const input: KlingV3Input = {
    start_image_url: imageUrlOf(request.image),
    duration: String(request.durationSeconds),
    generate_audio: request.generateAudio,
  };
  if (request.multiPrompt) {
    input.multi_prompt = request.multiPrompt.map((shot) => ({ prompt: shot.prompt, duration: String(shot.durationSeconds) }));
    input.shot_type = request.shotType ?? 'customize';
  } else if (request.prompt !== undefined) {
    input.prompt = request.prompt;
  }
  if (request.endImage) input.end_image_url = imageUrlOf(request.endImage);
  if (request.negativePrompt !== undefined) input.negative_prompt = request.negativePrompt;
  if (request.cfgScale !== undefined) input.cfg_scale = request.cfgScale;
  if (request.elements) {
    input.elements = request.elements.map((e) =>
      e.kind === 'video'
        ? { video_url: e.url, ...(e.voiceId !== undefined && { voice_id: e.voiceId }) }
        : { frontal_image_url: imageUrlOf(e.frontal), reference_image_urls: e.references.map(imageUrlOf) },
    );
  }
  if (request.voiceIds) input.voice_ids = [...request.voiceIds];
  return input;
}
