import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { SimulatorOptionsInput } from '../src/simulator/options.js';
import { Simulator, type LedgerEntry } from '../src/simulator/server.js';
import { runManifests, type RunOptions } from '../src/commands/run.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const IMAGES_DIR = path.join(ROOT, 'manifests', 'images');
const CLI = path.join(ROOT, 'src', 'cli.ts');
/** Absolute, so the CLI can run from any working folder. */
const TSX = import.meta.resolve('tsx');

/** A fresh folder removed after the test. */
export async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A folder with the example images copied in, for manifests written by a test. */
export async function workspace(t: TestContext): Promise<string> {
  const dir = await tempDir(t);
  await cp(IMAGES_DIR, path.join(dir, 'images'), { recursive: true });
  return dir;
}

export async function write(dir: string, name: string, content: string | Uint8Array): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, content);
  return file;
}

/** A simulator on loopback, closed after the test; options as in a pipeline's `simulator:` block, runs 20 ms by default. */
export async function startSimulator(t: TestContext, options: SimulatorOptionsInput = {}): Promise<Simulator> {
  const simulator = new Simulator({ latency_ms: 20, ...options });
  await simulator.start();
  t.after(() => simulator.close());
  return simulator;
}

/** A YAML manifest of `n` rows `r<from+i>` on the landscape example image; `duration` gives each row's seconds (3 by default). */
export function rowsYaml(n: number, o: { from?: number; duration?: (i: number) => number } = {}): string {
  const from = o.from ?? 0;
  const seconds = o.duration ?? (() => 3);
  return [
    'rows:',
    ...Array.from({ length: n }, (_, i) => `  - {id: r${from + i}, image: images/hero-landscape.jpg, prompt: "row ${from + i}", duration: ${seconds(i)}}`),
  ].join('\n');
}

/** A pipeline file pointing at a simulator already running (provider runflow + RUNFLOW_BASE_URL), fast timings. */
export function fastPipeline(extra = ''): string {
  return [
    'provider: runflow',
    'concurrency: 4',
    'requests_per_minute: 100000',
    'poll_interval: 10ms',
    'request_timeout: 5s',
    'job_timeout: 30s',
    'retry:',
    '  max_attempts: 3',
    '  base_delay: 10ms',
    '  max_delay: 50ms',
    extra,
  ].join('\n');
}

export function envFor(simulator: Simulator): NodeJS.ProcessEnv {
  return { RUNFLOW_API_KEY: 'test-key', RUNFLOW_BASE_URL: simulator.url };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI in a child process (through tsx), as a scheduler would. */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** Starts the real CLI in a child process; `done` settles when it exits (a test may kill it first, by its pid). */
export function startCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, done };
}

/** The most runs alive at once at the provider (created, not yet ended), from the simulator's own timeline. */
export function mostAtOnce(timeline: readonly { createdAt: number; completedAt?: number }[]): number {
  const edges = timeline.flatMap((r) => [
    [r.createdAt, 1],
    [r.completedAt ?? Infinity, -1],
  ]);
  // An end and a start at the same millisecond: the end first (the slot was free).
  edges.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let alive = 0;
  let most = 0;
  for (const [, d] of edges) most = Math.max(most, (alive += d!));
  return most;
}

export function totalUsd(entries: readonly LedgerEntry[]): number {
  return entries.reduce((sum, e) => sum + Math.round(e.usd * 1e6), 0) / 1e6;
}

/** A real PNG of random noise (it does not compress), for images of a given size in bytes. */
export function noisePng(width: number, height: number, seed = 1): Buffer {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 24;
  };
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < width * 3; x++) raw[y * (width * 3 + 1) + 1 + x] = next();
  }
  const chunk = (type: string, data: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, 'ascii'), data])));
    return Buffer.concat([length, Buffer.from(type, 'ascii'), data, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 0 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A server on another loopback address (127.0.0.2) standing for an internal admin port: it must receive no request. */
export async function adminServer(t: TestContext): Promise<{ base: string; hits: () => number }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.end('admin');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { base: `http://127.0.0.2:${(server.address() as AddressInfo).port}`, hits: () => hits };
}

export type Scripted = 'pass' | 'reset' | { status: number; headers?: Record<string, string>; body?: unknown };

/** A scripted proxy in front of the simulator: chosen requests get a reset or a canned answer, the rest pass. */
export async function scriptedProxy(
  t: TestContext,
  target: string,
  script: (method: string, path: string, n: number, rawPath: string) => Scripted,
): Promise<{ url: string; seen: string[]; requests: { key: string; search: string; at: number }[] }> {
  const seen: string[] = [];
  const requests: { key: string; search: string; at: number }[] = [];
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `${req.method} ${(req.url ?? '').split('?')[0]!.replace(/\/v1\/runs\/[0-9a-f-]{36}/, '/v1/runs/:id')}`;
    const n = (counts.get(key) ?? 0) + 1;
    counts.set(key, n);
    requests.push({ key, search: new URL(req.url ?? '/', 'http://x').search, at: Date.now() });
    const action = script(req.method ?? '', key, n, (req.url ?? '').split('?')[0]!);
    seen.push(`${key} #${n} ${typeof action === 'string' ? action : action.status}`);
    if (action === 'reset') {
      req.resume();
      req.on('end', () => res.socket?.resetAndDestroy());
      return;
    }
    if (action !== 'pass') {
      req.resume();
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(JSON.stringify(action.body ?? { code: 'SCRIPTED', message: 'scripted', errors: null }));
      return;
    }
    const upstream = httpRequest(new URL(req.url ?? '/', target), { method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    // A client that gave up (its timeout) closes the proxied request: not an error of the test.
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, requests };
}

/**
 * An output folder's nights on the simulator: manifest `m.yaml` (`edit` rewrites it), a fast pipeline, `out/`;
 * `night()` runs them quietly (options such as a signal, a logLine or verify added on top).
 */
export async function nightFolder(t: TestContext, yaml: string, o: { simulator?: SimulatorOptionsInput; pipeline?: string } = {}) {
  const simulator = await startSimulator(t, o.simulator);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', yaml);
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline(o.pipeline));
  const out = path.join(dir, 'out');
  const night = (extra: Partial<RunOptions> = {}) =>
    runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), print: () => {}, logLine: () => {}, ...extra });
  return { simulator, dir, file, pipelineFile, out, night, edit: (text: string) => write(dir, 'm.yaml', text) };
}

/** A loopback webhook that keeps every JSON body posted to it and answers `status`; its path holds a secret, as a real one does. */
export async function webhook(t: TestContext, status = 200): Promise<{ url: string; bodies: unknown[] }> {
  const bodies: unknown[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      bodies.push(JSON.parse(text));
      res.writeHead(status);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T000/B000/secret-token`, bodies };
}

/** A loopback server that never answers a request: only the caller's signal can end the wait. Each request runs the next of `asked` (a test's Ctrl-C, say). */
export async function silentServer(t: TestContext): Promise<{ port: number; asked: (() => void)[] }> {
  const asked: (() => void)[] = [];
  const server = createServer(() => asked.shift()?.());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, asked };
}
