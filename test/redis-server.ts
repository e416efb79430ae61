/**
 * A real `redis-server` (Debian's) on a loopback port for one test, with the production settings the
 * README asks for: append-only file fsynced on every write, no eviction. Stopped by its pid at the end;
 * `kill9()` and `restart()` are for the chaos tests (the data directory survives a restart).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

export interface RedisServer {
  url: string;
  port: number;
  kill9(): Promise<void>;
  restart(): Promise<void>;
}

/** A free loopback port: redis-server refuses port 0. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

function launch(port: number, dir: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'];
  const child = spawn('redis-server', [...args, '--maxmemory-policy', 'noeviction', '--save', '', '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let seen = '';
    let ready = false;
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!ready) reject(new Error(`redis-server exited (${code}): ${seen.slice(-500)}`));
    });
    child.stderr.resume();
    child.stdout.on('data', (chunk: Buffer) => {
      if (ready) return;
      seen += chunk.toString();
      if (seen.includes('Ready to accept connections')) {
        ready = true;
        resolve(child);
      }
    });
  });
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
}

/** A redis-server of its own (for the bench too); `close()` stops it and removes its data. */
export async function startRedisServer(): Promise<RedisServer & { close(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-redis-'));
  const port = await freePort();
  let child = await launch(port, dir);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill9: () => stop(child, 'SIGKILL'),
    restart: async () => {
      await stop(child, 'SIGKILL');
      child = await launch(port, dir);
    },
    close: async () => {
      await stop(child, 'SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startRedis(t: TestContext): Promise<RedisServer> {
  const server = await startRedisServer();
  t.after(() => server.close());
  return server;
}
