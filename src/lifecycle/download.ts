import { backoffMs } from '../infra/retry.js';
import { rowErrorEffects } from './row-error.js';
import type { Effect, Input, Phase, Step, View } from './types.js';
import { end, giveUp, record, say } from './steps.js';

type Downloading = Extract<Phase, { at: 'downloading' }>;

/**
 * A download's answer. A refused (expired) URL or a missing one is replaced by reading the run again;
 * a transient failure is retried with backoff; anything else leaves the paid video owed to the next run.
 */
export function onDownloading(view: View, input: Input, phase: Downloading): Step {
  const { rules } = view;
  if (input.on === 'downloaded') {
    const { path, bytes, sha256, seconds, runId, mtimeMs } = input;
    return end([
      record({ type: 'downloaded', runId, path, bytes, sha256, seconds, mtimeMs }),
      say('info', 'downloaded', `downloaded ${path} (${seconds} s, ${bytes} bytes)`),
    ]);
  }
  if (input.on === 'polled') {
    // The run read again for a fresh URL: a run that still shows none is owed, not retried for ever.
    if (phase.refreshing === 'NO_OUTPUT' && !input.snapshot.videoUrl) return giveUpOwed(view, `run ${input.snapshot.runId} succeeded without a video URL`);
    return {
      phase: { at: 'downloading', runId: phase.runId, tries: phase.tries + 1, snapshot: input.snapshot },
      effects: [],
      command: { do: 'download', snapshot: input.snapshot, keepPrevious: false },
    };
  }
  if (input.on !== 'failed') return end();
  const { failure } = input;
  const isApi = failure.kind !== 'internal' && failure.kind !== 'io';
  if (!isApi || phase.refreshing !== undefined || phase.tries >= rules.retry.maxAttempts || failure.aborted)
    return end(rowErrorEffects(view.facts, view.row, failure, view.nowMs, rules));
  if (failure.code === 'URL_REFUSED' || failure.code === 'NO_OUTPUT') {
    const effects: Effect[] = [say('warn', 'url_refresh', `${failure.message}; fetching the run again for a fresh URL`)];
    return { phase: { ...phase, refreshing: failure.code }, effects, command: { do: 'refresh', runId: phase.runId } };
  }
  if (failure.kind !== 'transient') return end(rowErrorEffects(view.facts, view.row, failure, view.nowMs, rules));
  const delayMs = backoffMs(phase.tries, rules.retry, rules.random);
  const effects: Effect[] = [say('warn', 'download_retry', `${failure.message}; retrying in ${delayMs} ms`)];
  return { phase: { ...phase, tries: phase.tries + 1 }, effects, command: { do: 'download', snapshot: phase.snapshot, keepPrevious: false, delayMs } };
}

function giveUpOwed(view: View, message: string): Step {
  return giveUp(view, { kind: 'row', code: 'NO_OUTPUT', message, mayHaveReachedServer: true, aborted: view.aborted });
}
