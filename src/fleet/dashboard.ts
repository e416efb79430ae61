/**
 * `clipmill dashboard`: bull-board over the fleet's two queues (rows and downloads), read-only, behind
 * HTTP basic auth, on a plain `node:http` server. bull-board's own server is a Hono app (the smallest of its
 * adapters); we hand it requests only once they carry the right credentials, so every path it serves (the
 * page, its static files, its JSON API under `/api/`) is behind the same check.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { getRequestListener } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { Queue } from 'bullmq';
import { redactText, registerSecret } from '../infra/http.js';
import { queueNames } from './queue.js';
import { redisOptionsOf } from './redis.js';

export const DASHBOARD_USER = 'clipmill';

export interface DashboardOptions {
  redisUrl: string;
  queue: string;
  host: string;
  port: number;
  password: string;
}

export interface Dashboard {
  /** Where the dashboard listens, with the real port; never carries the password. */
  url: string;
  close(): Promise<void>;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/**
 * A checker for `Authorization: Basic …`. Both sides are hashed first, so `timingSafeEqual` compares equal
 * lengths and the time taken says nothing about the password's length or its first wrong character.
 */
export function basicAuthCheck(user: string, password: string): (header: string | undefined) => boolean {
  const wantUser = digest(user);
  const wantPassword = digest(password);
  return (header) => {
    const match = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header?.trim() ?? '');
    const decoded = Buffer.from(match?.[1] ?? '', 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const userOk = timingSafeEqual(digest(colon < 0 ? '' : decoded.slice(0, colon)), wantUser);
    const passwordOk = timingSafeEqual(digest(colon < 0 ? '' : decoded.slice(colon + 1)), wantPassword);
    return match !== null && colon >= 0 && userOk && passwordOk;
  };
}

function refuse(res: ServerResponse): void {
  res.writeHead(401, {
    'WWW-Authenticate': 'Basic realm="clipmill dashboard", charset="UTF-8"',
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
  });
  res.end('authentication required\n');
}

/** The fleet's queues, each reporting a Redis error once per distinct message (ioredis retries on its own). */
function openQueues(redisUrl: string, queue: string): Queue[] {
  const connection = redisOptionsOf(redisUrl);
  const names = queueNames(queue);
  return [names.rows, names.downloads].map((name) => {
    const q = new Queue(name, { connection });
    let last = '';
    q.on('error', (error: Error) => {
      if (error.message === last) return;
      last = error.message;
      process.stderr.write(`dashboard: queue ${name}: Redis error: ${redactText(error.message)}\n`);
    });
    return q;
  });
}

/** bull-board's request handler for the given queues, served from `/`. */
function boardListener(queues: readonly Queue[]): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const serverAdapter = new HonoAdapter(serveStatic);
  serverAdapter.setBasePath('/');
  createBullBoard({
    // Read-only: no retry, clean, promote, delete, pause or add, in the page or its API (405). A retry must go
    // through `clipmill enqueue`, which checks the plan and the budget and records the row in the fleet journal;
    // a job moved back by hand would run outside of both.
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'clipmill fleet' } },
  });
  return getRequestListener(serverAdapter.registerPlugin().fetch);
}

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      if (address === null || typeof address === 'string') reject(new Error('the dashboard server has no port'));
      else resolve(address.port);
    });
  });
}

/** Serves the dashboard until `close()`. The password is only compared, never logged nor put in the URL. */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  if (o.password === '') throw new Error('the dashboard needs a password');
  registerSecret(o.password);
  const queues = openQueues(o.redisUrl, o.queue);
  const closeQueues = () => Promise.all(queues.map((q) => q.close())).then(() => undefined);
  const authorized = basicAuthCheck(DASHBOARD_USER, o.password);
  const board = boardListener(queues);
  const server = createServer((req, res) => {
    if (!authorized(req.headers.authorization)) {
      refuse(res);
      return;
    }
    board(req, res).catch((error: unknown) => {
      process.stderr.write(`dashboard: ${req.method ?? 'GET'} ${req.url ?? '/'}: ${redactText(String(error))}\n`);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end();
    });
  });
  let port: number;
  try {
    port = await listen(server, o.host, o.port);
  } catch (error) {
    await closeQueues();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/`,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
        await closeQueues();
      })();
      return closing;
    },
  };
}
