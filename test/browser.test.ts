import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
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
  'report.html from a real run: every video loads with the right duration, the filters work, failed rows show their reason',
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
    assert.ok(
      requests.every((u) => u.startsWith('file://')),
      `the page needs no network: ${requests.filter((u) => !u.startsWith('file://')).join(', ')}`,
    );

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
