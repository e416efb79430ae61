import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { chromium, type Page } from 'playwright-core';
import { parseMarks } from '../src/review/marks.js';
import { startReviewServer } from '../src/review/server.js';
import { fileId } from '../src/review/view.js';
import { imageLink } from '../src/report/row-media.js';
import { fastPipeline, nightFolder, rowsYaml, startCli, tempDir, write } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// As test/browser.test.ts: CI installs Debian's chromium; a developer machine without it skips with the reason.
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

/** A raw GET, its path sent as written (fetch would resolve the dots away). */
function rawGet(base: string, rawPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    const req = request({ host: url.hostname, port: url.port, path: rawPath, headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function launch(t: { after: (fn: () => Promise<void>) => void }) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  return browser;
}

/** The printed link opened once: its key exchanged for the cookie every later request carries. */
async function enter(server: { url: string }): Promise<string> {
  const entered = await fetch(server.url, { redirect: 'manual' });
  assert.equal(entered.status, 303);
  assert.equal(entered.headers.get('location'), '/');
  const cookie = entered.headers.get('set-cookie') ?? '';
  assert.match(cookie, /^clipmill_review_\d+=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/$/);
  return cookie.split(';')[0]!;
}

/** The page as a browser gets it, and a mark posted from it (with the page's token and the browser's cookie). */
async function openReview(server: { url: string }, cookie?: string) {
  const session = cookie ?? (await enter(server));
  const html = await (await fetch(new URL('/', server.url), { headers: { cookie: session } })).text();
  const token = /name="clipmill-token" content="([^"]+)"/.exec(html)?.[1] ?? '';
  const requestOf = (key: string) => new RegExp(`data-key="${key}" data-request="([0-9a-f]{16})"`).exec(html)?.[1];
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(new URL('/api/marks', server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-clipmill-token': token, cookie: session, ...headers },
      body: JSON.stringify(body),
    });
  return { html, token, requestOf, post, cookie: session };
}

const box = (key: string) => `.review[data-key="${key}"]`;
const verdictOf = (page: Page, key: string) => page.textContent(`${box(key)} .verdict`);

test('a report never links a signed image: a remote image only by a URL with no query string or credentials', () => {
  assert.equal(imageLink({ kind: 'url', url: 'https://cdn.example.com/a.jpg' }, '/out'), 'https://cdn.example.com/a.jpg');
  assert.equal(imageLink({ kind: 'url', url: 'https://cdn.example.com/a.jpg?X-Amz-Signature=abc' }, '/out'), null);
  assert.equal(imageLink({ kind: 'url', url: 'https://user:secret@cdn.example.com/a.jpg' }, '/out'), null);
  assert.equal(imageLink({ kind: 'url', url: 'data:image/png;base64,AAAA' }, '/out'), null);
  assert.equal(imageLink({ kind: 'file', path: '/work/images/a.jpg', written: 'images/a.jpg' }, '/work/out'), '../images/a.jpg');
  assert.equal(imageLink({ kind: 'file', path: '/work/images/a.jpg', written: 'images/a.jpg' }, 's3://bucket/night'), null);
});

