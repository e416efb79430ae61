import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { acquireLock, LockedError, LockLostError } from '../src/state/lock.js';
import { tempDir } from './helpers.js';

const CONTENDER = fileURLToPath(new URL('./fixtures/lock-contender.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await once(child, 'exit');
  return child.pid!;
}

async function lockFileIn(t: TestContext): Promise<{ out: string; file: string }> {
  const out = await tempDir(t);
  const file = path.join(out, '.clipmill', 'lock');
  await mkdir(path.dirname(file), { recursive: true });
  return { out, file };
}

/** Sets a file's mtime `seconds` into the past (negative: into the future): a lock whose heartbeat stopped that long ago. */
async function age(file: string, seconds: number): Promise<void> {
  const then = new Date(Date.now() - seconds * 1000);
  await utimes(file, then, then);
}

interface Contender {
  child: ChildProcessWithoutNullStreams;
  next(): Promise<string>;
}

function startContender(): Contender {
  const child = spawn(process.execPath, ['--import', TSX, CONTENDER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const queue: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const resolve = waiting.shift();
    if (resolve) resolve(line);
    else queue.push(line);
  });
  child.on('exit', (code) => {
    for (const resolve of waiting.splice(0)) resolve(`exited ${code}: ${stderr}`);
  });
  return {
    child,
    next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve))),
  };
}

test("8 processes trying at the same moment: exactly one takes the folder, over a dead pid's lock, an empty lock, or none (10 rounds each)", async (t) => {
  const contenders = Array.from({ length: 8 }, startContender);
  t.after(() => {
    for (const c of contenders) c.child.kill();
  });
  for (const c of contenders) assert.equal(await c.next(), 'ready');
  const pids = new Set(contenders.map((c) => c.child.pid));

  const scenarios: { name: string; prepare: (file: string) => Promise<void> }[] = [
    {
      name: 'lock of a dead pid',
      prepare: async (file) =>
        writeFile(file, JSON.stringify({ pid: await deadPid(), host: hostname(), started_at: '2026-11-23T01:00:00Z', token: 'aaaaaaaaaaaaaaaa' })),
    },
    {
      name: 'empty lock',
      prepare: async (file) => {
        await writeFile(file, '');
        await age(file, 10);
      },
    },
    { name: 'no lock', prepare: async () => {} },
  ];
  const rounds = 10;
  for (const scenario of scenarios) {
    for (let round = 0; round < rounds; round++) {
      const { out, file } = await lockFileIn(t);
      await scenario.prepare(file);
      for (const c of contenders) c.child.stdin.write(`go ${out}\n`);
      const results = await Promise.all(contenders.map(async (c) => c.next()));
      // Every contender has answered while the winner still holds: now it releases.
      for (const c of contenders) c.child.stdin.write('release\n');
      const answers = await Promise.all(contenders.map(async (c, i) => [results[i], await c.next()]));
      for (const [, done] of answers) assert.equal(done, 'done', `${scenario.name}, round ${round}: ${results.join(' | ')}`);
      const got = results.filter((r) => r.startsWith('got '));
      assert.equal(got.length, 1, `${scenario.name}, round ${round}: ${results.join(' | ')}`);
      const winner = Number(got[0]!.slice(4));
      assert.ok(pids.has(winner));
      // Every other process was refused, naming the winner as the holder.
      assert.deepEqual(
        results.filter((r) => !r.startsWith('got ')),
        Array(7).fill(`locked ${winner}`),
        `${scenario.name}, round ${round}`,
      );
      await assert.rejects(readFile(file), /ENOENT/, 'the winner released the lock');
      const left = (await readdir(path.dirname(file))).filter((name) => name.startsWith('lock'));
      assert.deepEqual(left, [], `no temp or claim files are left: ${left.join(', ')}`);
    }
  }
});

/** Field 22 (`starttime`) of /proc/<pid>/stat, read independently of src/lock.ts. */
async function procStart(pid: number): Promise<string> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19]!;
}

