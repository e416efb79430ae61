import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import ExcelJS from 'exceljs';
import { loadManifests } from '../src/load/load.js';
import { formatProblem, sortProblems, type Problem } from '../src/load/problem.js';
import { DownloadInterrupted, downloadManifest, MANIFEST_MAX_BYTES } from '../src/load/remote.js';
import { urlSource } from '../src/load/source.js';
import type { Report } from '../src/report/build.js';
import { IMAGES_DIR, envFor, fastPipeline, runCli, silentServer, startCli, startSimulator, tempDir, write } from './helpers.js';

const noDefaults = { defaults: new Map() };
const TOKEN = 'tok-7f3a9c1e55';
const hero = path.join(IMAGES_DIR, 'hero-landscape.jpg');
const SPRING_CSV = `id,image,prompt,duration,generate_audio\nopening,${hero},Doors open,5,yes\nclose-up,${hero},The sign,3,no\n`;

async function xlsxBytes(): Promise<Buffer> {
  const book = new ExcelJS.Workbook();
  book.addWorksheet('Main').addRows([
    ['id', 'image', 'prompt', 'duration'],
    ['main-a', hero, 'x', 4],
  ]);
  book.addWorksheet('Autumn').addRows([
    ['id', 'image', 'prompt', 'duration', 'generate_audio'],
    ['leaves', hero, 'Leaves fall', 6, true],
  ]);
  book.addWorksheet('Q3 50%').addRows([
    ['id', 'image', 'prompt', 'duration'],
    ['q3-a', hero, 'Half off', 5],
  ]);
  return Buffer.from(await book.xlsx.writeBuffer());
}

interface SheetServer {
  base: string;
  /** Bytes the server managed to write of the oversized body before the client hung up. */
  bigSent: () => number;
}