test(
  'clipmill review in Chromium: approve one video, redo another with a note, reload: both marks show and review.json holds them',
  { skip, timeout: 60_000 },
  async (t) => {
    const { night, out } = await nightFolder(t, rowsYaml(3));
    assert.equal((await night()).exitCode, 0);
    const server = await startReviewServer(out, 0);
    t.after(() => server.close());

    const page = await (await launch(t)).newPage();
    await page.goto(server.url);
    assert.equal(page.url(), new URL('/', server.url).href, 'the one-time key leaves the address bar');
    assert.equal(await page.evaluate('document.cookie'), '', 'the cookie is HttpOnly: no script of the page reads it');
    assert.equal(await verdictOf(page, 'm/r0'), 'not reviewed');
    const loaded = await page.evaluate<number[]>(`Promise.all([...document.querySelectorAll('img.thumb')].map((img) => new Promise((resolve) => {
    img.addEventListener('load', () => resolve(img.naturalWidth), { once: true });
    img.addEventListener('error', () => resolve(0), { once: true });
    img.loading = 'eager';
    // Already loaded, or already failed (naturalWidth 0): no event will come, so answer now.
    if (img.complete) resolve(img.naturalWidth);
  })))`);
    assert.deepEqual(
      loaded.map((w) => w > 0),
      [true, true, true],
      'the thumbnails are served',
    );

    await page.click(`${box('m/r0')} button[data-verdict="approved"]`);
    await page.waitForSelector(`${box('m/r0')}[data-verdict="approved"]`);
    await page.click(`${box('m/r1')} button[data-verdict="redo"]`);
    assert.equal(await page.textContent(`${box('m/r1')} .review-error`), 'write what to change first', 'a redo needs a note');
    await page.fill(`${box('m/r1')} textarea`, 'make the sky bluer');
    await page.click(`${box('m/r1')} button[data-verdict="redo"]`);
    await page.waitForSelector(`${box('m/r1')}[data-verdict="redo"]`);

    await page.reload();
    assert.equal(await verdictOf(page, 'm/r0'), 'approved');
    assert.equal(await verdictOf(page, 'm/r1'), 'redo: make the sky bluer');
    assert.equal(await page.inputValue(`${box('m/r1')} textarea`), 'make the sky bluer');
    assert.equal(await verdictOf(page, 'm/r2'), 'not reviewed');

    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { rows: { id: string; request: string }[] };
    const requestOf = (id: string) => report.rows.find((r) => r.id === id)?.request;
    const marks = parseMarks(await readFile(path.join(out, 'review.json'), 'utf8'), 'review.json');
    assert.deepEqual(
      marks.map((m) => [m.key, m.request, m.verdict, m.note]),
      [
        ['m/r0', requestOf('r0'), 'approved', undefined],
        ['m/r1', requestOf('r1'), 'redo', 'make the sky bluer'],
      ],
    );

    // The next run makes r1 again; a click on the stale page is refused and the page reloads itself: the new version, unmarked.
    const firstVideo = await stat(path.join(out, 'm', 'r1.mp4'));
    assert.equal((await night()).exitCode, 0);
    const reloaded = page.waitForEvent('load');
    await page.click(`${box('m/r1')} button[data-verdict="approved"]`);
    await reloaded;
    assert.equal(await verdictOf(page, 'm/r1'), 'not reviewed');
    assert.equal(parseMarks(await readFile(path.join(out, 'review.json'), 'utf8'), 'review.json')[1]?.verdict, 'redo', 'the stale approval was not saved');
    assert.match((await page.textContent(`.card[data-key="m/r1"] .prompt`)) ?? '', /row 1\s+make the sky bluer/);
    await page.click(`.card[data-key="m/r1"] details.earlier > summary`);
    const earlier = await page.evaluate<number>(`new Promise((resolve) => {
    const video = document.querySelector('.card[data-key="m/r1"] details.earlier video');
    video.addEventListener('loadedmetadata', () => resolve(video.duration), { once: true });
    video.addEventListener('error', () => resolve(-1), { once: true });
    video.load();
  })`);
    assert.ok(Math.abs(earlier - 3) < 0.1, `the earlier version plays (${earlier} s)`);
    // Videos of one duration are byte-identical in the simulator: the earlier one is told apart by its file.
    const earlierOutput = (JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { rows: { id: string; earlier_output: string }[] }).rows.find(
      (r) => r.id === 'r1',
    )?.earlier_output;
    assert.equal(
      await page.getAttribute('.card[data-key="m/r1"] details.earlier video', 'src'),
      `/files/${fileId(earlierOutput ?? '')}`,
      'the player plays the archived file',
    );
    assert.equal((await stat(path.join(out, earlierOutput ?? ''))).ino, firstVideo.ino, 'which is the very file the first run downloaded');
  },
);

