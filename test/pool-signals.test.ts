import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import test from 'node:test';
import { CappedTasks, eachInPool } from '../src/infra/pool.js';
import { linkedSignal } from '../src/infra/signals.js';

test('a pool works through the items in order, never more than its width at once, pulling the next when a worker is free', async () => {
  const started: number[] = [];
  let running = 0;
  let most = 0;
  const gates = new Map<number, () => void>();
  const done = eachInPool([0, 1, 2, 3, 4, 5], 2, async (n) => {
    started.push(n);
    most = Math.max(most, ++running);
    await new Promise<void>((resolve) => gates.set(n, resolve));
    running--;
  });
  // Release the rows one at a time, always the earliest waiting: the next item starts only when a worker is free.
  for (let n = 0; n < 6; n++) {
    for (let turn = 0; turn < 10 && started.length < Math.min(n + 2, 6); turn++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(started.length, Math.min(n + 2, 6), `after ${n} finished`);
    gates.get(n)?.();
  }
  await done;
  assert.deepEqual(started, [0, 1, 2, 3, 4, 5]);
  assert.equal(most, 2);
});

test('background tasks are all waited for, and the first failure is thrown once they are', async () => {
  const tasks = new CappedTasks(2);
  const finished: string[] = [];
  tasks.add(() => Promise.reject(new Error('first')));
  tasks.add(() => Promise.resolve(void finished.push('b')));
  tasks.add(() => Promise.resolve(void finished.push('c')));
  await assert.rejects(tasks.drained(), /first/);
  assert.deepEqual(finished, ['b', 'c']);
});

test('room() waits while more than the backlog is queued, and returns once enough of it has started', async () => {
  const tasks = new CappedTasks(1);
  const gates: (() => void)[] = [];
  const gated = () => new Promise<void>((resolve) => gates.push(resolve));
  for (let i = 0; i < 4; i++) tasks.add(gated);
  // One running, three queued: room for a backlog of 1 comes after two more have started.
  let roomy = false;
  const room = tasks.room(1).then(() => (roomy = true));
  const settle = async () => {
    for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  };
  await settle();
  assert.equal(roomy, false);
  gates.shift()?.();
  await settle();
  assert.equal(roomy, false, 'two still queued');
  gates.shift()?.();
  await settle();
  assert.equal(roomy, true);
  await room;
  await tasks.room(5);
  for (let left = 2; left > 0; left--) {
    gates.shift()?.();
    await settle();
  }
  await tasks.drained();
});

test('a linked signal follows its parent until unlinked, and the parent keeps no listener afterwards', () => {
  const parent = new AbortController();
  const link = linkedSignal(parent.signal);
  assert.equal(getEventListeners(parent.signal, 'abort').length, 1);
  link.unlink();
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  parent.abort(new Error('night over'));
  assert.equal(link.signal.aborted, false);

  const other = new AbortController();
  const followed = linkedSignal(other.signal);
  other.abort(new Error('stop'));
  assert.equal((followed.signal.reason as Error).message, 'stop');

  const timed = new AbortController();
  const own = linkedSignal(timed.signal);
  own.abort(new Error('timeout'));
  assert.equal(getEventListeners(timed.signal, 'abort').length, 0, 'aborting on its own unlinks too');
  assert.equal(linkedSignal(other.signal).signal.aborted, true, 'a parent already aborted aborts at once');
});