/** A loopback server of published sheets: CSV and .xlsx, redirects, a Google-like /pub path, and every way to fail. */
async function sheetServer(t: TestContext): Promise<SheetServer> {
  const book = await xlsxBytes();
  let bigSent = 0;
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void> = {
    '/sheets/spring.csv': (_q, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(SPRING_CSV),
    '/old/spring.csv': (_q, res) => res.writeHead(302, { location: '/sheets/spring.csv' }).end(),
    '/loop.csv': (_q, res) => res.writeHead(302, { location: '/loop.csv' }).end(),
    '/book.xlsx': (_q, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(book),
    '/files/download': (_q, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(book),
    '/spreadsheets/d/e/2PACX-test/pub': (req, res) => {
      const query = new URL(req.url ?? '', 'http://x').searchParams;
      if (query.get('token') !== TOKEN) return void res.writeHead(403).end();
      // Google answers its published links with a redirect to the file's host.
      if (query.get('output') === 'csv') return void res.writeHead(307, { location: `/published/sheet?token=${TOKEN}` }).end();
      res.writeHead(400).end();
    },
    '/published/sheet': (_q, res) => res.writeHead(200, { 'content-type': 'text/csv; charset=utf-8' }).end(SPRING_CSV),
    '/missing.csv': (_q, res) => res.writeHead(404).end('no'),
    '/login': (_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>'),
    '/relative.csv': (_q, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end('id,image,prompt,duration\na,images/hero.jpg,x,5\n'),
    '/declared.csv': (_q, res) => res.writeHead(200, { 'content-type': 'text/csv', 'content-length': String(MANIFEST_MAX_BYTES + 1) }).write('id\n'),
    '/big.csv': (_q, res) => {
      // Chunked, no length: the client must stop reading at the cap, not after 40 MB.
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const more = () => {
        while (bigSent < 2 * MANIFEST_MAX_BYTES && !res.destroyed) {
          bigSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.writeHead(200, { 'content-type': 'text/csv' });
      more();
    },
    '/slow.csv': () => {}, // never answers
    // The bytes decide, whatever the URL or the Content-Type say.
    '/mislabelled.csv': (_q, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(book),
    '/signin': (_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('\n<!DOCTYPE html><html><body>Sign in</body></html>'),
    '/old/book.xlsx': (_q, res) => res.writeHead(302, { location: '/moved/spring.csv' }).end(),
    '/moved/spring.csv': (_q, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(SPRING_CSV),
    // A redirect to a signed path whose server cuts the connection: the error names the host, never the path.
    '/cut.csv': (_q, res) => res.writeHead(302, { location: `/signed/SIGNEDPATH456/2PACX-cut?token=${TOKEN}` }).end(),
    '/signed/SIGNEDPATH456/2PACX-cut': (req) => req.socket.destroy(),
  };
  const server = createServer((req, res) => {
    const route = routes[new URL(req.url ?? '', 'http://x').pathname];
    if (route) route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, bigSent: () => bigSent };
}

const said = (problems: readonly Problem[]) => sortProblems(problems).map(formatProblem);

/** Quick retries for tests: the same three attempts, milliseconds apart. */
const QUICK = { maxAttempts: 3, baseDelayMs: 20, maxDelayMs: 50 };

test('a URL manifest is named from the argument only: name=, else the last path part; Google links and generic parts need name=', () => {
  const google = 'https://docs.google.com/spreadsheets/d/e/2PACX-1vQ/pub?gid=0&single=true&output=csv';
  const named = (arg: string) => {
    const s = urlSource(arg);
    return 'message' in s ? `${s.file}: ${s.message}` : `${s.name} | ${s.shown} | ${s.sheet ?? '-'}`;
  };
  assert.equal(named(`spring-launch=${google}`), 'spring-launch | spring-launch=https://docs.google.com/… | -');
  assert.equal(
    named(google),
    "https://docs.google.com/…: a Google Sheets link does not say the sheet's name: write the manifest's name (its output folder and journal key) before the URL, as in spring-launch=https://…",
  );
  assert.match(
    named('https://cdn.example.com/export?format=csv&sig=abc'),
    /^https:\/\/cdn\.example\.com\/…: the URL's last part "export" is not a usable name/,
  );
  assert.match(named('https://cdn.example.com/'), /the URL's last part "" is not a usable name/);
  assert.equal(named('https://cdn.example.com/campaigns/retail%20EU.csv?X-Amz-Signature=abc'), 'retail EU | retail EU=https://cdn.example.com/… | -');
  assert.equal(
    named('https://cdn.example.com/book.xlsx?sig=1#Autumn%202025'),
    'book-Autumn 2025 | book-Autumn 2025=https://cdn.example.com/…#Autumn 2025 | Autumn 2025',
  );
  assert.equal(
    named('autumn=https://cdn.example.com/book.xlsx#Autumn'),
    'autumn | autumn=https://cdn.example.com/…#Autumn | Autumn',
    'a given name says the sheet',
  );
  assert.equal(named('https://user:hunter2secret@cdn.example.com/a.csv'), 'a | a=https://cdn.example.com/… | -');
  assert.equal(
    named('http://example.com/a.csv?t=1'),
    'http://example.com/…: only https URLs are read (plain http only from this machine: 127.0.0.1, localhost, ::1)',
  );
  assert.equal(named('http://127.0.0.1:8080/a.csv'), 'a | a=http://127.0.0.1:8080/… | -');
  // An invalid URL is never echoed: it may hold a password.
  const invalid = 'is not a valid URL (it is not repeated here: it may hold a password or a token)';
  assert.equal(named('https://user:s3cr3t@exa mple.com/x.csv'), `https://…: ${invalid}`);
  assert.equal(named('spring=https://bob:s3cr3t@exa mple.com/x.csv'), `spring=https://…: ${invalid}`);
  assert.match(named('bad/name=https://cdn.example.com/a.csv'), /^bad\/name=https:/, 'a "/" is no name: the whole argument is a URL, refused as one');
  assert.match(named('../x=https://cdn.example.com/a.csv'), /not a valid URL|cannot be a folder name/);
});

test('URL manifests load once: CSV, a redirect, an .xlsx sheet picked with #, a sniffed workbook, a Google-style /pub link; the sha256 of the rows read is kept', async (t) => {
  const { base } = await sheetServer(t);
  const { manifests, problems } = await loadManifests(
    [
      `${base}/sheets/spring.csv?sig=${TOKEN}`,
      `moved=${base}/old/spring.csv`,
      `${base}/book.xlsx#Autumn`,
      `sniffed=${base}/files/download?id=7`,
      `google=${base}/spreadsheets/d/e/2PACX-test/pub?output=csv&token=${TOKEN}`,
    ],
    noDefaults,
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(
    manifests.map((m) => [m.name, m.shown, m.rows.map((r) => `${r.id}@${r.line}`).join(' ')]),
    [
      ['spring', `spring=${base}/…`, 'opening@2 close-up@3'],
      ['moved', `moved=${base}/…`, 'opening@2 close-up@3'],
      ['book-Autumn', `book-Autumn=${base}/…#Autumn`, 'leaves@2'],
      ['sniffed', `sniffed=${base}/…`, 'main-a@2'],
      ['google', `google=${base}/…`, 'opening@2 close-up@3'],
    ],
  );
  assert.match(manifests[0]?.sha256 ?? '', /^[0-9a-f]{64}$/);
  assert.deepEqual([manifests[1]?.sha256, manifests[4]?.sha256], [manifests[0]?.sha256, manifests[0]?.sha256], 'the same rows, the same sha256');
  assert.equal(manifests[4]?.file, `google=${base}/…`, 'what the plan records: no path, no query');
  const leaves = manifests[2]?.rows[0]?.request;
  assert.deepEqual([leaves?.durationSeconds, leaves?.generateAudio], [6, true]);
  assert.ok(manifests.every((m) => !JSON.stringify(m).includes(TOKEN) && !JSON.stringify(m).includes('2PACX')));
});

test("a download's format is its bytes first: a zip is a workbook under any name, a web page is the publishing problem under any type, and a redirect's own extension counts", async (t) => {
  const { base } = await sheetServer(t);
  const { manifests, problems } = await loadManifests([`zipped=${base}/mislabelled.csv`, `moved=${base}/old/book.xlsx`, `signin=${base}/signin`], noDefaults);
  assert.deepEqual(said(problems), [
    `signin=${base}/…: the server answered with a web page, not a CSV or .xlsx file: for a Google Sheet use File → Share → Publish to web, pick CSV or Microsoft Excel (.xlsx), and use the link it gives`,
  ]);
  assert.deepEqual(
    manifests.filter((m) => m.rows.length > 0).map((m) => [m.name, m.rows.map((r) => r.id).join(' ')]),
    [
      ['zipped', 'main-a'],
      ['moved', 'opening close-up'],
    ],
  );
});

test('two sheets of one URL are two manifests; under one name they are the same-name problem; one argument given twice is read once', async (t) => {
  const { base } = await sheetServer(t);
  const both = await loadManifests([`autumn=${base}/book.xlsx#Autumn`, `main=${base}/book.xlsx#Main`], noDefaults);
  assert.deepEqual(both.problems, []);
  assert.deepEqual(
    both.manifests.map((m) => [m.name, m.rows.map((r) => r.id).join(' ')]),
    [
      ['autumn', 'leaves'],
      ['main', 'main-a'],
    ],
  );
  const clash = await loadManifests([`spring=${base}/book.xlsx#Autumn`, `spring=${base}/book.xlsx#Main`], noDefaults);
  assert.deepEqual(said(clash.problems), [
    `spring=${base}/…#Main: has the same name as spring=${base}/…#Autumn: both would write to the output folder "spring/" (rename one)`,
  ]);
  const twice = await loadManifests([`spring=${base}/book.xlsx#Autumn`, `spring=${base}/book.xlsx#Autumn`], noDefaults);
  assert.deepEqual([twice.problems, twice.manifests.map((m) => m.name)], [[], ['spring']]);
});

test("a % in a URL's #sheet is the sheet's name as written: read, or named in a problem (exit 2), never a crash", async (t) => {
  const { base } = await sheetServer(t);
  const { manifests, problems } = await loadManifests([`q3=${base}/book.xlsx#Q3 50%`], noDefaults);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    manifests.map((m) => [m.name, m.rows.map((r) => r.id).join(' ')]),
    [['q3', 'q3-a']],
  );
  const unnamed = await runCli(['validate', `${base}/book.xlsx#Q3 50%`]);
  assert.equal(unnamed.code, 2, unnamed.stderr);
  assert.match(unnamed.stdout + unnamed.stderr, /"book-Q3 50%" is not a usable folder name: write the manifest's name/);
});

test('URL manifests that cannot be read are problems, without the query: too big (streamed or declared), 404, a redirect loop, a web page, relative images', async (t) => {
  const server = await sheetServer(t);
  const { base } = server;
  const { problems } = await loadManifests(
    [
      `${base}/big.csv?token=${TOKEN}`,
      `${base}/declared.csv`,
      `${base}/missing.csv?token=${TOKEN}`,
      `${base}/cut.csv`,
      `${base}/loop.csv`,
      `page=${base}/login?next=${TOKEN}`,
      `${base}/relative.csv`,
      `${base}/sheets/spring.csv#Autumn`,
    ],
    noDefaults,
    { retry: QUICK },
  );
  assert.deepEqual(said(problems), [
    `big=${base}/…: is larger than 20 MB (the most a manifest may be): split the sheet, or download it and name the file`,
    `cut=${base}/…: could not download from 127.0.0.1 after 3 attempts: the connection was cut`,
    `declared=${base}/…: is larger than 20 MB (the most a manifest may be): split the sheet, or download it and name the file`,
    `loop=${base}/…: cannot be downloaded: more than 5 redirects`,
    `missing=${base}/…: cannot be downloaded: the server answered 404: check the link (a Google Sheet must be published: File → Share → Publish to web)`,
    `page=${base}/…: the server answered with a web page, not a CSV or .xlsx file: for a Google Sheet use File → Share → Publish to web, pick CSV or Microsoft Excel (.xlsx), and use the link it gives`,
    `relative=${base}/…:2: image: "images/hero.jpg" is a relative path in a manifest read from a URL, which has no folder: use an https URL or an absolute path`,
    `spring-Autumn=${base}/…#Autumn: #Autumn picks a sheet of an .xlsx workbook; this manifest is CSV`,
  ]);
  assert.ok(server.bigSent() < 2 * MANIFEST_MAX_BYTES, `reading stopped at the cap (the server wrote ${server.bigSent()} bytes)`);
  assert.ok(!JSON.stringify(problems).includes(TOKEN));
  assert.ok(!JSON.stringify(problems).includes('SIGNEDPATH'), "a redirect's path is never named");
});

test('a URL that never answers is given up after the timeout of each attempt', async (t) => {
  const { base } = await sheetServer(t);
  const started = Date.now();
  const got = await downloadManifest(`${base}/slow.csv`, { timeoutMs: 150, retry: QUICK });
  assert.deepEqual(got, { problem: 'could not download from 127.0.0.1 after 3 attempts: no complete answer within 0.15 s' });
  assert.ok(Date.now() - started < 5000);
});

test('a download is tried again after a cut connection, a 5xx or a refused connection; the last failure names the host, and a 404 is not tried again', async (t) => {
  const calls = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '', 'http://x').pathname;
    const n = (calls.get(path) ?? 0) + 1;
    calls.set(path, n);
    if (path === '/flaky.csv' && n === 1) return void req.socket.destroy();
    if (path === '/flaky.csv' && n === 2) return void res.writeHead(503).end();
    if (path === '/flaky.csv') return void res.writeHead(200, { 'content-type': 'text/csv' }).end(SPRING_CSV);
    if (path === '/down.csv') return void res.writeHead(502).end();
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const got = await downloadManifest(`${base}/flaky.csv`, { retry: QUICK });
  assert.equal('problem' in got ? got.problem : got.bytes.toString(), SPRING_CSV);
  assert.equal(calls.get('/flaky.csv'), 3);

  const { problems } = await loadManifests([`down=${base}/down.csv?token=${TOKEN}`, `gone=${base}/gone.csv`], noDefaults, { retry: QUICK });
  assert.deepEqual(said(problems), [
    `down=${base}/…: could not download from 127.0.0.1 after 3 attempts: the server answered 502`,
    `gone=${base}/…: cannot be downloaded: the server answered 404: check the link (a Google Sheet must be published: File → Share → Publish to web)`,
  ]);
  assert.deepEqual([calls.get('/down.csv'), calls.get('/gone.csv')], [3, 1]);

  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  assert.deepEqual(await downloadManifest(`http://127.0.0.1:${port}/a.csv`, { retry: QUICK }), {
    problem: 'could not download from 127.0.0.1 after 3 attempts: the connection was refused',
  });
});

test('Ctrl-C stops a manifest download at once: loadManifests ends interrupted, and clipmill run exits 130 with nothing sent', async (t) => {
  const { port, asked } = await silentServer(t);
  const url = `spring=http://127.0.0.1:${port}/pub`;

  const controller = new AbortController();
  asked.push(() => controller.abort(new DOMException('interrupted', 'AbortError')));
  const started = Date.now();
  await assert.rejects(
    loadManifests([url], noDefaults, { signal: controller.signal }),
    (error) => error instanceof DownloadInterrupted && error.exit === 'interrupted',
  );
  assert.ok(Date.now() - started < 5000, 'not the 60 s timeout');

  const dir = await tempDir(t);
  const cli = startCli(['run', url, '--dry-run', '--out', path.join(dir, 'out')], { cwd: dir });
  asked.push(() => cli.child.kill('SIGINT'));
  const result = await cli.done;
  assert.equal(result.code, 130, result.stderr);
  assert.match(result.stderr, /interrupted while downloading a manifest; nothing was sent/);
  assert.doesNotMatch(result.stderr, /internal error/);
});

test('a workbook rebuilt with new bytes at each download (a server export stamping the time) is the same sheet while its rows are', async (t) => {
  const served: string[] = [];
  let stamp = 0;
  const server = createServer((_req, res) => {
    const book = new ExcelJS.Workbook();
    book.created = book.modified = new Date(Date.UTC(2025, 0, 1) + ++stamp * 1000);
    book.addWorksheet('Main').addRows([
      ['id', 'image', 'prompt', 'duration'],
      ['a', hero, 'x', 4],
    ]);
    void book.xlsx.writeBuffer().then((bytes) => {
      served.push(createHash('sha256').update(Buffer.from(bytes)).digest('hex'));
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(bytes));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `book=http://127.0.0.1:${(server.address() as AddressInfo).port}/export`;
  const first = await loadManifests([url], noDefaults);
  const second = await loadManifests([url], noDefaults);
  assert.deepEqual([first.problems, second.problems], [[], []]);
  assert.notEqual(served[0], served[1], 'the bytes differ');
  assert.equal(first.manifests[0]?.sha256, second.manifests[0]?.sha256);
});

/** Every file under a folder, as text (journal, reports, videos' names). */
async function allText(dir: string): Promise<string> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const texts = await Promise.all(entries.filter((e) => e.isFile() && !e.name.endsWith('.mp4')).map((e) => readFile(path.join(e.parentPath, e.name), 'utf8')));
  return texts.join('\n');
}

test('clipmill run on a published sheet URL: videos in <name>/, the report names it name=http://host/…, its path and token are nowhere, and retry says to name it', async (t) => {
  const sheets = await sheetServer(t);
  const simulator = await startSimulator(t, { concurrency: 4 });
  const dir = await tempDir(t);
  const pipeline = await write(dir, 'pipeline.yaml', fastPipeline());
  const url = `spring=${sheets.base}/spreadsheets/d/e/2PACX-test/pub?output=csv&token=${TOKEN}`;
  const out = path.join(dir, 'out');
  const run = await runCli(['run', url, '--pipeline', pipeline, '--out', out], { env: envFor(simulator), cwd: dir });
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual((await readdir(path.join(out, 'spring'))).filter((f) => f.endsWith('.mp4')).sort(), ['close-up.mp4', 'opening.mp4']);
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Report;
  assert.deepEqual(
    report.rows.map((r) => [r.manifest, r.id, r.file, r.status]),
    [
      ['spring', 'opening', `spring=${sheets.base}/…`, 'done'],
      ['spring', 'close-up', `spring=${sheets.base}/…`, 'done'],
    ],
  );
  const everything = `${run.stdout}\n${run.stderr}\n${await allText(out)}`;
  assert.ok(!everything.includes(TOKEN), 'the query string reached the output, a report or the journal');
  assert.ok(!everything.includes('output=csv'));
  assert.ok(!everything.includes('2PACX'), "a published sheet's path is its secret: it reached the output, a report or the journal");

  // A second night reads the sheet again and pays for nothing new.
  const again = await runCli(['run', url, '--pipeline', pipeline, '--out', out], { env: envFor(simulator), cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(simulator.created.length, 2);

  // The journal keeps no path nor query to read the sheet again: retry says how to name it.
  const retry = await runCli(['retry', 'spring/opening', '--pipeline', pipeline, '--out', out], { env: envFor(simulator), cwd: dir });
  assert.equal(retry.code, 2);
  assert.match(
    retry.stderr,
    /spring=http:\/\/127\.0\.0\.1:\d+\/…: the last run read this manifest from a URL, which the journal keeps without its path and query/,
  );
});

test('a sheet changed between nights is seen: its sha256 is in the journal, the run says so, and only the edited row is paid', async (t) => {
  let csv = SPRING_CSV;
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(csv));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const url = `spring=http://127.0.0.1:${(server.address() as AddressInfo).port}/pub?token=${TOKEN}`;
  const simulator = await startSimulator(t);
  const dir = await tempDir(t);
  const night = async () => {
    const lines: string[] = [];
    const { runManifests } = await import('../src/commands/run.js');
    const result = await runManifests({
      manifests: [url],
      pipelineFile: await write(dir, 'pipeline.yaml', fastPipeline()),
      outDir: path.join(dir, 'out'),
      env: envFor(simulator),
      print: () => {},
      logLine: (line) => lines.push(line),
    });
    return { result, log: lines.join('\n') };
  };
  const first = await night();
  assert.equal(first.result.exitCode, 0);
  assert.doesNotMatch(first.log, /changed since the last run/);
  csv = SPRING_CSV.replace('The sign', 'The sign lit up');
  const second = await night();
  assert.match(second.log, /spring=http:\/\/127\.0\.0\.1:\d+\/… changed since the last run \(sha256 [0-9a-f]{12} → [0-9a-f]{12}\)/);
  assert.equal(simulator.created.length, 3, 'the unchanged row is not paid again');
  const journal = await readFile(path.join(dir, 'out', '.clipmill', 'journal.jsonl'), 'utf8');
  const recorded = journal
    .split('\n')
    .filter((line) => line.includes('"planned"'))
    .map((line) => (JSON.parse(line) as { manifests: { sha256?: string }[] }).manifests[0]?.sha256);
  assert.equal(recorded.length, 2);
  assert.notEqual(recorded[0], recorded[1]);
  assert.ok(recorded.every((sha) => /^[0-9a-f]{64}$/.test(sha ?? '')));
  assert.ok(!journal.includes(TOKEN), 'the query is not in the journal');
});
