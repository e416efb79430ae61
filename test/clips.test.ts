import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_DURATION_S, MIN_DURATION_S } from '../src/model/kling-v3.js';
import { type Mp4Facts, Mp4Inspector } from '../src/infra/mp4.js';
import { ASPECTS, type Aspect, aspectOf, clipName, loadClips } from '../src/simulator/clips.js';

const SIZES: Record<Aspect, { width: number; height: number }> = {
  landscape: { width: 480, height: 270 },
  portrait: { width: 270, height: 480 },
  square: { width: 360, height: 360 },
};

function inspect(name: string, bytes: Buffer): Mp4Facts {
  const inspector = new Mp4Inspector();
  // In pieces, as a download streams in.
  for (let at = 0; at < bytes.length; at += 16 * 1024) inspector.push(bytes.subarray(at, at + 16 * 1024));
  const facts = inspector.finish();
  assert.ok(!('problem' in facts), `${name}: ${'problem' in facts ? facts.problem : ''}`);
  return facts;
}

test('clip names: landscape keeps its original names, portrait and square are prefixed', () => {
  assert.equal(clipName(5, true), 'audio-05s.mp4');
  assert.equal(clipName(15, false), 'silent-15s.mp4');
  assert.equal(clipName(5, true, 'landscape'), 'audio-05s.mp4');
  assert.equal(clipName(5, true, 'portrait'), 'portrait-audio-05s.mp4');
  assert.equal(clipName(3, false, 'portrait'), 'portrait-silent-03s.mp4');
  assert.equal(clipName(12, true, 'square'), 'square-audio-12s.mp4');
  assert.equal(clipName(9, false, 'square'), 'square-silent-09s.mp4');
});

test('every clip loads, in every shape, duration and audio: each is a real MP4 of its size, whole seconds long', async () => {
  const clips = await loadClips();
  assert.equal(clips.size, ASPECTS.length * (MAX_DURATION_S - MIN_DURATION_S + 1) * 2);
  assert.equal(clips.size, 78);
  for (const aspect of ASPECTS) {
    for (let seconds = MIN_DURATION_S; seconds <= MAX_DURATION_S; seconds++) {
      for (const audio of [false, true]) {
        const name = clipName(seconds, audio, aspect);
        const bytes = clips.get(name);
        assert.ok(bytes, `${name} is loaded`);
        const facts = inspect(name, bytes);
        assert.deepEqual(facts, { durationSeconds: seconds, hasVideo: true, hasAudio: audio, ...SIZES[aspect] }, name);
        assert.equal(aspectOf(facts.width, facts.height), aspect, `${name} is ${aspect}`);
        // Small: a test pattern at a low bitrate, not footage.
        assert.ok(bytes.length < 200 * 1024, `${name} is ${bytes.length} bytes`);
      }
    }
  }
});

test('aspectOf: landscape above 6:5, portrait below 5:6, square between them, bounds included', () => {
  assert.equal(aspectOf(1920, 1080), 'landscape');
  assert.equal(aspectOf(1080, 1920), 'portrait');
  assert.equal(aspectOf(1000, 1000), 'square');
  assert.equal(aspectOf(1200, 1000), 'square');
  assert.equal(aspectOf(1201, 1000), 'landscape');
  assert.equal(aspectOf(1000, 1200), 'square');
  assert.equal(aspectOf(1000, 1201), 'portrait');
  assert.equal(aspectOf(1024, 768), 'landscape'); // 4:3
  assert.equal(aspectOf(768, 1024), 'portrait'); // 3:4
  assert.equal(aspectOf(1080, 1350), 'portrait'); // 4:5
  assert.equal(aspectOf(1100, 1000), 'square');
  assert.equal(aspectOf(1000, 1100), 'square');
  // The model's accepted extremes (0.4 to 2.5).
  assert.equal(aspectOf(2500, 1000), 'landscape');
  assert.equal(aspectOf(400, 1000), 'portrait');
});
