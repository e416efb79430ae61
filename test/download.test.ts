import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { downloadVideo } from '../src/download.js';
import { ApiError } from '../src/errors.js';
import { HttpClient } from '../src/http.js';
import { ROOT, tempDir } from './helpers.js';

/** A tiny scripted server for the odd cases a real CDN produces. */
async function serve(t: TestContext, handler: RequestListener): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(t: TestContext): HttpClient {
  const http = new HttpClient();
  t.after(() => http.close());
  return http;
}

const CLIP = path.join(ROOT, 'src/providers/simulator/clips/audio-07s.mp4');
const options = (http: HttpClient) => ({ http, signal: new AbortController().signal, idleTimeoutMs: 2000 });

test('a real MP4 is kept under its final name with size, hash and duration; no temporary file remains', async (t) => {
  const clip = await readFile(CLIP);
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clip.length });
    res.end(clip);
  });
  const dir = await tempDir(t);
  const target = path.join(dir, 'campaign', 'hero.mp4');
  const video = await downloadVideo(`${base}/v.mp4?sig=secret`, target, options(client(t)));
  assert.equal(video.bytes, clip.length);
  assert.equal(video.seconds, 7);
  assert.match(video.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(await readdir(path.join(dir, 'campaign')), ['hero.mp4']);
});

test('an HTML error page served with 200 is refused as not an MP4, and nothing is left under the final name', async (t) => {
  const page = '<!DOCTYPE html><html><body>Access denied</body></html>';
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) });
    res.end(page);
  });
  const dir = await tempDir(t);
  const error = await downloadVideo(`${base}/v.mp4`, path.join(dir, 'hero.mp4'), options(client(t))).catch((e: unknown) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, 'NOT_A_VIDEO');
  assert.match(error.message, /not an MP4 file \(no ftyp box; it starts with "<!DOCTYP"\)/);
  assert.deepEqual(await readdir(dir), []);
});

test('a body cut short (fewer bytes than content-length) is refused and leaves no file', async (t) => {
  const clip = await readFile(CLIP);
  const base = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clip.length });
    res.write(clip.subarray(0, 5000));
    setImmediate(() => res.destroy());
  });
  const dir = await tempDir(t);
  const error = await downloadVideo(`${base}/v.mp4`, path.join(dir, 'hero.mp4'), options(client(t))).catch((e: unknown) => e);
  assert.ok(error instanceof ApiError, String(error));
  assert.equal(error.kind, 'transient');
  assert.deepEqual(await readdir(dir), []);
});

test('an expired URL (403) is reported as refused, without the signature in the message', async (t) => {
  const base = await serve(t, (_req, res) => {
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
  });
  const dir = await tempDir(t);
  const error = await downloadVideo(`${base}/v.mp4?signature=topsecret`, path.join(dir, 'hero.mp4'), options(client(t))).catch((e: unknown) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.code, 'URL_REFUSED');
  assert.match(error.message, /Request has expired/);
  assert.ok(!error.message.includes('topsecret'));
});