const NO_PROC = !existsSync('/proc/self/stat') && 'needs Linux /proc';

test(
  'a live run on this host keeps its lock however old its heartbeat: a suspended holder whose lock mtime is an hour old is refused, naming its pid',
  { skip: NO_PROC },
  async (t) => {
    const { out, file } = await lockFileIn(t);
    const holder = startContender();
    t.after(() => holder.child.kill('SIGKILL'));
    assert.equal(await holder.next(), 'ready');
    holder.child.stdin.write(`go ${out}\n`);
    const pid = holder.child.pid!;
    assert.equal(await holder.next(), `got ${pid}`);
    const record = JSON.parse(await readFile(file, 'utf8')) as { pid: number; pid_start?: string };
    assert.equal(record.pid, pid);
    assert.equal(record.pid_start, await procStart(pid), "the lock records the holder's start time");

    // Ctrl-Z: the holder stops heartbeating; its lock's mtime is far older than any staleMs.
    holder.child.kill('SIGSTOP');
    await age(file, 3600);
    const options = { heartbeatMs: 50, staleMs: 300 };
    const refused = (e: unknown) => e instanceof LockedError && e.holder.pid === pid && e.message.includes(`pid ${pid} on ${hostname()}`);
    await assert.rejects(acquireLock(out, options), refused);
    await sleep(400); // longer than staleMs while it stays stopped
    await assert.rejects(acquireLock(out, options), refused);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid, pid, "the lock is still the holder's");

    holder.child.kill('SIGCONT');
    holder.child.stdin.write('release\n');
    assert.equal(await holder.next(), 'done', 'the resumed holder finished and released its own lock');
    await assert.rejects(readFile(file), /ENOENT/);
  },
);

