import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, type Node } from 'yaml';
import type { z } from 'zod';
import type { RawDefaults, RawValue } from '../load/raw.js';
import { defaultsProblems, readYamlMap } from '../load/yaml.js';
import { syntaxErrors } from '../load/yaml-errors.js';
import { InputError, type Problem } from '../load/problem.js';
import { checkBaseUrl, envProblems, envSettings } from './env.js';
import { overrideProblems, SETTING_FLAGS, type SettingOverrides } from './flags.js';
import { pipelineFields, pipelineSchema, type PipelineSettings } from './schema.js';

type DeepReadonly<T> =
  T extends Map<unknown, unknown>
    ? T
    : T extends readonly (infer E)[]
      ? readonly DeepReadonly<E>[]
      : T extends object
        ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
        : T;

/** The settings of one command, built once at load and frozen: the file (or built-in defaults), then flags, then the environment. */
export type Pipeline = DeepReadonly<
  PipelineSettings & {
    /** The file it came from, or undefined for built-in defaults. */
    file: string | undefined;
    /** Row defaults with the file and line of each, checked with the rows. */
    defaults: RawDefaults;
  }
>;

/** Where a command's pipeline comes from: `--pipeline`, and the flags that override its settings. */
export interface PipelineSources extends SettingOverrides {
  pipelineFile?: string;
}

type Raw = Record<string, unknown>;

/** A pipeline file read and checked: its settings as written, the line of each, its row defaults. */
interface PipelineFile {
  file: string;
  raw: Raw;
  defaults: RawDefaults;
  problems: Problem[];
}

function zodProblems(error: z.ZodError, file: string, lineAt: (path: PropertyKey[]) => number): Problem[] {
  return error.issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    return { file, line: lineAt(issue.path), field, message };
  });
}

/** Reads a pipeline file; an unreadable file or bad YAML is an InputError at once, the settings' problems are returned. */
async function readPipelineFile(file: string): Promise<PipelineFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError(
      [{ file, line: 0, field: '', message: `cannot read the pipeline file (${(error as NodeJS.ErrnoException).code ?? String(error)})` }],
      undefined,
      { cause: error },
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The line of the mistake (an unclosed quote where it opens), as for manifests.
    throw new InputError(syntaxErrors(doc, text, lines).map((e) => ({ file, line: e.line, field: '', message: `YAML syntax: ${e.message}` })));
  }
  const lineAt = (at: PropertyKey[]): number => {
    for (let n = at.length; n >= 0; n--) {
      const node = doc.getIn(at.slice(0, n) as string[], true) as Node | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return 0;
  };
  const raw = (doc.toJS() ?? {}) as Raw;
  const parsed = pipelineFields.safeParse(raw);
  if (!parsed.success) return { file, raw, defaults: new Map<string, RawValue>(), problems: zodProblems(parsed.error, file, lineAt) };
  const defaultsNode = doc.get('defaults', true) as Node | undefined;
  const defaults: RawDefaults = defaultsNode && isMap(defaultsNode) ? readYamlMap(defaultsNode, file, lines) : new Map<string, RawValue>();
  const problems: Problem[] = defaultsProblems(defaults, file);
  const urls: [string[], string | undefined][] = [
    [['notify', 'webhook_url'], parsed.data.notify.webhook_url],
    [['base_url'], parsed.data.base_url],
  ];
  for (const [at, url] of urls) {
    const problem = url === undefined ? undefined : checkBaseUrl(url);
    if (problem) problems.push({ file, line: lineAt(at), field: at.join('.'), message: problem });
  }
  return { file, raw, defaults, problems };
}

/** A copy of `raw` with `value` at `at`. */
function withSetting(raw: Raw, at: readonly string[], value: unknown): Raw {
  const [key, ...rest] = at;
  if (key === undefined) return raw;
  const inner = raw[key];
  return { ...raw, [key]: rest.length === 0 ? value : withSetting(typeof inner === 'object' && inner !== null ? (inner as Raw) : {}, rest, value) };
}

/** The file's settings with the flags' and the environment's in place (all already checked). */
function mergeSources(raw: Raw, sources: PipelineSources, env: NodeJS.ProcessEnv): Raw {
  let merged = raw;
  const { maxCostUsd } = sources;
  for (const name of ['outDir', 'concurrency', 'requestsPerMinute'] as const) {
    if (sources[name] !== undefined) merged = withSetting(merged, SETTING_FLAGS[name].path, sources[name]);
  }
  // --max-cost never raises the file's budget: the lower of the two applies.
  if (maxCostUsd !== undefined)
    merged = withSetting(merged, ['budget_usd'], typeof raw.budget_usd === 'number' ? Math.min(raw.budget_usd, maxCostUsd) : maxCostUsd);
  for (const [, at, value] of envSettings(env, providerOf(raw))) merged = withSetting(merged, at, value);
  return merged;
}

function providerOf(raw: Raw) {
  return pipelineFields.shape.provider.parse(raw.provider);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Map) && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function build(raw: Raw, file: string | undefined, defaults: RawDefaults): Pipeline {
  return deepFreeze({ ...pipelineSchema.parse(raw), file, defaults });
}

/**
 * The pipeline of one command, built once: the file (or the built-in defaults), the flags that override
 * its settings, then the environment. Every problem in any of them is reported together, as InputError.
 */
export async function resolvePipeline(sources: PipelineSources = {}, env: NodeJS.ProcessEnv = process.env): Promise<Pipeline> {
  const read = sources.pipelineFile === undefined ? undefined : await readPipelineFile(sources.pipelineFile);
  const raw = read?.raw ?? {};
  const problems = [...(read?.problems ?? []), ...overrideProblems(sources).map(([flag, message]): Problem => ({ file: flag, line: 0, field: '', message }))];
  if (read?.problems.length === 0 || read === undefined) problems.push(...envProblems(env, providerOf(raw)));
  if (problems.length > 0) throw new InputError(problems);
  return build(mergeSources(raw, sources, env), read && path.resolve(read.file), read?.defaults ?? new Map<string, RawValue>());
}

/** Loads and checks a pipeline file alone (no flags, no environment); every problem with its line, then InputError. */
export function loadPipeline(file: string): Promise<Pipeline> {
  return resolvePipeline({ pipelineFile: file }, {});
}

/** The built-in settings, with no file, flag or environment. */
export function defaultPipeline(): Pipeline {
  return build({}, undefined, new Map<string, RawValue>());
}
