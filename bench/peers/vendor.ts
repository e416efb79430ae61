/**
 * The vendor pattern, as a peer process: create a run, poll it every 2 s until it ends, download the
 * video; 50 rows at a time, no rate gate, no journal. A refused create or poll (429, 5xx) is simply
 * tried again at the next tick, as a loop around the vendor's SDK does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { inputOf, readConfig, runPeer } from './common.js';

const config = readConfig();
const pollMs = config.pollMs ?? 2_000;
const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
const CREATE = `${config.url}/v1/models/kuaishou/kling-video/v3/pro/image-to-video/runs`;

interface RunBody {
  id: string;
  status_code: string;
  output: { outputs: { type: string; url: string }[] } | null;
}

async function create(i: number, signal: AbortSignal): Promise<string> {
  const { id, input } = inputOf(i);
  for (;;) {
    const created = await request(CREATE, { method: 'POST', headers, body: JSON.stringify({ input, metadata: { clipmill_row: id } }), signal });
    if (created.statusCode === 201 || created.statusCode === 200) return ((await created.body.json()) as RunBody).id;
    await created.body.dump();
    if (created.statusCode !== 429 && created.statusCode < 500) throw new Error(`create answered ${created.statusCode}`);
    await sleep(pollMs, undefined, { signal });
  }
}

await runPeer(config, async (i, signal) => {
  const runId = await create(i, signal);
  for (;;) {
    await sleep(pollMs, undefined, { signal });
    const polled = await request(`${config.url}/v1/runs/${runId}`, { headers, signal });
    if (polled.statusCode !== 200) {
      await polled.body.dump();
      continue;
    }
    const body = (await polled.body.json()) as RunBody;
    if (body.status_code === 'failed' || body.status_code === 'canceled') throw new Error(`run ${body.status_code}`);
    const video = body.output?.outputs.find((o) => o.type === 'video');
    if (body.status_code === 'succeeded' && video) {
      const file = await request(video.url, { signal });
      await file.body.arrayBuffer();
      return;
    }
  }
});
