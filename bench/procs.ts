/**
 * Child processes for the benchmark: a private build of clipmill and of the peer scripts (compiled once
 * per bench run, so no transpiler runs inside a measured process), and a spawn that measures one
 * process: wall time from the bench, CPU and peak RSS from the child itself (a preload that writes
 * `process.resourceUsage()` to a file when the process exits).
 */
import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Loaded with `--import` into every measured child: its own CPU and peak RSS, written at exit. */
const USAGE_PRELOAD = `data:text/javascript,${encodeURIComponent(
  'import{writeFileSync}from"node:fs";process.on("exit",()=>{const f=process.env.BENCH_USAGE_FILE;if(f)writeFileSync(f,JSON.stringify(process.resourceUsage()))});',
)}`;

export interface Build {
  /** The compiled CLI (`<dir>/src/cli.js`, with package.json one folder above as the CLI expects). */
  cli: string;
  /** A compiled peer script, by name (bench/peers/<name>.ts). */
  peer: (name: string) => string;
  dir: string;
}

let built: Promise<Build> | undefined;

/** Compiles src/ and bench/peers/ with the project's tsc into a temp folder (not dist/, which others may be using). */
export function buildOnce(): Promise<Build> {
  built ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-build-'));
    await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    await copyFile(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
    const tsconfig = path.join(dir, 'tsconfig.json');
    await writeFile(
      tsconfig,
      JSON.stringify({
        extends: path.join(ROOT, 'tsconfig.json'),
        compilerOptions: {
          rootDir: ROOT,
          outDir: dir,
          noEmit: false,
          sourceMap: false,
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        },
        include: [path.join(ROOT, 'src'), path.join(ROOT, 'bench', 'peers')],
      }),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await measured(process.execPath, [tsc, '-p', tsconfig], { cwd: ROOT });
    // tsc emits despite type errors (someone else's edit in progress): only a missing CLI is fatal.
    if (!existsSync(path.join(dir, 'src', 'cli.js'))) throw new Error(`build failed:\n${result.stdout}\n${result.stderrTail}`);
    if (result.code !== 0) process.stderr.write(`bench: tsc reported errors (compiled anyway):\n${result.stdout.slice(0, 2000)}\n`);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return { dir, cli: path.join(dir, 'src', 'cli.js'), peer: (name) => path.join(dir, 'bench', 'peers', `${name}.js`) };
  })();
  return built;
}

export interface Measured {
  code: number | null;
  signal: NodeJS.Signals | null;
  wallMs: number;
  /** User + system CPU of the child, ms (undefined when it died before writing it). */
  cpuMs: number | undefined;
  /** Peak resident set of the child, bytes. */
  maxRssBytes: number | undefined;
  stdout: string;
  /** The last 4 KB of stderr, for a failure's message. */
  stderrTail: string;
}

/**
 * Runs `node <args>` (or any command) and measures it. `deadlineMs`: SIGTERM then, SIGKILL 10 s later.
 * Node children get the usage preload; the bench's own environment is not passed on, only PATH and `env`.
 */
export async function measured(command: string, args: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; deadlineMs?: number } = {}): Promise<Measured> {
  const usageDir = await mkdtemp(path.join(tmpdir(), 'clipmill-bench-usage-'));
  const usageFile = path.join(usageDir, 'usage.json');
  const isNode = command === process.execPath;
  const started = performance.now();
  const child = spawn(command, isNode ? ['--import', USAGE_PRELOAD, ...args] : args, {
    cwd: o.cwd ?? ROOT,
    env: { PATH: process.env.PATH, ...o.env, BENCH_USAGE_FILE: usageFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderrTail = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString()).slice(-4096)));
  const timers: NodeJS.Timeout[] = [];
  if (o.deadlineMs !== undefined) {
    timers.push(setTimeout(() => child.kill('SIGTERM'), o.deadlineMs));
    timers.push(setTimeout(() => child.kill('SIGKILL'), o.deadlineMs + 10_000));
  }
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  });
  const wallMs = performance.now() - started;
  for (const t of timers) clearTimeout(t);
  let cpuMs: number | undefined;
  let maxRssBytes: number | undefined;
  try {
    const usage = JSON.parse(await readFile(usageFile, 'utf8')) as NodeJS.ResourceUsage;
    cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
    maxRssBytes = usage.maxRSS * 1024;
  } catch {
    // killed before its exit handler ran
  }
  await rm(usageDir, { recursive: true, force: true });
  return { code, signal, wallMs, cpuMs, maxRssBytes, stdout, stderrTail };
}

/** The one line every table is printed under. */
export function machineLine(command: string): string {
  const load = loadavg()[0]!.toFixed(1);
  return `Command: \`${command}\`; machine: ${availableParallelism()} cores, Node ${process.version} (load average ${load} when it started); figures are ratios from one run (${new Date().toISOString().slice(0, 10)}).`;
}

export const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
export const mib = (bytes: number | undefined) => (bytes === undefined ? '?' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`);
