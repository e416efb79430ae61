/**
 * The official `@fal-ai/client`, as a peer process: `fal.subscribe` (its default polling mode and
 * interval), then the video downloaded; 50 rows at a time. The client only knows fal's hosts, so a
 * request middleware sends them to the simulator (as test/contract/fal-client.test.ts does). Its
 * own retries (429 and 5xx, with backoff) are left as they are.
 */
import { createFalClient } from '@fal-ai/client';
import { inputOf, readConfig, runPeer } from './common.js';

const config = readConfig();
const ENDPOINT = 'fal-ai/kling-video/v3/pro/image-to-video';
const fal = createFalClient({
  credentials: 'bench-key',
  requestMiddleware: (request) => Promise.resolve({ ...request, url: request.url.replace(/^https:\/\/(queue\.fal\.run|rest\.fal\.ai)/, config.url) }),
});

await runPeer(config, async (i, signal) => {
  const { input } = inputOf(i);
  const done = await fal.subscribe(ENDPOINT, {
    input,
    mode: 'polling',
    abortSignal: signal,
    ...(config.pollMs !== undefined && { pollInterval: config.pollMs }),
  });
  const url = (done.data as { video?: { url?: string } }).video?.url;
  if (!url) throw new Error('no video in the result');
  const video = await fetch(url, { signal });
  if (!video.ok) throw new Error(`video download answered ${video.status}`);
  await video.arrayBuffer();
});
