import type { Problem } from '../load/problem.js';
import type { ProviderName } from './schema.js';

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

interface EnvSetting {
  /** The pipeline setting it replaces. */
  path: readonly string[];
  /** Only for this provider's pipelines. */
  provider?: ProviderName;
  /**
   * Checked here, for every command; a base URL is checked by `providerProblems` when a command is
   * about to talk to the provider (`clipmill status` never does).
   */
  checkedAtLoad: boolean;
}

/**
 * Every setting the environment can change, applied once at load; the environment wins over the file.
 * API keys are secrets, not settings: the provider reads them itself (RUNFLOW_API_KEY, FAL_KEY), as it
 * does fal's upload endpoint (FAL_STORAGE_URL), which the pipeline file has no setting for.
 */
export const ENV_SETTINGS = {
  CLIPMILL_WEBHOOK_URL: { path: ['notify', 'webhook_url'], checkedAtLoad: true },
  RUNFLOW_BASE_URL: { path: ['base_url'], provider: 'runflow', checkedAtLoad: false },
  FAL_BASE_URL: { path: ['base_url'], provider: 'fal', checkedAtLoad: false },
} as const satisfies Record<string, EnvSetting>;

/** The environment's settings for a pipeline of `provider`: [variable, path, value]. */
export function envSettings(env: NodeJS.ProcessEnv, provider: ProviderName): [name: string, path: readonly string[], value: string][] {
  const found: [string, readonly string[], string][] = [];
  for (const [name, setting] of Object.entries(ENV_SETTINGS) as [string, EnvSetting][]) {
    const value = env[name]?.trim();
    if (value && (setting.provider === undefined || setting.provider === provider)) found.push([name, setting.path, value]);
  }
  return found;
}

/** The environment's settings that are wrong, named by their variable. */
export function envProblems(env: NodeJS.ProcessEnv, provider: ProviderName): Problem[] {
  const problems: Problem[] = [];
  for (const [name, , value] of envSettings(env, provider)) {
    const problem = (ENV_SETTINGS[name as keyof typeof ENV_SETTINGS] as EnvSetting).checkedAtLoad ? checkBaseUrl(value) : undefined;
    if (problem) problems.push({ file: name, line: 0, field: '', message: problem });
  }
  return problems;
}
