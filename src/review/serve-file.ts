/** The files the review page shows (videos, input images), served by the table of ids the report names. */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';

const TYPES: Record<string, string> = { '.mp4': 'video/mp4', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

/** Answers with JSON (a string as `{ error }`). */
export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(typeof body === 'string' ? { error: body } : body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(`${text}\n`);
}

/** A file the report names, with a single byte range when asked (a video player seeks with them). */
/** A file the page may show, and the folder it must stay within once links are followed. */
export interface Served {
  path: string;
  within: string;
}

/** The file's real path, when it stays within its folder (a symlink pointing elsewhere is not followed out). */
async function contained(served: Served): Promise<string | undefined> {
  const [real, root] = await Promise.all([realpath(served.path).catch(() => undefined), realpath(served.within).catch(() => undefined)]);
  if (real === undefined || root === undefined) return undefined;
  const inside = path.relative(root, real);
  return inside !== '' && !inside.startsWith('..') && !path.isAbsolute(inside) ? real : undefined;
}

export async function serveFile(req: IncomingMessage, res: ServerResponse, served: Served | undefined): Promise<void> {
  const file = served === undefined ? undefined : await contained(served);
  const info = file === undefined ? undefined : await stat(file).catch(() => undefined);
  if (file === undefined || !info?.isFile()) {
    send(res, 404, 'no such file in this report');
    return;
  }
  const size = info.size;
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  let start = 0;
  let end = size - 1;
  if (range && (range[1] !== '' || range[2] !== '')) {
    start = range[1] === '' ? Math.max(0, size - Number(range[2])) : Number(range[1]);
    end = range[1] === '' || range[2] === '' ? size - 1 : Math.min(Number(range[2]), size - 1);
    if (start > end || start >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      return void res.end();
    }
  }
  const partial = range !== null && (start > 0 || end < size - 1);
  res.writeHead(partial ? 206 : 200, {
    'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': String(end - start + 1),
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    ...(partial && { 'Content-Range': `bytes ${start}-${end}/${size}` }),
  });
  if (req.method === 'HEAD' || size === 0) return void res.end();
  createReadStream(file, { start, end })
    .on('error', () => res.destroy())
    .pipe(res);
}
