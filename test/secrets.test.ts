import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { adminServer, fastPipeline, runCli, scriptedProxy, startSimulator, workspace, write } from './helpers.js';

const KEY = 'rf-live-5f3c2a9e8d7b6a41';
const rows = [
  'rows:',
  '  - {id: echoed, image: images/hero-landscape.jpg, prompt: "one", duration: 3}',
  '  - {id: failing, image: images/hero-landscape.jpg, prompt: "two", duration: 4}',
].join('\n');

test('a provider that echoes the API key (in an error envelope, a failure message, a URL) never gets it into stderr, the journal or any report', async (t) => {
  const simulator = await startSimulator(t);
  let creates = 0;
  const proxy = await scriptedProxy(t, simulator.url, (method, key) => {
    if (method === 'POST' && key.endsWith('/runs') && ++creates === 1)
      return {
        status: 422,
        body: { code: 'VALIDATION_ERROR', message: `key ${KEY} may not use this input`, errors: [{ field: 'input', message: `seen with Bearer ${KEY}` }] },
      };
    if (method === 'GET' && key === 'GET /v1/runs/:id')
      return {
        status: 200,
        body: {
          id: 'x',
          status_code: 'failed',
          cost: '0',
          failure_code: 'AUTH_ECHO',
          failure_message: `fetch https://u:${KEY}@cdn.example.com/a.jpg?token=${KEY} failed for ${KEY}`,
        },
      };
    return 'pass';
  });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const result = await runCli(['run', file, '--pipeline', pipelineFile, '--out', out, '--log', 'json'], {
    env: { RUNFLOW_API_KEY: KEY, RUNFLOW_BASE_URL: proxy.url },
    cwd: dir,
  });
  assert.equal(result.code, 1, result.stderr);
  const written = await Promise.all(
    ['.clipmill/journal.jsonl', 'report.json', 'report.csv', 'report.md', 'report.html'].map((f) => readFile(path.join(out, f), 'utf8')),
  );
  for (const [name, text] of [['stderr', result.stderr], ['stdout', result.stdout], ...written.map((w, i) => [`file ${i}`, w])] as const) {
    assert.ok(!text.includes(KEY), `${name} holds the key`);
  }
  assert.match(result.stderr, /\[redacted\]/, 'the message still says what happened');
});

test('a video URL on another loopback address or the metadata address is never fetched: the paid row stays owed, the other server gets no request', async (t) => {
  const simulator = await startSimulator(t);
  const admin = await adminServer(t);
  const adminUrl = `${admin.base}/internal/admin.mp4`;
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs/:id'
      ? {
          status: 200,
          body: {
            id: 'x',
            status_code: 'succeeded',
            cost: '0.42',
            output: {
              outputs: [
                { type: 'video', url: adminUrl },
                { type: 'image', url: 'http://169.254.169.254/latest/meta-data/' },
              ],
            },
          },
        }
      : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', rows.split('\n').slice(0, 2).join('\n'));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const result = await runCli(['run', file, '--pipeline', pipelineFile, '--out', path.join(dir, 'out')], {
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    cwd: dir,
  });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /URL_NOT_ALLOWED|is not https/);
  assert.match(result.stderr, /paid for and a rerun downloads it/);
  assert.equal(admin.hits(), 0);

  // Named in allowed_hosts (a private storage endpoint of your own), the same address is fetched.
  const allowing = await write(dir, 'allowing.yaml', `${fastPipeline()}\nallowed_hosts: ["127.0.0.2"]\n`);
  await runCli(['run', file, '--pipeline', allowing, '--out', path.join(dir, 'out2')], {
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    cwd: dir,
  });
  assert.ok(admin.hits() > 0, 'an allowed host is reached');
});
