import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MAX_DURATION_S, MIN_DURATION_S } from '../model/kling-v3.js';

/**
 * Real H.264 MP4 clips (made once with ffmpeg), one per duration, with and without an audio track,
 * in three shapes: landscape 480x270 (16:9), portrait 270x480 (9:16) and square 360x360 (1:1).
 */
const CLIPS_DIR = fileURLToPath(new URL('../../src/simulator/clips/', import.meta.url));

export type ClipLibrary = Map<string, Buffer>;

/** The shape of a clip: the real model keeps its start image's aspect ratio. */
export type Aspect = 'landscape' | 'portrait' | 'square';

export const ASPECTS: readonly Aspect[] = ['landscape', 'portrait', 'square'];

/** Landscape when width/height > 6/5 (1.2), portrait when < 5/6 (~0.83), square in between (both bounds included). */
export function aspectOf(width: number, height: number): Aspect {
  if (5 * width > 6 * height) return 'landscape';
  if (5 * height > 6 * width) return 'portrait';
  return 'square';
}

/** The clip's file name; landscape clips keep their original names (`audio-05s.mp4`), the others are prefixed. */
export function clipName(seconds: number, audio: boolean, aspect: Aspect = 'landscape'): string {
  const prefix = aspect === 'landscape' ? '' : `${aspect}-`;
  return `${prefix}${audio ? 'audio' : 'silent'}-${String(seconds).padStart(2, '0')}s.mp4`;
}

export async function loadClips(): Promise<ClipLibrary> {
  const clips: ClipLibrary = new Map();
  for (const aspect of ASPECTS) {
    for (let s = MIN_DURATION_S; s <= MAX_DURATION_S; s++) {
      for (const audio of [false, true]) {
        const name = clipName(s, audio, aspect);
        clips.set(name, await readFile(CLIPS_DIR + name));
      }
    }
  }
  return clips;
}
