import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { runManifests } from '../src/commands/run.js';
import { ROOT, envFor, fastPipeline, startSimulator, tempDir, workspace, write } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where the screenshot is kept for CI to pick up (printed in the log). */
const ARTIFACTS = path.join(ROOT, 'artifacts');

/** What the page reports for each <video>: its source, the duration the report expects and the one the browser read, and a media error code. */
interface VideoCheck {
  src: string;
  expected: number;
  duration: number;
  error: string | null;
}

// CI installs Debian's chromium (.ci/run); a developer machine without it skips with the reason.
const skip = !existsSync(CHROMIUM) && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)` : false;

test(
  'report.html from a real run: every video loads with the right duration, thumbnails load, download links are real files, sections fold, the filters work, failed rows show their reason',
  { skip, timeout: 60_000 },
  async (t) => {
    const simulator = await startSimulator(t);
    const dir = await tempDir(t);
    const extra = await workspace(t);
    await write(extra, 'broken.yaml', 'rows:\n  - {id: unreachable, image: "https://cdn.example.invalid/x.jpg", prompt: "never <b>bold</b>", duration: 4}\n');
    const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
    const out = path.join(dir, 'out');
    const result = await runManifests({
      manifests: [path.join(ROOT, 'manifests'), path.join(extra, 'broken.yaml')],
      pipelineFile,
      outDir: out,
      env: envFor(simulator),
      print: () => {},
      logLine: () => {},
    });
    assert.equal(result.exitCode, 1);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    t.after(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(path.join(out, 'report.html')).href);

    // Passed as text: tsx would wrap a function's inner helpers in a __name() the page does not have.
    const videos = await page.evaluate<VideoCheck[]>(`Promise.all([...document.querySelectorAll('video')].map((video) => new Promise((resolve) => {
    const done = () => resolve({ src: video.currentSrc, expected: Number(video.dataset.expectedSeconds), duration: video.duration, error: video.error ? String(video.error.code) : null });
    if (video.readyState >= 1) return done();
    video.addEventListener('loadedmetadata', done, { once: true });
    video.addEventListener('error', done, { once: true });
    video.load();
  })))`);
    assert.equal(videos.length, 10, 'one player per finished video');
    for (const v of videos) {
      assert.equal(v.error, null, `${v.src} failed to load`);
      assert.ok(Math.abs(v.duration - v.expected) < 0.1, `${v.src}: ${v.duration}s, expected ${v.expected}s`);
    }
    // The one remote input image (no query string) is shown by its URL; everything else is a file beside the report.
    const remote = 'https://cdn.example.invalid/x.jpg';
    assert.ok(
      requests.every((u) => u.startsWith('file://') || u === remote),
      `the page needs no network: ${requests.filter((u) => !u.startsWith('file://')).join(', ')}`,
    );

    // Passed as text, as above; a lazy thumbnail is asked to load now.
    const thumbs = await page.evaluate<
      { src: string; width: number }[]
    >(`Promise.all([...document.querySelectorAll('img.thumb')].map((img) => new Promise((resolve) => {
    const done = () => resolve({ src: img.currentSrc || img.src, width: img.naturalWidth });
    img.addEventListener('load', done, { once: true });
    img.addEventListener('error', done, { once: true });
    img.loading = 'eager';
    // Already loaded, or already failed (naturalWidth 0): no event will come, so answer now.
    if (img.complete) done();
  })))`);
    assert.equal(thumbs.length, 11, 'a thumbnail beside every row');
    for (const thumb of thumbs.filter((th) => th.src !== remote)) assert.ok(thumb.width > 0, `${thumb.src}: the input image loads`);
    assert.equal(thumbs.filter((th) => th.src === remote).length, 1);

    const downloads = await page.evaluate<{ href: string; name: string }[]>(
      `[...document.querySelectorAll('.card a.download, .downloads a')].map((a) => ({ href: a.href, name: a.getAttribute('download') }))`,
    );
    assert.equal(downloads.length, 20, 'a download link on each card, and each in the download-all list');
    for (const link of downloads) {
      assert.ok(existsSync(fileURLToPath(link.href)), `${link.href} is a real file`);
      assert.match(link.name, /^[a-z-]+-[a-z0-9-]+\.mp4$/, 'saved as <manifest>-<id>.mp4');
    }

    const section = 'details.manifest[data-manifest="store-openings"]';
    assert.equal(await page.isVisible(`${section} .card`), true);
    await page.click(`${section} > summary`);
    assert.equal(await page.evaluate(`document.querySelector('${section}').open`), false, 'a manifest section folds');
    assert.equal(await page.isVisible(`${section} .card`), false);
    await page.click(`${section} > summary`);

    await page.selectOption('#filter-status', 'failed');
    assert.deepEqual(await page.evaluate(`[...document.querySelectorAll('.card:not([hidden])')].map((c) => c.dataset.status)`), ['failed']);
    assert.match((await page.textContent('.card:not([hidden]) .error')) ?? '', /VALIDATION_ERROR.*could not be downloaded/);
    assert.match((await page.textContent('.card:not([hidden]) .prompt')) ?? '', /never <b>bold<\/b>/, 'a prompt is shown as text, never as markup');
    await page.selectOption('#filter-status', '');
    await page.selectOption('#filter-manifest', 'store-openings');
    assert.equal(await page.textContent('#shown'), '2 shown');
    await page.selectOption('#filter-manifest', '');

    await mkdir(ARTIFACTS, { recursive: true });
    const screenshot = path.join(ARTIFACTS, 'report.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    t.diagnostic(`screenshot: ${screenshot}`);
    process.stdout.write(`# report.html screenshot saved at ${screenshot}\n`);
  },
);