test('the review server: only the browser that opened the printed link (once) gets in; marks need the page token, bad marks get 4xx, only the files the report names are served', async (t) => {
  const { night, out } = await nightFolder(t, rowsYaml(2));
  await night();
  const server = await startReviewServer(out, 0);
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/\?key=[\w-]{32}$/);
  const root = new URL('/', server.url).href;
  const denied = await fetch(root);
  assert.equal(denied.status, 401, 'no cookie: the page and its token are not handed out');
  assert.match(((await denied.json()) as { error: string }).error, /open the link clipmill review printed \(http:\/\/127\.0\.0\.1:\d+\/\?key=…\)/);
  assert.equal((await fetch(`${root}?key=wrong`, { redirect: 'manual' })).status, 401, 'a wrong key');
  const cookie = await enter(server);
  assert.equal((await fetch(server.url, { redirect: 'manual' })).status, 401, 'the link works once: another browser gets nothing');
  assert.equal((await fetch(server.url, { redirect: 'manual', headers: { cookie } })).status, 303, 'the browser that opened it may open it again');
  assert.equal((await fetch(root, { headers: { cookie: `${cookie}x` } })).status, 401, 'a wrong cookie');
  const { html, token, post } = await openReview(server, cookie);
  const request = /data-key="m\/r0" data-request="([0-9a-f]{16})"/.exec(html)?.[1];
  assert.ok(token.length >= 32 && request);
  assert.equal((await fetch(new URL('/api/marks', server.url))).status, 401, 'the marks API needs the cookie');
  const good = { key: 'm/r0', request, verdict: 'approved' };

  assert.equal((await post(good, { 'x-clipmill-token': '' })).status, 403, 'no token: refused');
  assert.equal((await post(good, { 'x-clipmill-token': `${token.slice(1)}x` })).status, 403, 'a wrong token: refused');
  assert.equal((await post(good, { origin: 'https://evil.example' })).status, 403, 'another site: refused');
  assert.equal((await post(good, { 'content-type': 'text/plain' })).status, 415);
  assert.equal((await post({ ...good, verdict: 'maybe' })).status, 400);
  assert.equal((await post({ ...good, verdict: 'redo', note: ' ' })).status, 400, 'a redo needs a note');
  assert.equal((await post({ ...good, verdict: 'redo', note: 'x'.repeat(501) })).status, 400, 'a note is capped');
  assert.equal((await post({ ...good, key: 'm/nope' })).status, 400);
  assert.equal((await post({ ...good, request: '0123456789abcdef' })).status, 409, 'a mark for a version the page no longer shows');
  assert.equal(existsSync(path.join(out, 'review.json')), false, 'nothing refused was saved');
  const saved = await post({ ...good, verdict: 'redo', note: 'warmer light' });
  assert.equal(saved.status, 200);
  assert.equal(((await saved.json()) as { mark: { note: string } }).mark.note, 'warmer light');

  assert.equal((await post(good, { cookie: '' })).status, 401, 'a mark without the cookie');
  for (const hidden of ['\u200b', '\u202e', '\u0007'])
    assert.equal((await post({ ...good, verdict: 'redo', note: `warmer${hidden} light` })).status, 400, `an invisible ${JSON.stringify(hidden)} is refused`);
  const video = /<video[^>]+src="(\/files\/[0-9a-f]+)"/.exec(html)?.[1] ?? '';
  assert.equal((await fetch(new URL(video, server.url))).status, 401, 'the videos need the cookie');
  const played = await fetch(new URL(video, server.url), { headers: { range: 'bytes=0-99', cookie } });
  assert.equal(played.status, 206);
  assert.equal(played.headers.get('x-content-type-options'), 'nosniff');
  assert.equal((await played.arrayBuffer()).byteLength, 100);
  // An input image replaced by a symlink out of its folder is not followed out.
  const image = /<img class="thumb"[^>]+src="(\/files\/[0-9a-f]+)"/.exec(html)?.[1] ?? '';
  assert.equal((await fetch(new URL(image, server.url), { headers: { cookie } })).status, 200);
  const secret = await write(await tempDir(t), 'secret.txt', 'not for the page');
  const imageFile = path.join(path.dirname(out), 'images', 'hero-landscape.jpg');
  await rm(imageFile);
  await symlink(secret, imageFile);
  const escaped = await fetch(new URL(image, server.url), { headers: { cookie } });
  assert.equal(escaped.status, 404, 'a symlink out of the folder');
  assert.doesNotMatch(await escaped.text(), /not for the page/);
  for (const rawPath of [
    '/files/../../../../etc/passwd',
    '/files/..%2F..%2F..%2Fetc%2Fpasswd',
    '/../.clipmill/journal.jsonl',
    '/m/r0.mp4',
    '/files/0123456789abcdef01234567',
  ])
    assert.equal((await rawGet(server.url, rawPath, { cookie })).status, 404, rawPath);
  assert.equal((await rawGet(server.url, '/', { host: 'evil.example' })).status, 403, 'another Host (DNS rebinding): refused');
});

test('a stale page cannot undo a redo: a mark for a version a night has replaced is refused (409) and the next night pays nothing', async (t) => {
  const { simulator, night, out } = await nightFolder(t, rowsYaml(2));
  await night();
  const server = await startReviewServer(out, 0);
  t.after(() => server.close());
  const page = await openReview(server);
  const first = page.requestOf('m/r1');
  assert.equal((await page.post({ key: 'm/r1', request: first, verdict: 'redo', note: 'make the sky bluer' })).status, 200);
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3, 'the night made the new version');

  // The same tab, next morning: approving what it shows would replace the redo mark of the version the night moved past.
  const stale = await page.post({ key: 'm/r1', request: first, verdict: 'approved' });
  assert.equal(stale.status, 409);
  assert.match(((await stale.json()) as { error: string }).error, /replaced since the page was loaded: reload/);
  const marks = parseMarks(await readFile(path.join(out, 'review.json'), 'utf8'), 'review.json');
  assert.deepEqual(
    marks.map((m) => [m.key, m.verdict]),
    [['m/r1', 'redo']],
    'review.json is unchanged',
  );
  assert.equal((await night()).exitCode, 0);
  assert.equal(simulator.created.length, 3, 'nothing is paid again');
});

