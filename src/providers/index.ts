import { checkBaseUrl, resolvePipeline, type Pipeline } from '../config/pipeline.js';
import { redactUrl, registerSecret, type HttpClient } from '../infra/http.js';
import { InputError, type Problem } from '../load/problem.js';
import type { RequestGate } from '../execute/rate-gate.js';
import { FAL_QUEUE_URL, FAL_REST_URL, FalProvider } from './fal.js';
import type { Provider } from './provider.js';
import { RUNFLOW_BASE_URL, RunflowProvider } from './runflow.js';
import { SIMULATOR_HOST } from '../simulator/options.js';
import { Simulator } from '../simulator/server.js';

export interface ProviderHandle {
  provider: Provider;
  /** Where requests go (no secrets in it), for the log. */
  endpoint: string;
  close(): Promise<void>;
}

/** The environment each real provider reads: its key, and where to send requests instead of its own host. */
const ENVIRONMENT = {
  runflow: { key: 'RUNFLOW_API_KEY', baseUrl: 'RUNFLOW_BASE_URL' },
  fal: { key: 'FAL_KEY', baseUrl: 'FAL_BASE_URL', storageUrl: 'FAL_STORAGE_URL' },
} as const;

/**
 * The hosts the user configured for this pipeline (the provider's base URLs, the built-in simulator):
 * the only ones plain http or a non-public address may be, for API requests and for URLs a provider returns.
 */
export function configuredHosts(pipeline: Pipeline, env: NodeJS.ProcessEnv): Set<string> {
  const urls: (string | undefined)[] =
    pipeline.provider === 'simulator'
      ? [`http://${SIMULATOR_HOST}`]
      : pipeline.provider === 'fal'
        ? [env.FAL_BASE_URL?.trim() || pipeline.baseUrl || FAL_QUEUE_URL, env.FAL_STORAGE_URL?.trim() || FAL_REST_URL]
        : [env.RUNFLOW_BASE_URL?.trim() || pipeline.baseUrl || RUNFLOW_BASE_URL];
  const hosts = new Set<string>(pipeline.allowedHosts);
  for (const url of urls) {
    try {
      if (url) hosts.add(new URL(url).hostname.replace(/^\[|\]$/g, ''));
    } catch {
      // an invalid base URL is reported by providerProblems
    }
  }
  return hosts;
}

/** The pipeline of a command that talks to the provider (audit, repair with manifests): file and --out, then its key checked. */
export async function pipelineForProvider(o: { pipelineFile?: string | undefined; outDir?: string | undefined }, env: NodeJS.ProcessEnv): Promise<Pipeline> {
  const pipeline = await resolvePipeline(
    { ...(o.pipelineFile !== undefined && { pipelineFile: o.pipelineFile }), ...(o.outDir !== undefined && { outDir: o.outDir }) },
    env,
  );
  const problems = providerProblems(pipeline, env);
  if (problems.length > 0) throw new InputError(problems);
  return pipeline;
}

/** Checks what a provider needs from the environment, before any manifest is read or money moves. */
export function providerProblems(pipeline: Pipeline, env: NodeJS.ProcessEnv): Problem[] {
  if (pipeline.provider === 'simulator') return [];
  const file = pipeline.file ?? '(built-in pipeline defaults)';
  const names = ENVIRONMENT[pipeline.provider];
  const problems: Problem[] = [];
  if (!env[names.key]?.trim())
    problems.push({
      file,
      line: 0,
      field: 'provider',
      message: `${pipeline.provider} needs an API key: set ${names.key} in the environment (never in a file)`,
    });
  for (const name of [names.baseUrl, ...('storageUrl' in names ? [names.storageUrl] : [])]) {
    const envUrl = env[name]?.trim();
    const problem = envUrl ? checkBaseUrl(envUrl) : undefined;
    if (problem) problems.push({ file: name, line: 0, field: '', message: problem });
  }
  return problems;
}

/** Builds the configured provider; `simulator` starts the built-in one on loopback, in this process. */
export async function openProvider(pipeline: Pipeline, env: NodeJS.ProcessEnv, http: HttpClient, gate: RequestGate): Promise<ProviderHandle> {
  const problems = providerProblems(pipeline, env);
  if (problems.length > 0) throw new InputError(problems);
  const common = { http, gate, requestTimeoutMs: pipeline.requestTimeoutMs, retry: pipeline.retry };
  if (pipeline.provider === 'simulator') {
    const simulator = new Simulator(pipeline.simulator);
    const baseUrl = await simulator.start();
    const key = pipeline.simulator.api_key ?? 'simulator-key';
    const fal = pipeline.simulator.protocol === 'fal';
    const provider = fal ? new FalProvider({ ...common, baseUrl, storageUrl: baseUrl, apiKey: key }) : new RunflowProvider({ ...common, baseUrl, apiKey: key });
    return { provider, endpoint: `built-in simulator (${fal ? 'fal' : 'Runflow'} protocol) at ${baseUrl}`, close: () => simulator.close() };
  }
  if (pipeline.provider === 'fal') {
    const baseUrl = env.FAL_BASE_URL?.trim() || pipeline.baseUrl || FAL_QUEUE_URL;
    registerSecret(env.FAL_KEY!.trim());
    // A queue pointed elsewhere (a simulator, a proxy) takes the storage uploads too, unless FAL_STORAGE_URL says otherwise.
    const storageUrl = env.FAL_STORAGE_URL?.trim() || (baseUrl === FAL_QUEUE_URL ? FAL_REST_URL : baseUrl);
    return {
      provider: new FalProvider({ ...common, baseUrl, storageUrl, apiKey: env.FAL_KEY!.trim() }),
      endpoint: `fal at ${redactUrl(baseUrl)}`,
      close: async () => {},
    };
  }
  const baseUrl = env.RUNFLOW_BASE_URL?.trim() || pipeline.baseUrl || RUNFLOW_BASE_URL;
  registerSecret(env.RUNFLOW_API_KEY!.trim());
  return {
    provider: new RunflowProvider({ ...common, baseUrl, apiKey: env.RUNFLOW_API_KEY!.trim() }),
    endpoint: `Runflow at ${redactUrl(baseUrl)}`,
    close: async () => {},
  };
}