test(
  'on this host a lock whose pid is alive but whose start time differs (a reused pid) is taken over; one with the same start time is not',
  { skip: NO_PROC },
  async (t) => {
    const { out, file } = await lockFileIn(t);
    const mine = await procStart(process.pid);
    const base = { pid: process.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z', token: 'bbbbbbbbbbbbbbbb' };
    // Our own live pid with our own start time: never stale, however old the heartbeat.
    await writeFile(file, JSON.stringify({ ...base, pid_start: mine }));
    await age(file, 3600);
    await assert.rejects(acquireLock(out), (e: unknown) => e instanceof LockedError && e.holder.pid === process.pid);

    // The same live pid recorded with another start time: the run that wrote it is gone and its pid was given to us.
    await writeFile(file, JSON.stringify({ ...base, pid_start: String(Number(mine) + 1) }));
    const lock = await acquireLock(out);
    assert.deepEqual(lock.tookOverFrom, { pid: process.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z' });
    const record = JSON.parse(await readFile(file, 'utf8')) as { pid: number; pid_start: string; token: string };
    assert.equal(record.pid, process.pid);
    assert.equal(record.pid_start, mine);
    assert.match(record.token, /^[0-9a-f]{32}$/);
    // Now held with our start time: a second acquisition (even by the same pid) is refused.
    await assert.rejects(acquireLock(out), LockedError);
    await lock.release();
    await assert.rejects(readFile(file), /ENOENT/);
  },
);

test('on this host a lock of an older format (no start time) goes by its heartbeat: refused while fresh, taken over once 30 s old', async (t) => {
  const { out, file } = await lockFileIn(t);
  await writeFile(file, JSON.stringify({ pid: process.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z', token: 'bbbbbbbbbbbbbbbb' }));
  await assert.rejects(
    acquireLock(out),
    (e: unknown) => e instanceof LockedError && e.holder.pid === process.pid && e.message.includes(`pid ${process.pid} on ${hostname()}`),
  );
  await age(file, 31); // past the default stale threshold of 30 s
  const lock = await acquireLock(out);
  assert.deepEqual(lock.tookOverFrom, { pid: process.pid, host: hostname(), started_at: '2026-11-23T01:00:00Z' });
  await lock.release();
});

const ELSEWHERE = { pid: 1, host: 'elsewhere.example', started_at: '2026-11-23T01:00:00Z', token: 'cccccccccccccccc' };

test("another host's lock is never judged by our clock: refused at once when the caller will not wait, whether its mtime is far in the past or the future", async (t) => {
  const { out, file } = await lockFileIn(t);
  await writeFile(file, JSON.stringify(ELSEWHERE));
  for (const seconds of [3600, -3600]) {
    await age(file, seconds);
    const started = performance.now();
    await assert.rejects(
      acquireLock(out, { waitForOtherHostMs: 0 }),
      (e: unknown) => e instanceof LockedError && e.message.includes('pid 1 on elsewhere.example'),
    );
    assert.ok(performance.now() - started < 1_000, 'refused without waiting');
  }
});

test("another host's lock whose mtime is far in the future but stands still while watched is taken over after staleMs", async (t) => {
  const { out, file } = await lockFileIn(t);
  await writeFile(file, JSON.stringify(ELSEWHERE));
  await age(file, -3600);
  const started = performance.now();
  const lock = await acquireLock(out, { heartbeatMs: 50, staleMs: 400, watchIntervalMs: 20 });
  assert.ok(performance.now() - started >= 400, 'watched it for staleMs first');
  assert.deepEqual(lock.tookOverFrom, { pid: 1, host: 'elsewhere.example', started_at: '2026-11-23T01:00:00Z' });
  assert.equal((JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid, process.pid);
  await lock.release();
  assert.deepEqual(
    (await readdir(path.dirname(file))).filter((name) => name.startsWith('lock')),
    [],
  );
});

test("another host's lock whose mtime keeps changing while watched is refused at once, and left alone", async (t) => {
  const { out, file } = await lockFileIn(t);
  const text = JSON.stringify(ELSEWHERE);
  await writeFile(file, text);
  // The other host's heartbeat, from its own clock an hour ahead: a real process touching the lock every 5 ms.
  const toucher = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('node:fs'); let n = 0; const beat = () => { const t = new Date(Date.now() + 3600e3 + 1000 * n++); fs.utimesSync(process.argv[1], t, t); }; beat(); console.log('ready'); setInterval(beat, 5);`,
      file,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.after(() => toucher.kill());
  await once(toucher.stdout, 'data');
  const started = performance.now();
  await assert.rejects(
    acquireLock(out, { heartbeatMs: 50, staleMs: 1_000, watchIntervalMs: 20 }),
    (e: unknown) => e instanceof LockedError && e.holder.pid === 1 && e.holder.host === 'elsewhere.example',
  );
  assert.ok(performance.now() - started < 1_000, 'refused as soon as it changed, before staleMs');
  assert.equal(await readFile(file, 'utf8'), text, 'the lock is untouched');
});

test('a claim left by a crashed taker on another host is passed over once it stands still for claimStaleMs, even with an mtime in the future', async (t) => {
  const { out, file } = await lockFileIn(t);
  const dir = path.dirname(file);
  const stale = { pid: await deadPid(), host: hostname(), started_at: '2026-11-23T01:00:00Z', token: '9999999999999999' };
  await writeFile(file, JSON.stringify(stale));
  const claim = path.join(dir, 'lock.takeover.9999999999999999.0');
  await writeFile(claim, JSON.stringify({ ...ELSEWHERE, token: 'abababababababab' }));
  await age(claim, -3600);
  const started = performance.now();
  const lock = await acquireLock(out, { claimStaleMs: 200 });
  assert.ok(performance.now() - started >= 200, 'watched the claim first');
  assert.equal(lock.tookOverFrom?.pid, stale.pid);
  assert.deepEqual(
    (await readdir(dir)).filter((name) => name.startsWith('lock')),
    ['lock'],
    'the claims are cleaned up',
  );
  await lock.release();
});

test("the heartbeat refreshes the lock's mtime, and aborts `lost` when another token is in the file; release leaves that lock alone", async (t) => {
  const { out, file } = await lockFileIn(t);
  const lock = await acquireLock(out, { heartbeatMs: 50, staleMs: 1_000 });
  await age(file, 600);
  const deadline = Date.now() + 5_000;
  while ((await stat(file)).mtimeMs < Date.now() - 60_000) {
    assert.ok(Date.now() < deadline, 'the heartbeat refreshed the mtime');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(lock.lost.aborted, false);

  const thief = `${JSON.stringify({ pid: 4242, host: 'elsewhere.example', started_at: '2026-11-23T02:00:00Z', token: 'dddddddddddddddd' })}\n`;
  // Written whole and renamed into place, as a real run writes its lock: the heartbeat never reads a half-written file.
  await writeFile(`${file}.thief`, thief);
  await rename(`${file}.thief`, file);
  // The heartbeat timer is unref'd (it never keeps a process alive), so the test polls with a timer of its own.
  while (!lock.lost.aborted) {
    assert.ok(Date.now() < deadline, 'the heartbeat noticed the stolen lock');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(lock.lost.reason instanceof LockLostError);
  assert.match((lock.lost.reason as Error).message, /pid 4242 on elsewhere\.example/);
  await lock.release();
  assert.equal(await readFile(file, 'utf8'), thief, 'release removes only a lock holding our token');
});

test('an unreadable lock younger than the grace period is waited for, then taken over', async (t) => {
  const { out, file } = await lockFileIn(t);
  await writeFile(file, '{"pid": 12');
  const started = Date.now();
  const lock = await acquireLock(out, { graceMs: 300 });
  assert.ok(Date.now() - started >= 250, 'waited for the grace period');
  assert.deepEqual(lock.tookOverFrom, { pid: 0, host: hostname(), started_at: 'unknown' });
  await lock.release();
});

test('a takeover claim left by a crashed taker does not block the takeover, whether its pid is dead or it is old', async (t) => {
  const { out, file } = await lockFileIn(t);
  const dir = path.dirname(file);
  const stale = { pid: await deadPid(), host: hostname(), started_at: '2026-11-23T01:00:00Z', token: 'eeeeeeeeeeeeeeee' };
  await writeFile(file, JSON.stringify(stale));
  // Claim 0: a taker that died holding it. Claim 1: a live pid (ours) whose claim is older than claimStaleMs.
  await writeFile(path.join(dir, 'lock.takeover.eeeeeeeeeeeeeeee.0'), JSON.stringify({ ...stale, pid: await deadPid(), token: 'f0f0f0f0f0f0f0f0' }));
  await writeFile(path.join(dir, 'lock.takeover.eeeeeeeeeeeeeeee.1'), JSON.stringify({ ...stale, pid: process.pid, token: 'f1f1f1f1f1f1f1f1' }));
  await age(path.join(dir, 'lock.takeover.eeeeeeeeeeeeeeee.1'), 10);
  const lock = await acquireLock(out);
  assert.equal(lock.tookOverFrom?.pid, stale.pid);
  assert.deepEqual(
    (await readdir(dir)).filter((name) => name.startsWith('lock')),
    ['lock'],
    'the claims are cleaned up',
  );
  await lock.release();
});

test('a fresh claim by a live taker is respected: a second taker waits for it rather than replacing the lock too', async (t) => {
  const { out, file } = await lockFileIn(t);
  const dir = path.dirname(file);
  await writeFile(file, JSON.stringify({ pid: await deadPid(), host: hostname(), started_at: '2026-11-23T01:00:00Z', token: '1234123412341234' }));
  const claim = path.join(dir, 'lock.takeover.1234123412341234.0');
  await writeFile(claim, JSON.stringify({ pid: process.pid, host: hostname(), started_at: new Date().toISOString(), token: '5678567856785678' }));
  // The claim holder never finishes here, so the waiting taker passes over it once it is older than claimStaleMs.
  const started = Date.now();
  const lock = await acquireLock(out, { claimStaleMs: 300 });
  assert.ok(Date.now() - started >= 250, 'waited for the live claim');
  assert.equal(lock.tookOverFrom?.pid !== undefined, true);
  await lock.release();
});
