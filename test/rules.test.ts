import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateMicros, formatUsd, parseUsdToMicros } from '../src/money/cost.js';
import { ApiError } from '../src/infra/errors.js';
import { foldEvents } from '../src/lifecycle/events.js';
import { parseJournal } from '../src/state/journal.js';
import { buildKlingInput, klingV3InputSchema, type KlingRequest } from '../src/model/kling-v3.js';
import { InputError } from '../src/load/problem.js';
import { findVideoUrl, parseRun } from '../src/providers/runflow.js';
import { neutraliseCell } from '../src/report/render.js';
import { backoffMs, parseRetryAfterMs, shouldRetry } from '../src/infra/retry.js';

test('backoff grows exponentially with full jitter under the cap', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(
    backoffMs(1, policy, () => 0.999),
    99,
  );
  assert.equal(
    backoffMs(3, policy, () => 0.999),
    399,
  );
  assert.equal(
    backoffMs(10, policy, () => 0.999),
    999,
  );
  assert.equal(
    backoffMs(4, policy, () => 0),
    0,
  );
});

test('Retry-After is read as seconds or an HTTP date, and capped', () => {
  const now = Date.parse('2026-11-23T10:00:00Z');
  assert.equal(parseRetryAfterMs('3', now, 30_000), 3000);
  assert.equal(parseRetryAfterMs('Mon, 23 Nov 2026 10:00:10 GMT', now, 30_000), 10_000);
  assert.equal(parseRetryAfterMs('3600', now, 30_000), 30_000);
  assert.equal(parseRetryAfterMs('soon', now, 30_000), undefined);
  assert.equal(parseRetryAfterMs(undefined, now, 30_000), undefined);
});

test('only transient errors are retried, and not past the last attempt', () => {
  const transient = new ApiError('transient', 'HTTP_503', 'x');
  assert.equal(shouldRetry(transient, 1, { maxAttempts: 3 }), true);
  assert.equal(shouldRetry(transient, 3, { maxAttempts: 3 }), false);
  assert.equal(shouldRetry(new ApiError('row', 'VALIDATION_ERROR', 'x'), 1, { maxAttempts: 3 }), false);
  assert.equal(shouldRetry(new ApiError('fatal', 'UNAUTHORIZED', 'x'), 1, { maxAttempts: 3 }), false);
});

test('money: exact decimal strings to micro-dollars, per-second estimates, printing', () => {
  assert.equal(parseUsdToMicros('0.700000'), 700_000);
  assert.equal(parseUsdToMicros('1.4'), 1_400_000);
  assert.equal(parseUsdToMicros('0.1234565'), 123_457);
  assert.equal(parseUsdToMicros('-1'), undefined);
  const pricing = { silentMicrosPerSecond: 112_000, audioMicrosPerSecond: 168_000, voiceMicrosPerSecond: 196_000 };
  assert.equal(estimateMicros({ durationSeconds: 10, generateAudio: false }, pricing), 1_120_000);
  assert.equal(estimateMicros({ durationSeconds: 10, generateAudio: true }, pricing), 1_680_000);
  assert.equal(formatUsd(6_020_000), '$6.02');
  assert.equal(formatUsd(1_005), '$0.00');
  assert.equal(formatUsd(123_456, 4), '$0.1235');
});

test('Runflow run objects: statuses in both spellings, the video read from normalised outputs[] only, unknown status is an error', () => {
  assert.equal(
    findVideoUrl({
      outputs: [
        { type: 'image', url: 'i' },
        { type: 'video', url: 'a' },
      ],
    }),
    'a',
  );
  assert.equal(
    findVideoUrl({
      outputs: [
        { url: 'i.png', content_type: 'image/png' },
        { url: 'https://cdn/x', content_type: 'video/mp4' },
      ],
    }),
    'https://cdn/x',
    'untyped: by content type',
  );
  assert.equal(findVideoUrl({ outputs: [{ url: 'https://cdn/y', file_name: 'clip.MP4' }] }), 'https://cdn/y', 'untyped: by file name');
  assert.equal(findVideoUrl({ outputs: [{ type: 'image', url: 'i', content_type: 'video/mp4' }] }), undefined, 'a typed entry is taken at its word');
  assert.equal(findVideoUrl({ video: { url: 'b' } }), undefined, 'raw model shapes are not guessed at');
  assert.equal(findVideoUrl(null), undefined);
  assert.deepEqual(parseRun({ id: 'r1', status_code: 'dispatching' }), { runId: 'r1', state: 'queued' });
  assert.equal(parseRun({ id: 'r1', status_code: 'cancelled' }).state, 'canceled');
  assert.equal(parseRun({ id: 'r1', status_code: 'canceled' }).state, 'canceled');
  const output = { outputs: [{ type: 'video', url: 'https://cdn/v.mp4' }] };
  const done = parseRun({ id: 'r1', status_code: 'succeeded', cost: '0.700000', output });
  assert.deepEqual(done, { runId: 'r1', state: 'succeeded', costMicros: 700_000, videoUrl: 'https://cdn/v.mp4', rawOutput: output });
  const empty = parseRun({ id: 'r1', status_code: 'succeeded', cost: '0.700000', output: { outputs: [] } });
  assert.equal(empty.videoUrl, undefined, 'paid with no video: the runner keeps the row owed');
  const failed = parseRun({ id: 'r2', status_code: 'failed', failure_code: 'NSFW', failure_message: 'blocked', cost: '0' });
  assert.deepEqual(failed.failure, { code: 'NSFW', message: 'blocked' });
  assert.throws(() => parseRun({ id: 'r3', status_code: 'mystery' }), /does not know/);
  const timed = parseRun({
    id: 'r4',
    status_code: 'succeeded',
    output,
    created_at: '2026-11-24T03:00:00.000Z',
    started_at: '2026-11-24T03:00:01.500Z',
    completed_at: '2026-11-24T03:00:31.500Z',
  });
  assert.deepEqual([timed.queueMs, timed.runMs], [1_500, 30_000], 'the wait to start and the run, by the provider clock');
});

