import { MAX_DURATION_S, MAX_PROMPT_CHARS, MAX_SHOTS, MIN_DURATION_S, MIN_SHOT_S, type Shot } from '../../model/kling-v3.js';
import type { RawValue } from '../raw.js';
import type { Collector } from './collector.js';
import { isBlank, readSeconds, readString } from './fields.js';

/** One `{prompt, duration}` shot of a multi_prompt list; undefined (with its problems added) when it is not usable. */
function readShot(raw: RawValue, item: unknown, field: string, out: Collector): Shot | undefined {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    out.add(raw, field, 'must be {prompt, duration}');
    return undefined;
  }
  const shot = item as Record<string, unknown>;
  const extra = Object.keys(shot).filter((k) => k !== 'prompt' && k !== 'duration');
  if (extra.length > 0) out.add(raw, field, `unknown key ${extra.join(', ')} (allowed: prompt, duration)`);
  const prompt = isBlank(shot.prompt) ? undefined : readString({ ...raw, value: shot.prompt }, `${field}.prompt`, out, MAX_PROMPT_CHARS);
  if (isBlank(shot.prompt)) out.add(raw, `${field}.prompt`, 'is required');
  const durationSeconds = isBlank(shot.duration) ? undefined : readSeconds({ ...raw, value: shot.duration }, `${field}.duration`, out, MIN_SHOT_S);
  if (isBlank(shot.duration))
    out.add(raw, `${field}.duration`, `is required (${MIN_SHOT_S} to ${MAX_DURATION_S} seconds; the shots together ${MIN_DURATION_S} to ${MAX_DURATION_S})`);
  return prompt !== undefined && durationSeconds !== undefined ? { prompt, durationSeconds } : undefined;
}

/** A multi_prompt list: every shot must be usable, or the whole list is refused. */
export function readShots(raw: RawValue, out: Collector): Shot[] | undefined {
  const v = raw.value;
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SHOTS) {
    out.add(raw, 'multi_prompt', `must be a list of 1 to ${MAX_SHOTS} shots, each {prompt, duration}`);
    return undefined;
  }
  const shots: Shot[] = [];
  v.forEach((item: unknown, i) => {
    const shot = readShot(raw, item, `multi_prompt[${i + 1}]`, out);
    if (shot) shots.push(shot);
  });
  return shots.length === v.length ? shots : undefined;
}
