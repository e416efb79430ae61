import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, type Node } from 'yaml';
import { z } from 'zod';
import type { BudgetPeriod } from '../money/budget.js';
import { usdToMicros, type Pricing } from '../money/cost.js';
import { DEFAULTABLE_FIELDS } from '../load/row.js';
import type { RawDefaults } from '../load/raw.js';
import { readYamlMap, yamlMessage } from '../load/yaml.js';
import { InputError, type Problem } from '../load/problem.js';
import { simulatorOptionsSchema, type SimulatorSettings } from '../simulator/options.js';

export const PROVIDERS = ['runflow', 'fal', 'simulator'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** "500ms", "5s", "20m", "1h" or a number of seconds. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

/** The inverse, for messages: 250 → "250ms", 90000 → "90s", 1200000 → "20m". */
export function formatDurationMs(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

const duration = (fallback: string, minMs: number) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((v, ctx) => {
      const ms = parseDurationMs(v);
      if (ms === undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (like 500ms, 5s, 20m, 1h)` });
      else if (ms < minMs) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is too short (at least ${formatDurationMs(minMs)})` });
      return ms ?? 0;
    });

export { simulatorOptionsSchema, type SimulatorSettings };

const pipelineSchema = z
  .object({
    provider: z.enum(PROVIDERS).default('runflow'),
    base_url: z.string().optional(),
    inline_images: z.boolean().default(false),
    allowed_hosts: z.array(z.string().min(1)).default([]),
    concurrency: z.number().int().min(1).max(1000).default(4),
    requests_per_minute: z.number().int().min(1).max(100_000).default(60),
    poll_interval: duration('5s', 10),
    poll_max_interval: duration('60s', 10),
    request_timeout: duration('30s', 50),
    job_timeout: duration('20m', 50),
    queue_timeout: duration('60m', 50),
    download_timeout: duration('10m', 50),
    lost_after: duration('24h', 50),
    retry: z
      .object({
        max_attempts: z.number().int().min(1).max(20).default(5),
        base_delay: duration('1s', 1),
        max_delay: duration('30s', 1),
      })
      .strict()
      .prefault({}),
    pricing: z
      .object({
        silent_usd_per_second: z.number().min(0).default(0.14),
        audio_usd_per_second: z.number().min(0).default(0.14),
        voice_usd_per_second: z.number().min(0).default(0.14),
      })
      .strict()
      .prefault({}),
    budget_usd: z.number().positive().optional(),
    budget_period: z
      .union([z.enum(['run', 'folder']), z.string(), z.number()])
      .default('12h')
      .transform((v, ctx): BudgetPeriod => {
        if (v === 'run' || v === 'folder') return { kind: v };
        const ms = parseDurationMs(v);
        if (ms === undefined || ms < 60_000) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a budget period (run, folder, or a duration of at least 1m like 12h)` });
        return { kind: 'window', ms: ms ?? 0 };
      }),
    cost_alert_factor: z.number().min(1).default(1.5),
    output: z.object({ dir: z.string().min(1).default('out') }).strict().prefault({}),
    defaults: z.record(z.string(), z.unknown()).optional(),
    simulator: simulatorOptionsSchema.prefault({}),
    notify: z.object({ webhook_url: z.string().min(1).optional() }).strict().prefault({}),
  })
  .strict();

export interface Pipeline {
  /** The file it came from, or undefined for built-in defaults. */
  file: string | undefined;
  provider: ProviderName;
  baseUrl: string | undefined;
  /** Send local images under the provider's inline limit as data: URIs instead of uploading them (opt-in). */
  inlineImages: boolean;
  /** Hosts a provider's URLs may point at even on a non-public address (a private CDN endpoint in your cloud network). */
  allowedHosts: string[];
  concurrency: number;
  requestsPerMinute: number;
  /** Polls of one run are never closer than this… */
  pollIntervalMs: number;
  /** …nor further apart than this. */
  pollMaxIntervalMs: number;
  requestTimeoutMs: number;
  /** Running time after which a row is timed out (queue time apart). */
  jobTimeoutMs: number;
  /** Time a run may wait in the provider's queue before the row is timed out. */
  queueTimeoutMs: number;
  /** The most one video download may take, start to end (a trickle that never stalls still ends). */
  downloadTimeoutMs: number;
  /** A run the provider answers 404 for this long after its create is recorded lost. */
  lostAfterMs: number;
  retry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number };
  pricing: Pricing;
  budgetMicros: number | undefined;
  /** What the budget counts: this invocation, a window of time (a night), or the folder's whole life. */
  budgetPeriod: BudgetPeriod;
  /** A bill above this many times its estimate is flagged. */
  costAlertFactor: number;
  outputDir: string;
  defaults: RawDefaults;
  simulator: SimulatorSettings;
  /** Where the end-of-run notice is posted (CLIPMILL_WEBHOOK_URL in the environment wins). */
  notifyWebhookUrl: string | undefined;
}

function toPipeline(data: z.output<typeof pipelineSchema>, file: string | undefined, defaults: RawDefaults): Pipeline {
  return {
    file,
    provider: data.provider,
    baseUrl: data.base_url,
    inlineImages: data.inline_images,
    allowedHosts: data.allowed_hosts,
    concurrency: data.concurrency,
    requestsPerMinute: data.requests_per_minute,
    pollIntervalMs: data.poll_interval,
    pollMaxIntervalMs: Math.max(data.poll_interval, data.poll_max_interval),
    requestTimeoutMs: data.request_timeout,
    jobTimeoutMs: data.job_timeout,
    queueTimeoutMs: data.queue_timeout,
    downloadTimeoutMs: data.download_timeout,
    lostAfterMs: data.lost_after,
    retry: { maxAttempts: data.retry.max_attempts, baseDelayMs: data.retry.base_delay, maxDelayMs: data.retry.max_delay },
    pricing: {
      silentMicrosPerSecond: usdToMicros(data.pricing.silent_usd_per_second),
      audioMicrosPerSecond: usdToMicros(data.pricing.audio_usd_per_second),
      voiceMicrosPerSecond: usdToMicros(data.pricing.voice_usd_per_second),
    },
    budgetMicros: data.budget_usd === undefined ? undefined : usdToMicros(data.budget_usd),
    budgetPeriod: data.budget_period,
    costAlertFactor: data.cost_alert_factor,
    outputDir: data.output.dir,
    defaults,
    simulator: data.simulator,
    notifyWebhookUrl: data.notify.webhook_url,
  };
}

export function defaultPipeline(): Pipeline {
  return toPipeline(pipelineSchema.parse({}), undefined, new Map());
}

function zodProblems(error: z.ZodError, file: string, lineAt: (path: PropertyKey[]) => number): Problem[] {
  return error.issues.map((issue) => {
    const field = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    return { file, line: lineAt(issue.path), field, message };
  });
}

/** Loads and checks a pipeline file; every problem is reported with its line, then InputError. */
export async function loadPipeline(file: string): Promise<Pipeline> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InputError([{ file, line: 0, field: '', message: `cannot read the pipeline file (${(error as NodeJS.ErrnoException).code ?? String(error)})` }]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new InputError(doc.errors.map((e) => ({ file, line: e.linePos?.[0].line ?? 0, field: '', message: `YAML syntax: ${yamlMessage(e.message)}` })));
  }
  const lineAt = (at: PropertyKey[]): number => {
    for (let n = at.length; n >= 0; n--) {
      const node = doc.getIn(at.slice(0, n) as string[], true) as Node | undefined;
      if (node?.range) return lines.linePos(node.range[0]).line;
    }
    return 0;
  };
  const parsed = pipelineSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) throw new InputError(zodProblems(parsed.error, file, lineAt));
  const defaultsNode = doc.get('defaults', true) as Node | undefined;
  const defaults = defaultsNode && isMap(defaultsNode) ? readYamlMap(defaultsNode, file, lines) : new Map();
  const problems: Problem[] = [];
  for (const [name, value] of defaults) {
    if (!DEFAULTABLE_FIELDS.includes(name)) problems.push({ file, line: value.line, field: `defaults.${name}`, message: `not a row field that can have a default (allowed: ${DEFAULTABLE_FIELDS.join(', ')})` });
  }
  if (parsed.data.notify.webhook_url !== undefined) {
    const problem = checkBaseUrl(parsed.data.notify.webhook_url);
    if (problem) problems.push({ file, line: lineAt(['notify', 'webhook_url']), field: 'notify.webhook_url', message: problem });
  }
  if (parsed.data.base_url !== undefined) {
    const problem = checkBaseUrl(parsed.data.base_url);
    if (problem) problems.push({ file, line: lineAt(['base_url']), field: 'base_url', message: problem });
  }
  if (problems.length > 0) throw new InputError(problems);
  return toPipeline(parsed.data, path.resolve(file), defaults);
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Plain http is allowed only on loopback: an API key must never cross a network in clear text. */
export function checkBaseUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:' && (LOOPBACK_HOSTS.has(parsed.hostname) || parsed.hostname.startsWith('127.'))) return undefined;
  // The URL itself is not repeated: it may carry credentials or a token.
  return `${parsed.protocol}//${parsed.hostname} must be https (plain http only for loopback addresses)`;
}
