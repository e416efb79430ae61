/**
 * The clipmill peer as a real CLI process against a simulator the bench started: a manifest, a
 * pipeline file, the environment that points the provider at the simulator, and the report it wrote.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildOnce, measured, type Measured } from './procs.js';

export type Protocol = 'runflow' | 'fal';

/**
 * A YAML manifest of `rows` rows. `image: 'remote'` gives each row its own https URL (the simulator
 * accepts them without an upload, as the peers send them); a file path makes every row use that image.
 */
export async function writeManifest(file: string, rows: number, image: string): Promise<void> {
  const lines = ['rows:'];
  for (let i = 0; i < rows; i++) {
    const id = image === 'remote' ? `r${String(i).padStart(5, '0')}` : `r${i}`;
    const source = image === 'remote' ? `https://images.example.com/${id}.jpg` : image;
    lines.push(`  - {id: ${id}, image: "${source}", prompt: "bench ${id}", duration: ${3 + (i % 13)}}`);
  }
  await writeFile(file, `${lines.join('\n')}\n`);
}

/** A pipeline file: clipmill's defaults except the given top-level settings and `retry:` block. */
export async function writePipeline(
  file: string,
  protocol: Protocol,
  settings: Record<string, string | number>,
  retry: Record<string, string | number> = {},
): Promise<void> {
  const lines = [`provider: ${protocol}`, ...Object.entries(settings).map(([k, v]) => `${k}: ${v}`)];
  if (Object.keys(retry).length > 0) lines.push('retry:', ...Object.entries(retry).map(([k, v]) => `  ${k}: ${v}`));
  await writeFile(file, `${lines.join('\n')}\n`);
}

export function envFor(protocol: Protocol, url: string): NodeJS.ProcessEnv {
  return protocol === 'fal' ? { FAL_KEY: 'bench-key', FAL_BASE_URL: url } : { RUNFLOW_API_KEY: 'bench-key', RUNFLOW_BASE_URL: url };
}

/** `clipmill <args>` from the bench's private build, measured; `--log json` keeps stderr machine-readable. */
export async function clipmill(args: string[], o: { env?: NodeJS.ProcessEnv; cwd: string; deadlineMs?: number }): Promise<Measured> {
  const { cli } = await buildOnce();
  return measured(process.execPath, [cli, ...args], o);
}

/** Rows done according to the report the run wrote (also after a SIGTERM: the run writes it before exiting). */
export async function rowsDone(outDir: string): Promise<number> {
  try {
    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as { totals: { done: number } };
    return report.totals.done;
  } catch {
    return 0;
  }
}

/** A failed command stops the bench with its exit code and the tail of what it said. */
export function check(what: string, m: Measured, okCodes: readonly number[] = [0]): Measured {
  if (m.code === null || !okCodes.includes(m.code)) throw new Error(`${what} exited ${m.code ?? m.signal}:\n${m.stderrTail}`);
  return m;
}
