import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Protocol, Reply, Route } from './types.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(text);
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** An error in each provider's own shape: Runflow's `{code, message, errors}`, fal's `{detail, error_type}`. */
export function errorReply(protocol: Protocol, status: number, code: string, message: string, headers: Record<string, string> = {}): Reply {
  if (protocol === 'runflow') return { status, body: { code, message, errors: null }, headers };
  return { status, body: { detail: message, error_type: code.toLowerCase() }, headers: { 'x-fal-error-type': code.toLowerCase(), ...headers } };
}

export function sendReply(res: ServerResponse, reply: Reply): void {
  sendJson(res, reply.status, reply.body, reply.headers);
}

/** The first route whose method and path match, with the path's captures. */
export function findRoute<H>(routes: readonly Route<H>[], method: string, pathname: string): { handler: H; match: RegExpExecArray } | undefined {
  for (const route of routes) {
    if (route.method !== '*' && route.method !== method) continue;
    const match = route.pattern.exec(pathname);
    if (match) return { handler: route.handler, match };
  }
  return undefined;
}