test('the wire body: duration as a string, audio explicit, multi-shot with shot_type, and the model schema agrees', () => {
  const request: KlingRequest = {
    image: { kind: 'url', url: 'https://x/a.png' },
    durationSeconds: 7,
    generateAudio: false,
    multiPrompt: [
      { prompt: 'a', durationSeconds: 4 },
      { prompt: 'b', durationSeconds: 3 },
    ],
  };
  const input = buildKlingInput(request, (ref) => (ref.kind === 'url' ? ref.url : ''));
  assert.deepEqual(input, {
    start_image_url: 'https://x/a.png',
    duration: '7',
    generate_audio: false,
    multi_prompt: [
      { prompt: 'a', duration: '4' },
      { prompt: 'b', duration: '3' },
    ],
    shot_type: 'customize',
  });
  assert.equal(klingV3InputSchema.safeParse(input).success, true);
  assert.equal(klingV3InputSchema.safeParse({ ...input, prompt: 'both' }).success, false);
  assert.equal(klingV3InputSchema.safeParse({ start_image_url: 'https://x/a.png', prompt: 'p', duration: 5 }).success, false, 'a numeric duration is refused');
});

test('journal: a torn last line is ignored, a damaged middle line names its line', () => {
  const good = JSON.stringify({ at: 't', key: 'm/a', request: 'h', type: 'submitting', attempt: 1 });
  const next = JSON.stringify({ at: 't', key: 'm/a', request: 'h', type: 'submitted', runId: 'run_1' });
  const states = foldEvents(parseJournal(`${good}\n${next}\n{"at":"t","key":"m/a","req`, 'j'));
  assert.equal(states.get('m/a')?.status, 'submitted');
  assert.equal(states.get('m/a')?.runId, 'run_1');
  assert.throws(
    () => parseJournal(`${good}\n{oops\n${next}\n`, 'journal.jsonl'),
    (e: unknown) => e instanceof InputError && e.problems[0]?.line === 2,
  );
});

test('report cells that a spreadsheet would run as a formula are neutralised', () => {
  assert.equal(neutraliseCell('=HYPERLINK("http://evil")'), `'=HYPERLINK("http://evil")`);
  assert.equal(neutraliseCell('+1'), "'+1");
  assert.equal(neutraliseCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(neutraliseCell('A calm sunrise'), 'A calm sunrise');
});

test('journal: a torn tail is cut off on open, so the next events never bury it in the middle', async (t) => {
  const { mkdtemp, mkdir, writeFile, readFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { Journal } = await import('../src/state/journal.js');
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-journal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, '.clipmill'));
  const good = JSON.stringify({ at: '2026-11-23T00:00:00Z', key: 'm/a', request: 'h', type: 'submitting', attempt: 1 });
  await writeFile(path.join(dir, '.clipmill', 'journal.jsonl'), `${good}\n{"at":"2026-11-23T00:00:01Z","key":"m/a","req`);
  const journal = await Journal.open(dir);
  await journal.append({ type: 'submitted', key: 'm/a', request: 'h', runId: 'run_1' });
  await journal.close();
  const text = await readFile(path.join(dir, '.clipmill', 'journal.jsonl'), 'utf8');
  assert.equal(text.split('\n').filter(Boolean).length, 2, text);
  assert.equal((await Journal.read(dir)).get('m/a')?.runId, 'run_1');
});
