import { formatUsd } from '../money/cost.js';
import { ApiError } from '../infra/errors.js';
import { HttpClient } from '../infra/http.js';
import type { JournalEvent } from '../lifecycle/events.js';
import { Journal } from '../state/journal.js';
import { billedRuns, type BilledRun } from '../money/ledger.js';
import { configuredHosts, openProvider, pipelineForProvider } from '../providers/index.js';
import type { ListedRun } from '../providers/provider.js';
import { RateGate } from '../execute/rate-gate.js';

/** Every client_ref clipmill sends starts so; the row and request part says which row a run was for. */
const CLIENT_REF = /^(clipmill-[0-9a-f]{10}-[0-9a-f]{16})-a\d+-[0-9a-f]{8}$/;

/** A run in the journal is compared only when it was created well inside the period: the journal's time for a found run is when it was found. */
const PERIOD_MARGIN_MS = 15 * 60_000;

export interface AuditFindings {
  /** Billed at the provider with one of this folder's own client_refs, yet unknown to its journal: a lost create whose run was never found. */
  unknownToJournal: ListedRun[];
  /** Runs clipmill made for other output folders on the same account (their client_refs are not in this journal): counted, not a difference. */
  otherFolders: ListedRun[];
  /** Two or more billed runs for the same row and request: paid twice. */
  paidTwice: ListedRun[][];
  /** In this folder's journal as billed, within the period, but not in the provider's list. */
  unknownToProvider: BilledRun[];
  /** Known to both, at different costs. */
  costDifferences: { run: BilledRun; providerMicros: number }[];
}

/** Pure: the provider's runs of the period against the journal's. */
export function compareWithProvider(listed: readonly ListedRun[], events: readonly JournalEvent[], sinceMs: number): AuditFindings {
  const billed = billedRuns(events);
  const known = new Set<string>();
  const ownRefs = new Set<string>();
  for (const event of events) {
    if ('runId' in event && typeof event.runId === 'string') known.add(event.runId);
    if (event.type === 'submitting' && event.clientRef !== undefined) ownRefs.add(event.clientRef);
    // A compacted journal keeps a row's refs still unresolved; resolved ones became the run ids above.
    if (event.type === 'row_state') {
      for (const ref of [...(event.state.clientRefs ?? []), ...(event.submits ?? [])]) ownRefs.add(ref);
      if (event.state.runId !== undefined) known.add(event.state.runId);
    }
  }
  const byClipmill = listed.filter((run) => run.clientRef !== undefined && CLIENT_REF.test(run.clientRef));
  const isPaid = (run: ListedRun) => run.status === 'succeeded' || run.status === 'partial_succeeded' || (run.costMicros ?? 0) > 0;
  const ours = byClipmill.filter((run) => ownRefs.has(run.clientRef!) || known.has(run.runId));
  const paid = ours.filter(isPaid);
  const byRow = new Map<string, ListedRun[]>();
  for (const run of paid) {
    const row = CLIENT_REF.exec(run.clientRef!)![1]!;
    byRow.set(row, [...(byRow.get(row) ?? []), run]);
  }
  const listedById = new Map(listed.map((run) => [run.runId, run]));
  const inPeriod = billed.filter((run) => Date.parse(run.createdAt) >= sinceMs + PERIOD_MARGIN_MS);
  return {
    unknownToJournal: paid.filter((run) => !known.has(run.runId)),
    otherFolders: byClipmill.filter((run) => !ownRefs.has(run.clientRef!) && !known.has(run.runId) && isPaid(run)),
    paidTwice: [...byRow.values()].filter((runs) => runs.length > 1),
    unknownToProvider: inPeriod.filter((run) => !listedById.has(run.runId)),
    costDifferences: billed
      .map((run) => ({ run, providerMicros: listedById.get(run.runId)?.costMicros }))
      .filter((d): d is { run: BilledRun; providerMicros: number } => d.providerMicros !== undefined && d.providerMicros !== d.run.costMicros),
  };
}

