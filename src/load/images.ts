import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { imageSize } from 'image-size';
import { IMAGE_LIMITS } from '../model/kling-v3.js';

export interface ImageInfo {
  path: string;
  bytes: number;
  sha256: string;
  type: string;
  mime: string;
  width: number;
  height: number;
}

const MIME: Record<string, string> = { jpg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };

/** Checks a local image from its bytes (not its name) against the model's limits. */
export async function inspectImage(file: string): Promise<ImageInfo | { problem: string }> {
  let size: number;
  try {
    const info = await stat(file);
    if (!info.isFile()) return { problem: `is not a file (${file})` };
    size = info.size;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { problem: code === 'ENOENT' ? `does not exist (looked for ${file})` : `cannot be read (${code ?? String(error)}: ${file})` };
  }
  const limitMb = IMAGE_LIMITS.maxBytes / 1e6;
  if (size > IMAGE_LIMITS.maxBytes) return { problem: `is ${(size / 1e6).toFixed(1)} MB (at most ${limitMb} MB)` };
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    return { problem: `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}: ${file})` };
  }
  let dims: ReturnType<typeof imageSize>;
  try {
    dims = imageSize(bytes);
  } catch {
    return { problem: `is not an image (expected ${IMAGE_LIMITS.types.join(', ')})` };
  }
  if (!dims.type || !IMAGE_LIMITS.types.includes(dims.type)) {
    return { problem: `is a ${dims.type ?? 'unknown'} image (allowed: ${IMAGE_LIMITS.types.join(', ')})` };
  }
  const { width, height } = dims;
  if (Math.min(width, height) < IMAGE_LIMITS.minSidePx) {
    return { problem: `is ${width}x${height} px (each side at least ${IMAGE_LIMITS.minSidePx} px)` };
  }
  const aspect = width / height;
  if (aspect < IMAGE_LIMITS.minAspect || aspect > IMAGE_LIMITS.maxAspect) {
    return { problem: `is ${width}x${height} px, aspect ratio ${aspect.toFixed(2)} (allowed ${IMAGE_LIMITS.minAspect} to ${IMAGE_LIMITS.maxAspect})` };
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return { path: file, bytes: size, sha256, type: dims.type, mime: MIME[dims.type] ?? 'application/octet-stream', width, height };
}
