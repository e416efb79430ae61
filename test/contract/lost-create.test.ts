import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { test, type TestContext } from 'node:test';
import { ApiError } from '../../src/infra/errors.js';
import { HttpClient } from '../../src/infra/http.js';
import { applyEvent, type JournalEvent } from '../../src/lifecycle/events.js';
import { lookUpTimes, lookUpVerdict } from '../../src/lifecycle/lost-create.js';
import { nextCursor, RunflowProvider } from '../../src/providers/runflow.js';
import { runManifests } from '../../src/commands/run.js';
import { RateGate } from '../../src/execute/rate-gate.js';
import { envFor, fastPipeline, runCli, scriptedProxy, startSimulator, workspace, write } from '../helpers.js';

const quiet = { print: () => {} };
/** The one list query clipmill may send: the documented exact match on client_ref, a limit, and the pq cursor. */
const DOCUMENTED_LOOKUP = /^\?q=client_ref\.EQ%3A%27clipmill-[0-9a-f]{10}-[0-9a-f]{16}-a\d+-[0-9a-f]{8}%27&limit=100(&pq=[\w-]+)?$/;

interface Page {
  status?: number;
  body: unknown;
}

/** A list server answering exactly as documented: `{items, next_pq | next}` pages, the `pq` cursor, the client_ref.EQ filter; anything else is a 400. */
async function listServer(t: TestContext, pages: (clientRef: string, cursor: string | null) => Page): Promise<{ url: string; queries: string[] }> {
  const queries: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    queries.push(url.search);
    const filter = /^client_ref\.EQ:'([^']+)'$/.exec(url.searchParams.get('q') ?? '');
    const undocumented = [...url.searchParams.keys()].filter((k) => !['q', 'limit', 'sort_by', 'pq'].includes(k));
    const page: Page =
      url.pathname !== '/v1/runs' || !filter || undocumented.length > 0
        ? { status: 400, body: { code: 'BAD_REQUEST', message: 'invalid query', errors: null } }
        : pages(filter[1]!, url.searchParams.get('pq'));
    res.writeHead(page.status ?? 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(page.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, queries };
}

function client(t: TestContext, baseUrl: string): RunflowProvider {
  const http = new HttpClient({ allowedHosts: new Set(['127.0.0.1']) });
  t.after(() => http.close());
  return new RunflowProvider({
    http,
    gate: new RateGate(100_000),
    requestTimeoutMs: 2000,
    retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
    baseUrl,
    apiKey: 'k',
  });
}

const REF = 'clipmill-0123456789-abcdef0123456789-a1-0badf00d';

test('findRuns reads every page of the documented list (next_pq, then the sibling spelling next) and finds the run on page 3', async (t) => {
  const server = await listServer(t, (ref, cursor) => {
    if (cursor === null) return { body: { items: [], next_pq: 'p2' } };
    if (cursor === 'p2') return { body: { items: [{ id: 'someone-else', client_ref: 'another-ref', status_code: 'queued' }], next: 'p3' } };
    return { body: { items: [{ id: 'the-run', client_ref: ref, status_code: 'running' }], prev_pq: 'p2' } };
  });
  assert.deepEqual(await client(t, server.url).findRuns(REF, AbortSignal.timeout(5000)), ['the-run'], 'a run listed with another client_ref is not ours');
  assert.equal(server.queries.length, 3);
  assert.ok(
    server.queries.every((q) => /^\?q=client_ref\.EQ%3A%27clipmill-[\w-]+%27&limit=100(&pq=p[23])?$/.test(q)),
    server.queries.join('\n'),
  );
});

test('findRuns: an empty answer only after the last page; a refused query, an undocumented body or a looping cursor is "cannot tell", never "no run"', async (t) => {
  const empty = await listServer(t, (_ref, cursor) => (cursor === null ? { body: { items: [], next_pq: 'p2' } } : { body: { items: [] } }));
  assert.deepEqual(await client(t, empty.url).findRuns(REF, AbortSignal.timeout(5000)), []);
  assert.equal(empty.queries.length, 2);

  const refused = await listServer(t, () => ({
    status: 422,
    body: { code: 'VALIDATION_ERROR', message: 'unsupported filter', errors: [{ field: 'q', message: 'unsupported' }] },
  }));
  await assert.rejects(
    client(t, refused.url).findRuns(REF, AbortSignal.timeout(5000)),
    (e: unknown) => e instanceof ApiError && e.code === 'LIST_QUERY_REFUSED' && e.message.includes('refused the run-list query'),
  );

  const invented = await listServer(t, () => ({ body: { data: [], next_pq: null } }));
  await assert.rejects(client(t, invented.url).findRuns(REF, AbortSignal.timeout(5000)), (e: unknown) => e instanceof ApiError && e.code === 'BAD_RESPONSE');

  const looping = await listServer(t, () => ({ body: { items: [], next_pq: 'same' } }));
  await assert.rejects(
    client(t, looping.url).findRuns(REF, AbortSignal.timeout(5000)),
    (e: unknown) => e instanceof ApiError && e.code === 'LIST_CURSOR_LOOP' && e.kind === 'row',
  );
});

