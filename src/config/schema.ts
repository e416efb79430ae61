import { z } from 'zod';
import type { BudgetPeriod } from '../money/period.js';
import { usdToMicros } from '../money/cost.js';
import { simulatorOptionsSchema } from '../simulator/options.js';
import { duration, parseDurationMs } from './duration.js';

export const PROVIDERS = ['runflow', 'fal', 'simulator'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

/** "run", "folder", or a window of at least a minute ("12h"). */
const budgetPeriod = z
  .union([z.enum(['run', 'folder']), z.string(), z.number()])
  .default('12h')
  .transform((v, ctx): BudgetPeriod => {
    if (v === 'run' || v === 'folder') return { kind: v };
    const ms = parseDurationMs(v);
    if (ms === undefined || ms < 60_000)
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a budget period (run, folder, or a duration of at least 1m like 12h)` });
    return { kind: 'window', ms: ms ?? 0 };
  });

/** A public base URL (a report link): http or https, no credentials, no query or fragment. The URL itself is never repeated: it may hold a secret. */
function checkPublicUrl(value: string, ctx: z.RefinementCtx): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a URL (like https://reports.example.com/nightly/)' });
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') ctx.addIssue({ code: 'custom', message: `must be an https (or http) URL, not ${url.protocol}` });
  else if (url.username !== '' || url.password !== '')
    ctx.addIssue({ code: 'custom', message: 'must not hold credentials (user:password@): the link is sent to a chat and shown to everyone there' });
  else if (url.search !== '' || url.hash !== '')
    ctx.addIssue({ code: 'custom', message: 'must have no query or fragment (a query may hold a token): the link is this base + report.html' });
}

/** The base as a folder: `…/nightly` and `…/nightly/` both link `…/nightly/report.html`. */
function asFolder(url: string | undefined): string | undefined {
  return url === undefined || url.endsWith('/') ? url : `${url}/`;
}

/**
 * The pipeline file, field by field: the one place its keys, limits and defaults are written. CLI flags
 * that override a setting are checked by the same field (see `flags.ts`), the environment's by `load.ts`.
 */
export const pipelineFields = z
  .object({
    provider: z.enum(PROVIDERS).default('runflow'),
    /** Where the provider's API is (RUNFLOW_BASE_URL / FAL_BASE_URL in the environment win). */
    base_url: z.string().optional(),
    /** Send local images under the provider's inline limit as data: URIs instead of uploading them (opt-in). */
    inline_images: z.boolean().default(false),
    /** Hosts a provider's URLs may point at even on a non-public address (a private CDN endpoint in your cloud network). */
    allowed_hosts: z.array(z.string().min(1)).default([]),
    /** Rows in flight at once (`--concurrency`). */
    concurrency: z.number().int().min(1).max(1000).default(4),
    /** API requests per minute (`--rpm`). */
    requests_per_minute: z.number().int().min(1).max(100_000).default(60),
    /** Polls of one run are never closer than this… */
    poll_interval: duration('5s', 10),
    /** …nor further apart than this (never below poll_interval). */
    poll_max_interval: duration('60s', 10),
    request_timeout: duration('30s', 50),
    /** Running time after which a row is timed out (queue time apart). */
    job_timeout: duration('20m', 50),
    /** Time a run may wait in the provider's queue before the row is timed out. */
    queue_timeout: duration('60m', 50),
    /** The most one video download may take, start to end (a trickle that never stalls still ends). */
    download_timeout: duration('10m', 50),
    /** A run the provider answers 404 for this long after its create is recorded lost. */
    lost_after: duration('24h', 50),
    retry: z
      .object({
        max_attempts: z.number().int().min(1).max(20).default(5),
        base_delay: duration('1s', 1),
        max_delay: duration('30s', 1),
      })
      .strict()
      .prefault({}),
    /** Dollars per second of video, by audio mode. */
    pricing: z
      .object({
        silent_usd_per_second: z.number().min(0).default(0.14),
        audio_usd_per_second: z.number().min(0).default(0.14),
        voice_usd_per_second: z.number().min(0).default(0.14),
      })
      .strict()
      .prefault({}),
    /** The most new runs may cost in the budget's period (`--max-cost` lowers it for one invocation). */
    budget_usd: z.number().positive().optional(),
    /** What the budget counts: this invocation, a window of time (a night), or the folder's whole life. */
    budget_period: budgetPeriod,
    /** A bill above this many times its estimate is flagged. */
    cost_alert_factor: z.number().min(1).default(1.5),
    /** Videos, reports and the journal (`--out`). */
    output: z
      .object({ dir: z.string().min(1).default('out') })
      .strict()
      .prefault({}),
    /** Row fields every manifest inherits (checked as rows, with their lines, by `load.ts`). */
    defaults: z.record(z.string(), z.unknown()).optional(),
    /** The built-in simulator's knobs, the same as `clipmill simulate`'s flags. */
    simulator: simulatorOptionsSchema.prefault({}),
    /** Where the end-of-run notice is posted (CLIPMILL_WEBHOOK_URL in the environment wins), in which shape, and where the report is served. */
    notify: z
      .object({
        webhook_url: z.string().min(1).optional(),
        /** The public base URL the output folder is served at: the notice links `<public_url>/report.html`. */
        public_url: z.string().superRefine(checkPublicUrl).optional(),
        /** `generic`: `{text, content, clipmill}` (Slack, Teams, Mattermost, Google Chat, Discord); `slack`: Slack's `text` + `blocks`. */
        format: z.enum(['generic', 'slack']).default('generic'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The pipeline file as written (snake_case, any subset). */
export type PipelineInput = z.input<typeof pipelineFields>;

/** The same settings in the program's shape: camelCase, units in names, money in micro-dollars. */
export const pipelineSchema = pipelineFields.transform((p) => ({
  provider: p.provider,
  baseUrl: p.base_url,
  inlineImages: p.inline_images,
  allowedHosts: p.allowed_hosts,
  concurrency: p.concurrency,
  requestsPerMinute: p.requests_per_minute,
  pollIntervalMs: p.poll_interval,
  pollMaxIntervalMs: Math.max(p.poll_interval, p.poll_max_interval),
  requestTimeoutMs: p.request_timeout,
  jobTimeoutMs: p.job_timeout,
  queueTimeoutMs: p.queue_timeout,
  downloadTimeoutMs: p.download_timeout,
  lostAfterMs: p.lost_after,
  retry: { maxAttempts: p.retry.max_attempts, baseDelayMs: p.retry.base_delay, maxDelayMs: p.retry.max_delay },
  pricing: {
    silentMicrosPerSecond: usdToMicros(p.pricing.silent_usd_per_second),
    audioMicrosPerSecond: usdToMicros(p.pricing.audio_usd_per_second),
    voiceMicrosPerSecond: usdToMicros(p.pricing.voice_usd_per_second),
  },
  /** The budget that applies: the lower of budget_usd and `--max-cost`. */
  budgetMicros: p.budget_usd === undefined ? undefined : usdToMicros(p.budget_usd),
  budgetPeriod: p.budget_period,
  costAlertFactor: p.cost_alert_factor,
  outputDir: p.output.dir,
  simulator: p.simulator,
  notifyWebhookUrl: p.notify.webhook_url,
  notifyPublicUrl: asFolder(p.notify.public_url),
  notifyFormat: p.notify.format,
}));

export type PipelineSettings = z.output<typeof pipelineSchema>;