test('a row whose run may still be billed cannot be redone from the page: a timed-out run shows why, a redo is refused (400) until it is settled', async (t) => {
  const { simulator, night, out, dir } = await nightFolder(t, rowsYaml(1), { simulator: { latency_ms: 300 } });
  await write(dir, 'pipeline.yaml', fastPipeline().replace('job_timeout: 30s', 'job_timeout: 100ms'));
  await night();
  const request = (JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { rows: { request: string }[] }).rows[0]!.request;
  const server = await startReviewServer(out, 0);
  t.after(() => server.close());
  const page = await openReview(server);
  assert.match(page.html, /class="review review-held" data-key="m\/r0"><p class="verdict">not yet: its run timed out and may still finish/);
  assert.equal(page.requestOf('m/r0'), undefined, 'no buttons');
  const refused = await page.post({ key: 'm/r0', request, verdict: 'redo', note: 'bluer' });
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { error: string }).error, /cannot be redone yet: its run timed out/);

  // Once a night has fetched the finished run, the page (reloaded) offers both verdicts, and the redo is saved.
  while (simulator.run(simulator.created[0]!.id)?.status !== 'succeeded') await new Promise((resolve) => setTimeout(resolve, 20));
  await night();
  assert.equal((await page.post({ key: 'm/r0', request, verdict: 'redo', note: 'bluer' })).status, 409, 'the stale page is told to reload');
  const reloaded = await openReview(server, page.cookie);
  assert.equal(reloaded.requestOf('m/r0'), request);
  assert.equal((await reloaded.post({ key: 'm/r0', request, verdict: 'redo', note: 'bluer' })).status, 200);
});

test('a note that would make the prompt too long is refused when it is posted (400, with what fits), not at night', async (t) => {
  const { night, out } = await nightFolder(t, `rows:\n  - {id: r0, image: images/hero-landscape.jpg, prompt: "${'x'.repeat(2400)}", duration: 3}\n`);
  await night();
  const server = await startReviewServer(out, 0);
  t.after(() => server.close());
  const page = await openReview(server);
  const request = page.requestOf('m/r0');
  assert.match(page.html, /<textarea maxlength="98"/, 'the box takes no more than fits');
  const refused = await page.post({ key: 'm/r0', request, verdict: 'redo', note: 'y'.repeat(99) });
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { error: string }).error, /2501 characters, over the model's 2500: at most 98 characters fit/);
  assert.equal((await page.post({ key: 'm/r0', request, verdict: 'redo', note: 'y'.repeat(98) })).status, 200);
});

test("two review servers on one folder: every mark of both is kept (review.json is updated under a lock, never over the other's write)", async (t) => {
  const { night, out } = await nightFolder(t, rowsYaml(12));
  await night();
  const [a, b] = await Promise.all([startReviewServer(out, 0), startReviewServer(out, 0)]);
  t.after(() => Promise.all([a.close(), b.close()]).then(() => undefined));
  const pages = await Promise.all([openReview(a), openReview(b)]);
  const keys = Array.from({ length: 12 }, (_, i) => `m/r${i}`);
  const answers = await Promise.all(
    keys.map((key, i) => {
      const page = pages[i % 2]!;
      return page.post({ key, request: page.requestOf(key), verdict: 'approved' });
    }),
  );
  assert.deepEqual(
    answers.map((r) => r.status),
    keys.map(() => 200),
  );
  const marks = parseMarks(await readFile(path.join(out, 'review.json'), 'utf8'), 'review.json');
  assert.deepEqual(marks.map((m) => m.key).sort(), [...keys].sort(), 'no mark lost');
  assert.equal(existsSync(path.join(out, 'review.json.lock')), false, 'the lock is gone');
});

test('clipmill review from the command line: prints its URL, stops cleanly on SIGTERM; a fleet folder is refused', async (t) => {
  const { night, out } = await nightFolder(t, rowsYaml(1));
  await night();
  const { child, done } = startCli(['review', '--out', out, '--port', '0']);
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (d: Buffer) => {
      text += d.toString();
      const found = /review page at (http:\/\/127\.0\.0\.1:\d+\/\?key=[\w-]+) \(open it in your browser; the link works once/.exec(text);
      if (found) resolve(found[1]!);
    });
    child.on('exit', () => reject(new Error(`exited before listening: ${text}`)));
  });
  assert.equal((await fetch(url, { redirect: 'manual' })).status, 303);
  child.kill('SIGTERM');
  const ended = await done;
  assert.equal(ended.code, 0, ended.stderr);
  assert.match(ended.stderr, /SIGTERM: stopping the review page/);

  const fleet = await tempDir(t);
  await mkdir(path.join(fleet, '.clipmill'));
  await writeFile(path.join(fleet, '.clipmill', 'FLEET.json'), JSON.stringify({ queue: 'nightly', redis: 'redis://127.0.0.1:6379' }));
  const refused = await startCli(['review', '--out', fleet]).done;
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /fleet "nightly".*clipmill report --redis/);
});
