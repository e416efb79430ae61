import type { Sidecar } from '../../execute/download.js';
import { readTextIfPresent } from './read-if-present.js';

/** A sidecar as read back, or why it cannot be used. */
export type ReadSidecar = Sidecar | { problem: string };

/** Whether a parsed value has every field a sidecar needs to rebuild its row, each of the right kind. */
function isSidecar(value: unknown): value is Sidecar {
  const s = value as Partial<Record<keyof Sidecar, unknown>> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.run_id === 'string' &&
    s.run_id !== '' &&
    typeof s.request === 'string' &&
    s.request !== '' &&
    typeof s.key === 'string' &&
    s.key.includes('/') &&
    typeof s.sha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(s.sha256) &&
    typeof s.bytes === 'number' &&
    Number.isSafeInteger(s.bytes) &&
    typeof s.seconds === 'number' &&
    Number.isFinite(s.seconds) &&
    (s.cost_micros === undefined || (typeof s.cost_micros === 'number' && Number.isSafeInteger(s.cost_micros) && s.cost_micros >= 0))
  );
}

/** A sidecar's text read as a sidecar, or why it cannot be used. */
export function parseSidecar(text: string): ReadSidecar {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { problem: 'its sidecar is not valid JSON' };
  }
  return isSidecar(value) ? value : { problem: 'its sidecar lacks run_id, request, key, sha256, bytes or seconds' };
}

/** The sidecar at `file` as read back, why it cannot be used, or undefined when there is none. */
export async function readSidecar(file: string): Promise<ReadSidecar | undefined> {
  const text = await readTextIfPresent(file);
  return text === undefined ? undefined : parseSidecar(text);
}
