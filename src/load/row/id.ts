/** A row's key: the id it names itself by (safe as a file name), or one derived from what it asks for. */
import { createHash } from 'node:crypto';
import type { ImageRef, KlingRequest } from '../../model/kling-v3.js';
import type { RawValue } from '../raw.js';
import type { Collector } from './collector.js';
import { isBlank, readString, show } from './fields.js';

const ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;
const ID_RULE = "letters, digits, '.', '_' and '-', at most 100 characters, not starting with '.'";

/** The row's own id when it gives one that is usable as a file name; undefined (a problem added if it is not) otherwise. */
export function readRowId(idRaw: RawValue | undefined, out: Collector): string | undefined {
  if (!idRaw || isBlank(idRaw.value)) return undefined;
  const id = readString(idRaw, 'id', out);
  if (id !== undefined && !ID_PATTERN.test(id)) {
    out.add(idRaw, 'id', `${show(id)} cannot be used as a file name (${ID_RULE})`);
    return undefined;
  }
  return id;
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
    ...(request.elements
      ? [
          request.elements.map((e) =>
            e.kind === 'video' ? (e.voiceId === undefined ? e.url : [e.url, e.voiceId]) : [image(e.frontal), e.references.map(image)],
          ),
        ]
      : []),
    ...(request.voiceIds ? [request.voiceIds] : []),
  ]);
  return `row-${createHash('sha256').update(canonical).digest('hex').slice(0, 10)}`;
}