test('the lost-create rule by table: look-ups at 0.1, 0.5 and 1 request timeout after giving up; "not made" (or an earlier attempt\'s run) only from a read a whole timeout later', () => {
  assert.deepEqual(lookUpTimes(1000, 1000, 30_000), [4000, 16_000, 31_000]);
  assert.deepEqual(lookUpTimes(1000, 20_000, 30_000), [31_000], 'overdue checks collapse into the last one');
  assert.deepEqual(lookUpTimes(1000, 90_000, 30_000), [90_000], 'a rerun long after: one look-up, now');
  const rows: [Parameters<typeof lookUpVerdict>[0], number, string][] = [
    [{ kind: 'found', latest: ['r'], earlier: [] }, 0, 'attach'],
    [{ kind: 'found', latest: ['r'], earlier: ['old'] }, 60_000, 'attach'],
    [{ kind: 'found', latest: [], earlier: ['old'] }, 29_999, 'look_again'],
    [{ kind: 'found', latest: [], earlier: ['old'] }, 30_000, 'attach'],
    [{ kind: 'none' }, 29_999, 'look_again'],
    [{ kind: 'none' }, 30_000, 'not_created'],
    [{ kind: 'cannot_tell', reason: 'refused' }, 60_000, 'unknown'],
  ];
  for (const [answer, elapsed, verdict] of rows) assert.equal(lookUpVerdict(answer, 0, elapsed, 30_000), verdict, `${answer.kind} after ${elapsed} ms`);
});

test('creates whose answers are lost, a list that lags and starts with empty pages: every run is found by client_ref on page 3, created = billed = rows', async (t) => {
  const simulator = await startSimulator(t, { create_response_delay_ms: 400, list_empty_pages: 2, list_page_size: 1, list_delay_ms: 100 });
  const dir = await workspace(t);
  const rows = Array.from({ length: 5 }, (_, i) => `  - {id: r${i}, image: images/hero-landscape.jpg, prompt: "lost ${i}", duration: ${3 + i}}`);
  const file = await write(dir, 'm.yaml', ['rows:', ...rows].join('\n'));
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 250ms'));
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    logLine: (l) => logs.push(l),
    ...quiet,
  });
  assert.equal(result.exitCode, 0, logs.join('\n'));
  assert.equal(result.report?.totals.done, 5);
  assert.equal(simulator.created.length, 5, 'no create was repeated');
  assert.equal(simulator.billed.length, 5);
  assert.equal(logs.filter((l) => /found run .* by client_ref .* re-attached, not resubmitted/.test(l)).length, 5, logs.join('\n'));
  assert.ok(simulator.listQueries.length >= 15, 'each look-up read every page: two empty ones, then the run');
  assert.equal(simulator.stats.refusedLists, 0);
  for (const query of simulator.listQueries) {
    assert.match(query, DOCUMENTED_LOOKUP);
    assert.doesNotMatch(query, /next_pq=|[?&]q=[^c]/, 'never the old bare-token query or next_pq= cursor');
  }
  for (const entry of simulator.created)
    assert.equal((entry.metadata as { clipmill_submit: string }).clipmill_submit, simulator.run(entry.id)?.clientRef, 'the create carried its client_ref');
});

test('a create refused with a 503 before any run was made is resubmitted only after every page says so, a whole request timeout after the create', async (t) => {
  const simulator = await startSimulator(t);
  const proxy = await scriptedProxy(t, simulator.url, (method, key, n) =>
    method === 'POST' && key.endsWith('/runs') && n === 1 ? { status: 503, body: { code: 'MODEL_UNAVAILABLE', message: 'busy', errors: null } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 400ms'));
  const out = path.join(dir, 'out');
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    logLine: () => {},
    ...quiet,
  });
  assert.equal(result.exitCode, 0);
  assert.equal(simulator.created.length, 1);
  const events = (await readFile(path.join(out, '.clipmill', 'journal.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as JournalEvent);
  const sent = events.find((e) => e.type === 'submitting')!;
  const notMade = events.find((e) => e.type === 'not_submitted' && e.code === 'NOT_CREATED')!;
  assert.ok(
    Date.parse(notMade.at) - Date.parse(sent.at) >= 400,
    `"not made" was concluded ${Date.parse(notMade.at) - Date.parse(sent.at)} ms after the create`,
  );
  const create = proxy.requests.find((r) => r.key.startsWith('POST') && r.key.endsWith('/runs'))!;
  const lookUps = proxy.requests.filter((r) => r.key === 'GET /v1/runs');
  assert.ok(lookUps.length >= 1 && lookUps.at(-1)!.at - create.at >= 400, 'the deciding look-up came a whole request timeout after the create');
});

test('a run list that refuses the query leaves the lost create unknown (not resubmitted, said why); the next night finds the run', async (t) => {
  const simulator = await startSimulator(t, { create_response_delay_ms: 300 });
  const proxy = await scriptedProxy(t, simulator.url, (method, key) =>
    method === 'GET' && key === 'GET /v1/runs' ? { status: 400, body: { code: 'BAD_REQUEST', message: 'filter not supported', errors: null } } : 'pass',
  );
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 150ms'));
  const out = path.join(dir, 'out');
  const logs: string[] = [];
  const first = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: out,
    env: { RUNFLOW_API_KEY: 'k', RUNFLOW_BASE_URL: proxy.url },
    logLine: (l) => logs.push(l),
    ...quiet,
  });
  assert.equal(first.exitCode, 1);
  assert.ok(
    logs.some((l) => /refused the run-list query .* it stays unresolved and is not resubmitted/.test(l)),
    logs.join('\n'),
  );
  assert.equal(simulator.created.length, 1);
  const status = await runCli(['status', '--out', out]);
  assert.match(
    status.stdout,
    /unanswered create\s+m\/one\s+the create got no answer; the next run looks it up by client_ref clipmill-[0-9a-f]{10}-[0-9a-f]{16}-a1-[0-9a-f]{8}/,
    'a person can search the dashboard for it',
  );

  const second = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), logLine: () => {}, ...quiet });
  assert.equal(second.plan?.counts.unknown, 1);
  assert.equal(second.exitCode, 0);
  assert.equal(simulator.created.length, 1, 'found, not paid twice');
});

