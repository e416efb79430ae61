import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { MAX_DURATION_S, MIN_DURATION_S } from '../../model/kling-v3.js';

/** Real H.264 MP4 clips (made once with ffmpeg), one per duration, with and without an audio track. */
const CLIPS_DIR = fileURLToPath(new URL('../../../src/providers/simulator/clips/', import.meta.url));

export type ClipLibrary = Map<string, Buffer>;

export function clipName(seconds: number, audio: boolean): string {
  return `${audio ? 'audio' : 'silent'}-${String(seconds).padStart(2, '0')}s.mp4`;
}

export async function loadClips(): Promise<ClipLibrary> {
  const clips: ClipLibrary = new Map();
  for (let s = MIN_DURATION_S; s <= MAX_DURATION_S; s++) {
    for (const audio of [false, true]) clips.set(clipName(s, audio), await readFile(CLIPS_DIR + clipName(s, audio)));
  }
  return clips;
}
