import { formatUsd } from '../money/cost.js';
import { HttpClient } from '../infra/http.js';
import { InputError } from '../load/problem.js';
import { configuredHosts, openProvider, providerProblems } from '../providers/index.js';
import type { AccountCheck } from '../providers/provider.js';
import { resolvePipeline } from '../config/pipeline.js';
import { estimateManifests } from './estimate.js';
import type { RunOptions } from './prepare.js';
import { RateGate } from '../execute/rate-gate.js';

export interface DoctorResult {
  exitCode: number;
  endpoint: string;
  estimateMicros: number;
  checks: AccountCheck[];
}

/** Pure: the checks as lines a person reads before a paid night. */
export function renderDoctor(result: DoctorResult): string[] {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  return [
    `checked ${result.endpoint} with free, read-only requests (nothing created, nothing billed)`,
    ...result.checks.map((c) => `  ${mark[c.status]}  ${c.name}: ${c.detail}`),
    result.checks.some((c) => c.status === 'fail')
      ? 'not ready: fix what FAIL says before a paid night'
      : `ready${result.checks.some((c) => c.status === 'warn') ? ' (read the warnings)' : ''}`,
  ];
}

/**
 * `clipmill doctor`: before the first paid night, the provider's free endpoints only (health, balance,
 * a one-item filtered run list, the clock), and tonight's estimate when manifests are given.
 */
export async function runDoctor(options: Pick<RunOptions, 'manifests' | 'pipelineFile' | 'outDir' | 'env'>): Promise<DoctorResult> {
  const env = options.env ?? process.env;
  const pipeline = await resolvePipeline(options, env);
  const problems = providerProblems(pipeline, env);
  if (problems.length > 0) throw new InputError(problems);
  const estimateMicros = options.manifests.length > 0 ? (await estimateManifests({ ...options, env })).plan.submitMicros : 0;
  const http = new HttpClient({ connections: 4, allowedHosts: configuredHosts(pipeline, env) });
  const handle = await openProvider(pipeline, env, http, new RateGate(pipeline.requestsPerMinute));
  try {
    const checks = await handle.provider.checkAccount(AbortSignal.timeout(pipeline.requestTimeoutMs * 4), estimateMicros);
    if (options.manifests.length === 0)
      checks.push({
        name: 'estimate',
        status: 'warn',
        detail: "no manifests given: the balance was not compared with tonight's work (clipmill doctor <manifests>…)",
      });
    else checks.push({ name: 'estimate', status: 'ok', detail: `tonight's remaining work is estimated at ${formatUsd(estimateMicros)}` });
    return { exitCode: checks.some((c) => c.status === 'fail') ? 1 : 0, endpoint: handle.endpoint, estimateMicros, checks };
  } finally {
    await handle.close();
    await http.close();
  }
}
