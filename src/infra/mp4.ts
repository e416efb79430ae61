import { Log, MP4BoxBuffer, createFile, type Track } from 'mp4box';

// mp4box.js logs parse trouble to the console; we report it ourselves, once, in the row's error.
Log.setLogLevel(() => {});

export interface Mp4Facts {
  durationSeconds: number;
  hasVideo: boolean;
  hasAudio: boolean;
  /** The first video track's size as displayed, in pixels (0 when there is no video track). */
  width: number;
  height: number;
}

/**
 * A video track's displayed size: the track header's width and height (falling back to the
 * sample entry's coded size), swapped when its matrix turns the picture a quarter turn.
 */
function displaySize(track: Track | undefined): { width: number; height: number } {
  if (!track) return { width: 0, height: 0 };
  const width = track.track_width || track.video?.width || 0;
  const height = track.track_height || track.video?.height || 0;
  const m = track.matrix as ArrayLike<number> | undefined;
  const quarterTurn = m !== undefined && m.length >= 5 && m[0] === 0 && m[4] === 0 && m[1] !== 0;
  return quarterTurn ? { width: height, height: width } : { width, height };
}

/** An MP4 starts with an `ftyp` box: bytes 4..8 spell it. An HTML error page saved as .mp4 does not. */
export function startsWithFtyp(head: Uint8Array): boolean {
  return head.length >= 8 && head[4] === 0x66 && head[5] === 0x74 && head[6] === 0x79 && head[7] === 0x70;
}

/**
 * Reads an MP4's structure as it streams by (mp4box.js), without keeping the media data,
 * so a download can be checked for a real video and its duration before it is kept.
 */
export class Mp4Inspector {
  private readonly file = createFile(false);
  private offset = 0;
  private facts: Mp4Facts | undefined;
  private error: string | undefined;
  private head = Buffer.alloc(0);

  constructor() {
    this.file.onReady = (info) => {
      this.facts = {
        durationSeconds: info.timescale > 0 ? info.duration / info.timescale : 0,
        hasVideo: info.videoTracks.length > 0,
        hasAudio: info.audioTracks.length > 0,
        ...displaySize(info.videoTracks[0]),
      };
    };
    this.file.onError = (module: string, message: string) => {
      this.error ??= `${module}: ${message}`;
    };
  }

  push(chunk: Uint8Array): void {
    if (this.head.length < 8) this.head = Buffer.concat([this.head, chunk.subarray(0, 8 - this.head.length)]);
    if (this.error !== undefined) return;
    const copy = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer;
    this.file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(copy, this.offset));
    this.offset += chunk.byteLength;
  }

  /** The facts, or why these bytes are not a playable MP4 video. */
  finish(): Mp4Facts | { problem: string } {
    if (!startsWithFtyp(this.head)) {
      const text = this.head.toString('latin1').replace(/[^\x20-\x7e]/g, '.');
      return { problem: `not an MP4 file (no ftyp box; it starts with "${text}")` };
    }
    this.file.flush();
    if (this.error !== undefined) return { problem: `damaged MP4 (${this.error})` };
    if (!this.facts) return { problem: 'incomplete MP4 (no movie header: the file may be cut short)' };
    if (!this.facts.hasVideo) return { problem: 'MP4 without a video track' };
    return this.facts;
  }
}
