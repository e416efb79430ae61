import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { downloadVideo } from '../src/execute/download.js';
import { ApiError } from '../src/infra/errors.js';
import { HttpClient } from '../src/infra/http.js';
import { ROOT, adminServer, tempDir } from './helpers.js';

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
  // The scripted CDN runs on loopback: allowed here as a configured host would be.
  const http = new HttpClient({ allowedHosts: new Set(['127.0.0.1']) });
  t.after(() => http.close());
  return http;
}

const CLIP = path.join(ROOT, 'src/simulator/clips/audio-07s.mp4');
const options = (http: HttpClient) => ({ http, signal: new AbortController().signal, idleTimeoutMs: 2000, deadlineMs: 10_000, maxBytes: 64 * 1024 * 1024 });

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

test('a download is capped: a lying Content-Length is refused before a byte is written, an endless body is cut at the cap, a trickle ends at the deadline', async (t) => {
  const clip = await readFile(CLIP);
  const base = await serve(t, (req, res) => {
    if (req.url === '/lying.mp4') {
      res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': String(10 * 1024 * 1024 * 1024) });
      res.write(clip.subarray(0, 1000));
      return;
    }
    if (req.url === '/endless.mp4') {
      res.writeHead(200, { 'content-type': 'video/mp4' });
      const pump = () => {
        while (res.write(Buffer.alloc(64 * 1024))) if (res.destroyed) return;
        res.once('drain', pump);
      };
      res.on('error', () => {});
      pump();
      return;
    }
    // One byte every 20 ms: never idle, never done.
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-length': clip.length });
    let i = 0;
    const timer = setInterval(() => (res.destroyed || i >= clip.length ? clearInterval(timer) : res.write(clip.subarray(i, ++i))), 20);
    res.on('close', () => clearInterval(timer));
  });
  const dir = await tempDir(t);
  const http = client(t);
  const capped = { ...options(http), maxBytes: 1024 * 1024, deadlineMs: 300 };
  await assert.rejects(
    downloadVideo(`${base}/lying.mp4`, path.join(dir, 'a.mp4'), capped),
    (e: unknown) => e instanceof ApiError && e.code === 'TOO_LARGE' && e.message.includes('announces'),
  );
  await assert.rejects(downloadVideo(`${base}/endless.mp4`, path.join(dir, 'b.mp4'), capped), (e: unknown) => e instanceof ApiError && e.code === 'TOO_LARGE');
  await assert.rejects(
    downloadVideo(`${base}/trickle.mp4`, path.join(dir, 'c.mp4'), capped),
    (e: unknown) => e instanceof ApiError && e.code === 'TIMEOUT' && e.message.includes('download_timeout'),
  );
  assert.deepEqual(await readdir(dir), [], 'nothing is left behind');
});

test('URLs a provider returns are fetched only over https on public addresses: loopback elsewhere, the metadata address and plain http are refused before any request', async (t) => {
  const admin = await adminServer(t);
  const port = Number(new URL(admin.base).port);
  const dir = await tempDir(t);
  const http = client(t); // only 127.0.0.1 is configured
  for (const url of [
    `http://127.0.0.2:${port}/v.mp4`,
    'http://169.254.169.254/latest/meta-data/',
    'https://169.254.169.254/v.mp4',
    'http://cdn.example.com/v.mp4',
    'https://[::1]/v.mp4',
    'https://10.0.0.5/v.mp4',
  ]) {
    await assert.rejects(
      downloadVideo(url, path.join(dir, 'v.mp4'), options(http)),
      (e: unknown) => e instanceof ApiError && e.code === 'URL_NOT_ALLOWED',
      url,
    );
  }
  // A name that resolves to loopback is refused at connect time, not by its spelling.
  await assert.rejects(
    downloadVideo(`https://localhost:${port}/v.mp4`, path.join(dir, 'v.mp4'), options(http)),
    (e: unknown) => e instanceof ApiError && /ENOTPUBLIC|non-public/.test(e.message),
  );
  assert.equal(admin.hits(), 0, 'the admin server received no request');
});
