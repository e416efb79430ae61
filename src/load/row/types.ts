import type { ImageRef, KlingRequest } from '../../model/kling-v3.js';

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