/** Pure: the findings as lines a person acts on. */
export function renderAudit(findings: AuditFindings, o: { since: string; listed: number; balanceMicros: number | undefined; journalMicros: number }): string[] {
  const lines = [
    `provider runs since ${o.since}: ${o.listed}; this folder's ledger: ${formatUsd(o.journalMicros)} billed${o.balanceMicros === undefined ? '' : `; account balance ${formatUsd(o.balanceMicros)}`}`,
  ];
  for (const group of findings.paidTwice)
    lines.push(
      `PAID TWICE  ${group.map((r) => `${r.runId} (${formatUsd(r.costMicros ?? 0)}, ${r.createdAt ?? '?'})`).join(' and ')}: the same row and request, client_refs ${group.map((r) => r.clientRef).join(', ')}`,
    );
  for (const run of findings.unknownToJournal)
    lines.push(
      `UNKNOWN     ${run.runId} (${formatUsd(run.costMicros ?? 0)}, ${run.createdAt ?? '?'}, client_ref ${run.clientRef}): billed, made by one of this folder's creates, unknown to its journal (a lost create whose run was never found)`,
    );
  for (const run of findings.unknownToProvider)
    lines.push(`MISSING     ${run.runId} (${run.key}, ${formatUsd(run.costMicros)}): in this folder's ledger, not in the provider's list`);
  for (const d of findings.costDifferences)
    lines.push(
      `COST        ${d.run.runId} (${d.run.key}): ledger ${formatUsd(d.run.costMicros)} (${d.run.costSource}), provider ${formatUsd(d.providerMicros)}`,
    );
  const problems = findings.paidTwice.length + findings.unknownToJournal.length + findings.unknownToProvider.length + findings.costDifferences.length;
  if (findings.otherFolders.length > 0)
    lines.push(
      `other output folders: ${findings.otherFolders.length} billed run${findings.otherFolders.length === 1 ? '' : 's'} by clipmill on this account, ${formatUsd(findings.otherFolders.reduce((t, r) => t + (r.costMicros ?? 0), 0))} (audit those folders for them)`,
    );
  lines.push(problems === 0 ? 'the provider and this folder agree' : `${problems} difference${problems === 1 ? '' : 's'}: see above`);
  return lines;
}

/** `clipmill audit`: the provider's own list of runs of the period against the journal; free, read-only. Exit 0 when they agree, 1 on any difference, 2 when it cannot audit. */
export async function runAudit(o: {
  outDir?: string;
  pipelineFile?: string;
  env?: NodeJS.ProcessEnv;
  sinceMs: number;
}): Promise<{ exitCode: number; lines: string[]; findings?: AuditFindings }> {
  const env = o.env ?? process.env;
  const pipeline = await pipelineForProvider(o, env);
  const events = await Journal.events(pipeline.outputDir);
  const http = new HttpClient({ connections: 4, allowedHosts: configuredHosts(pipeline, env) });
  const handle = await openProvider(pipeline, env, http, new RateGate(pipeline.requestsPerMinute));
  const signal = AbortSignal.timeout(10 * 60_000);
  try {
    let listed: ListedRun[];
    try {
      listed = await handle.provider.listRunsSince(o.sinceMs, signal);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'NO_RUN_LIST') return { exitCode: 2, lines: [`cannot audit: ${error.message}`] };
      throw error;
    }
    const balanceMicros = await handle.provider.balance(signal).catch(() => undefined);
    const findings = compareWithProvider(listed, events, o.sinceMs);
    const journalMicros = billedRuns(events).reduce((sum, run) => sum + run.costMicros, 0);
    const lines = renderAudit(findings, { since: new Date(o.sinceMs).toISOString(), listed: listed.length, balanceMicros, journalMicros });
    const differences = findings.paidTwice.length + findings.unknownToJournal.length + findings.unknownToProvider.length + findings.costDifferences.length;
    return { exitCode: differences === 0 ? 0 : 1, lines, findings };
  } finally {
    await handle.close();
    await http.close();
  }
}
