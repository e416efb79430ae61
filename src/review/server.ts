/**
 * `clipmill review`: the report page served on loopback, where a person marks each video approved or "redo"
 * with a note. It serves only the page, the marks API and the files the report names (found by id in a table,
 * never by joining a request's path to a folder), only to the browser that opened the printed link (its
 * cookie); a mark must also carry the page's random token.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isBucketUrl } from '../infra/bucket.js';
import { redactText } from '../infra/http.js';
import { InputError, formatProblem } from '../load/problem.js';
import { fleetMarkOf } from '../state/fleet-marker.js';
import { Access } from './access.js';
import { latestMarks, readMarks, withMark, type Mark } from './marks.js';
import { updateMarks } from './marks-update.js';
import { renderReviewPage } from './page.js';
import { checkPostedMark } from './posted.js';
import { send, serveFile } from './serve-file.js';
import { fileId, JournalStates, loadView, type View } from './view.js';

export interface ReviewServer {
  /** `http://127.0.0.1:PORT/?key=…`: the link to open, once (its key becomes the browser's cookie). */
  url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 16 * 1024;

/** A fleet's journal is in Redis and a bucket holds no marks: both refused before anything is served. */
async function refuseUnsupported(outDir: string): Promise<void> {
  const refuse = (message: string) => new InputError([{ file: outDir, line: 0, field: '--out', message }]);
  if (isBucketUrl(outDir)) throw refuse('a bucket cannot be reviewed (the marks live in a local folder): review a local copy of the folder');
  const mark = await fleetMarkOf(outDir);
  if (mark !== undefined)
    throw refuse(
      `this folder is fleet "${mark.queue}"'s, whose journal is in Redis: clipmill review reads a single machine's folder (use clipmill report --redis for a fleet's report.html)`,
    );
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The review server's state: its token, the current view, and the marks written one after another. */
class Review {
  private readonly token = randomBytes(24).toString('base64url');
  private writes: Promise<unknown> = Promise.resolve();
  /** The hosts the page is reached by (`127.0.0.1:PORT`, `localhost:PORT`), set once listening. */
  hosts = new Set<string>();
  readonly access = new Access();

  constructor(
    readonly outDir: string,
    private view: View,
    private readonly states: JournalStates,
  ) {}

  async page(res: ServerResponse, head: boolean): Promise<void> {
    this.view = await loadView(this.outDir, this.states);
    const latest = latestMarks(await readMarks(this.outDir));
    const nonce = randomBytes(16).toString('base64');
    const html = [
      ...renderReviewPage(this.view.report, this.view.rows, latest, { token: this.token, nonce, link: (relative) => `/files/${fileId(relative)}` }),
    ].join('');
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self' https:; media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
    });
    res.end(head ? undefined : html);
  }

  async marks(res: ServerResponse): Promise<void> {
    send(res, 200, { marks: [...latestMarks(await readMarks(this.outDir)).values()] });
  }

  /** A mark from the page: only with its token (a page of another site cannot read it), checked, then saved. */
  async post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const result = await this.markFrom(req);
    if ('status' in result) send(res, result.status, result.message);
    else send(res, 200, result);
  }

  private async markFrom(req: IncomingMessage): Promise<{ mark: Mark } | { status: number; message: string }> {
    const origin = req.headers.origin;
    if (origin !== undefined && !this.hosts.has(origin.replace(/^http:\/\//, ''))) return { status: 403, message: 'a mark from another site is refused' };
    const given = Buffer.from(String(req.headers['x-clipmill-token'] ?? ''));
    const want = Buffer.from(this.token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return { status: 403, message: 'missing or wrong token: reload the review page' };
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return { status: 415, message: 'send the mark as application/json' };
    const text = await readBody(req);
    if (text === undefined) return { status: 413, message: `a mark is at most ${MAX_BODY_BYTES} bytes` };
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { status: 400, message: 'the body is not JSON' };
    }
    // Checked against the journal as it is now, not as the page saw it: a night may have replaced the video since.
    const checked = checkPostedMark(body, this.view.rows, await this.states.current(), new Date());
    if ('status' in checked) return checked;
    const saved = this.writes.then(() => updateMarks(this.outDir, (marks) => withMark(marks, checked.mark)));
    this.writes = saved.catch(() => undefined);
    await saved;
    return checked;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const { pathname } = url;
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    const file = /^\/files\/([0-9a-f]{24})$/.exec(pathname);
    const key = url.searchParams.get('key');
    // DNS rebinding: a page of another name resolving to 127.0.0.1 would be same-origin with us; only our own host is answered.
    if (!this.hosts.has(req.headers.host ?? '')) send(res, 403, `unexpected Host: open http://${[...this.hosts][0]}/`);
    else if (pathname === '/' && read && key !== null) this.enter(req, res, key);
    else if (!this.access.admits(req))
      send(res, 401, `open the link clipmill review printed (${this.access.shownLink}) in your browser: the page answers only the browser that opened it`);
    else if (pathname === '/' && read) await this.page(res, method === 'HEAD');
    else if (pathname === '/api/marks' && method === 'POST') await this.post(req, res);
    else if (pathname === '/api/marks' && method === 'GET') await this.marks(res);
    else if (file && read) await serveFile(req, res, this.view.files.get(file[1]!));
    else if (pathname === '/' || pathname === '/api/marks') send(res, 405, pathname === '/' ? 'the page is read with GET' : 'GET or POST');
    else send(res, 404, 'not found');
  }

  /** The printed link: its key becomes this browser's cookie (once), and the key leaves the address bar. */
  private enter(req: IncomingMessage, res: ServerResponse, key: string): void {
    const cookie = this.access.exchange(key);
    if (cookie === undefined && !this.access.admits(req))
      return send(
        res,
        401,
        'this link was already opened (or its key is wrong): use the browser that opened it, or stop clipmill review and start it again for a new link',
      );
    res.writeHead(303, { Location: '/', 'Cache-Control': 'no-store', ...(cookie !== undefined && { 'Set-Cookie': cookie }) });
    res.end();
  }

  async settle(): Promise<void> {
    await this.writes;
  }
}

function failure(error: unknown): { status: number; message: string } {
  if (error instanceof InputError) return { status: 500, message: error.problems.map(formatProblem).join('; ') };
  return { status: 500, message: redactText(error instanceof Error ? error.message : String(error)) };
}

/** Serves the folder's review page on 127.0.0.1 (`port` 0: any free port) until closed. */
export async function startReviewServer(outDir: string, port = 0): Promise<ReviewServer> {
  await refuseUnsupported(outDir);
  const states = new JournalStates(outDir);
  const review = new Review(outDir, await loadView(outDir, states), states);
  const server = createServer((req, res) => {
    review.handle(req, res).catch((error: unknown) => {
      const { status, message } = failure(error);
      if (res.headersSent) res.destroy();
      else send(res, status, message);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = (server.address() as AddressInfo).port;
  review.hosts = new Set([`127.0.0.1:${bound}`, `localhost:${bound}`]);
  review.access.port = bound;
  return {
    url: review.access.link,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await review.settle();
      server.closeAllConnections();
      await closed;
    },
  };
}
