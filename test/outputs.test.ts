import assert from 'node:assert/strict';
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { judgeByStat } from '../src/state/outputs.js';
import { nightFolder, rowsYaml } from './helpers.js';

test('a recorded video is judged by its size and modification time first; only a disagreement (or an older record) reads it again', () => {
  const output = { path: 'm/a.mp4', bytes: 1000, sha256: 'ab', seconds: 3, mtimeMs: 1_764_000_000_123.25 };
  assert.equal(judgeByStat(output, { size: 1000, mtimeMs: 1_764_000_000_123.25 }), 'intact');
  assert.equal(judgeByStat(output, undefined), 'damaged', 'gone');
  assert.equal(judgeByStat(output, { size: 999, mtimeMs: output.mtimeMs }), 'damaged', 'another size');
  assert.equal(judgeByStat(output, { size: 1000, mtimeMs: output.mtimeMs + 1 }), 'read', 'touched since: read it to know');
  assert.equal(judgeByStat({ path: 'm/a.mp4', bytes: 1000, sha256: 'ab', seconds: 3 }, { size: 1000, mtimeMs: 5 }), 'read', 'journaled before mtimes were');
});

test('a rerun trusts videos whose size and mtime are as recorded, reads again those touched since, re-downloads the changed ones; --verify reads them all', async (t) => {
  const { simulator, out, night } = await nightFolder(t, rowsYaml(3));
  const run = (verify = false) => night({ verify });
  assert.equal((await run()).exitCode, 0);
  const video = (id: string) => path.join(out, 'm', `${id}.mp4`);

  // r0: touched (same bytes, new mtime): read again, found intact, not downloaded again.
  const r0 = await stat(video('r0'));
  await utimes(video('r0'), r0.atime, new Date(r0.mtimeMs + 60_000));
  // r1: bytes changed, same size, new mtime: read again, found changed, downloaded again from the same run.
  const r1 = await readFile(video('r1'));
  await writeFile(video('r1'), Buffer.alloc(r1.length, 7));
  // r2: bytes changed, same size, and its mtime put back: only --verify can tell.
  const r2 = await stat(video('r2'));
  const r2Bytes = await readFile(video('r2'));
  await writeFile(video('r2'), Buffer.alloc(r2Bytes.length, 9));
  await utimes(video('r2'), r2.atime, r2.mtimeMs / 1000);

  const rerun = await run();
  assert.equal(rerun.exitCode, 0);
  assert.deepEqual(
    rerun.plan?.items.map((i) => `${i.key}:${i.action}`),
    ['m/r0:done', 'm/r1:download', 'm/r2:done'],
  );
  const verified = await run(true);
  assert.deepEqual(
    verified.plan?.items.map((i) => `${i.key}:${i.action}`),
    ['m/r0:done', 'm/r1:done', 'm/r2:download'],
  );
  assert.deepEqual(await readFile(video('r2')), r2Bytes, 'the video fetched again from the same run');
  assert.equal(simulator.created.length, 3, 'nothing generated again');
});
