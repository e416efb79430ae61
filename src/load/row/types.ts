import type { ImageRef, KlingRequest } from '../../model/kling-v3.js';

/** One validated manifest row: where it came from, its key, and the request it stands for. */
export interface Row {
  manifest: string;
  file: string;
  line: number;
  id: string;
  idDerived: boolean;
  request: KlingRequest;
  /** Set when review notes were applied: `base` is the request hash of the row as the manifest has it, `notes` the notes appended, oldest first. */
  review?: { base: string; notes: string[] };
}

/** A local image a row refers to, still to be checked on disk. */
export interface ImageUse {
  ref: Extract<ImageRef, { kind: 'file' }>;
  field: string;
  file: string;
  line: number;
}