test('a create journaled by an older clipmill without a client_ref is left unknown with advice, never resubmitted blindly', async (t) => {
  const simulator = await startSimulator(t);
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: one, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline());
  const out = path.join(dir, 'out');
  const dry = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), dryRun: true, ...quiet });
  const item = dry.plan!.items[0]!;
  await mkdir(path.join(out, '.clipmill'), { recursive: true });
  await write(
    out,
    '.clipmill/journal.jsonl',
    `${JSON.stringify({ at: new Date().toISOString(), key: item.key, request: item.request, type: 'submitting', attempt: 1 })}\n`,
  );
  const logs: string[] = [];
  const result = await runManifests({ manifests: [file], pipelineFile, outDir: out, env: envFor(simulator), logLine: (l) => logs.push(l), ...quiet });
  assert.equal(result.exitCode, 1);
  assert.ok(
    logs.some((l) => /older clipmill without a client_ref.*--resubmit-unknown only if there is none/.test(l)),
    logs.join('\n'),
  );
  assert.equal(simulator.created.length, 0);
});

test('a slow provider that makes the run after the client gave up on the create: still found by client_ref, one run, because patience counts from giving up', async (t) => {
  const simulator = await startSimulator(t, { create_commit_delay_ms: 300 });
  const dir = await workspace(t);
  const file = await write(dir, 'm.yaml', 'rows:\n  - {id: slow, image: images/hero-landscape.jpg, prompt: p, duration: 5}\n');
  const pipelineFile = await write(dir, 'pipeline.yaml', fastPipeline().replace('request_timeout: 5s', 'request_timeout: 200ms'));
  const logs: string[] = [];
  const result = await runManifests({
    manifests: [file],
    pipelineFile,
    outDir: path.join(dir, 'out'),
    env: envFor(simulator),
    logLine: (l) => logs.push(l),
    ...quiet,
  });
  assert.equal(result.exitCode, 0, logs.join('\n'));
  assert.equal(simulator.created.length, 1, 'the run made 100 ms after the client gave up was found, not paid for again');
  assert.ok(
    logs.some((l) => l.includes('re-attached, not resubmitted')),
    logs.join('\n'),
  );
});

test("a row's client_refs: every attempt since its last known run is looked up; answered refusals and known runs drop them", () => {
  const at = new Date().toISOString();
  const base = { at, key: 'm/a', request: 'h' };
  let state = applyEvent(undefined, { ...base, type: 'submitting', attempt: 1, clientRef: 'ref-1' });
  state = applyEvent(state, { ...base, type: 'not_submitted', code: 'NOT_CREATED', message: 'not listed' });
  state = applyEvent(state, { ...base, type: 'submitting', attempt: 2, clientRef: 'ref-2' });
  assert.deepEqual(state.clientRefs, ['ref-1', 'ref-2'], 'a run "not listed" may still turn up late');
  state = applyEvent(state, { ...base, type: 'not_submitted', code: 'RATE_LIMITED', message: '429' });
  assert.deepEqual(state.clientRefs, ['ref-1'], 'a 429 made nothing: that attempt cannot turn up');
  state = applyEvent(state, { ...base, type: 'submitting', attempt: 3, clientRef: 'ref-3' });
  state = applyEvent(state, { ...base, type: 'submitted', runId: 'run-3' });
  assert.equal(state.clientRefs, undefined, 'the row has its run');
  assert.equal(state.clientRef, 'ref-3');
  assert.equal(state.submittingAtMs, Date.parse(at));
});

test('cursors: next_pq is opaque even when it looks like a path; a next link without pq cannot be followed (cannot tell, not "last page")', () => {
  assert.equal(nextCursor({ items: [], next_pq: '/x+Ab9==' }), '/x+Ab9==');
  assert.throws(
    () => nextCursor({ items: [], next: '/v1/runs?q=x' }),
    (e: unknown) => e instanceof ApiError && e.code === 'LIST_CURSOR_UNREADABLE' && e.kind === 'row',
  );
});
