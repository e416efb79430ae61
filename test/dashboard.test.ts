import assert from 'node:assert/strict';
import test from 'node:test';
import { Queue } from 'bullmq';
import { startDashboard } from '../src/fleet/dashboard.js';
import { queueNames } from '../src/fleet/queue.js';
import { redisOptionsOf } from '../src/fleet/redis.js';
import { startRedis } from './redis-server.js';

function basic(user: string, password: string): Record<string, string> {
  return { Authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

interface QueuesAnswer {
  queues: { name: string; readOnlyMode: boolean; counts: Record<string, number> }[];
}

test('the dashboard: bull-board over both fleet queues, read-only, behind basic auth', async (t) => {
  const redis = await startRedis(t);
  const names = queueNames('dash');
  const rows = new Queue(names.rows, { connection: redisOptionsOf(redis.url) });
  t.after(() => rows.close());
  await rows.add('row', { key: 'a' }, { jobId: 'r-a' });
  await rows.add('row', { key: 'b' }, { jobId: 'r-b' });

  const password = 'correct horse battery staple';
  const dashboard = await startDashboard({ redisUrl: redis.url, queue: 'dash', host: '127.0.0.1', port: 0, password });
  t.after(() => dashboard.close());
  assert.match(dashboard.url, /^http:\/\/127\.0\.0\.1:[1-9][0-9]*\/$/);
  assert.ok(!dashboard.url.includes(password));

  const bare = await fetch(dashboard.url);
  assert.equal(bare.status, 401);
  assert.match(bare.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  await bare.body?.cancel();
  for (const [user, guess] of [
    ['clipmill', 'wrong'],
    ['clipmill', `${password}x`],
    ['admin', password],
  ] as const) {
    const wrong = await fetch(new URL('api/queues', dashboard.url), { headers: basic(user, guess) });
    assert.equal(wrong.status, 401, `${user}:${guess}`);
    await wrong.body?.cancel();
  }

  const auth = basic('clipmill', password);
  const page = await fetch(dashboard.url, { headers: auth });
  assert.equal(page.status, 200);
  const html = await page.text();
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(html, /clipmill fleet/);
  const script = /src="([^"]+\.js)"/.exec(html)?.[1];
  assert.ok(script !== undefined, 'the page loads its script');
  const asset = await fetch(new URL(script, dashboard.url), { headers: auth });
  assert.equal(asset.status, 200, `static ${script}`);
  await asset.body?.cancel();

  const api = await fetch(new URL('api/queues', dashboard.url), { headers: auth });
  assert.equal(api.status, 200);
  const { queues } = (await api.json()) as QueuesAnswer;
  const byName = new Map(queues.map((q) => [q.name, q]));
  assert.deepEqual([...byName.keys()].sort(), [names.downloads, names.rows].sort());
  assert.equal(byName.get(names.rows)?.counts.waiting, 2);
  assert.equal(byName.get(names.downloads)?.counts.waiting, 0);
  assert.ok(queues.every((q) => q.readOnlyMode));

  // Read-only holds in the API too, not only in the page: a retry must go through `clipmill enqueue`.
  const retry = await fetch(new URL(`api/queues/${names.rows}/retry/failed`, dashboard.url), { method: 'PUT', headers: auth });
  assert.equal(retry.status, 405);
  await retry.body?.cancel();
  assert.equal(await rows.getWaitingCount(), 2);
});
