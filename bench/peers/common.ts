/**
 * What every peer child shares: its settings (one JSON in BENCH_PEER), the rows (the same inputs for
 * every peer), a deadline after which it stops, and its one line of output (JSON on stdout).
 * CPU and peak RSS are written by the bench's usage preload, not here.
 */
export interface PeerConfig {
  /** The simulator's base URL. */
  url: string;
  rows: number;
  concurrency: number;
  /** Poll interval of the vendor pattern (ms); the fal client keeps its own default unless set. */
  pollMs?: number;
  /** Stop after this long (ms): what was done by then is the peer's result. */
  stopAfterMs: number;
}

export interface PeerResult {
  done: number;
  failed: number;
  stopped: boolean;
  /** First few distinct errors, for the bench's log. */
  errors: string[];
}

export function readConfig(): PeerConfig {
  const raw = process.env.BENCH_PEER;
  if (!raw) throw new Error('BENCH_PEER is not set');
  return JSON.parse(raw) as PeerConfig;
}

const SECONDS = ['3', '4', '5', '6', '7', '8', '9', '10', '11', '12', '13', '14', '15'] as const;

/** Row i: the same id, image URL, prompt and seconds the clipmill peer's manifest has. */
export function inputOf(i: number): {
  id: string;
  input: { start_image_url: string; prompt: string; duration: (typeof SECONDS)[number]; generate_audio: boolean };
} {
  const id = `r${String(i).padStart(5, '0')}`;
  return {
    id,
    input: { start_image_url: `https://images.example.com/${id}.jpg`, prompt: `bench ${id}`, duration: SECONDS[i % SECONDS.length]!, generate_audio: false },
  };
}

/** Runs every row through `one` with at most `concurrency` at once; stops starting rows at the deadline and reports. */
export async function runPeer(config: PeerConfig, one: (i: number, signal: AbortSignal) => Promise<void>): Promise<never> {
  const result: PeerResult = { done: 0, failed: 0, stopped: false, errors: [] };
  const stop = new AbortController();
  const deadline = setTimeout(() => {
    result.stopped = true;
    stop.abort();
    finish(result);
  }, config.stopAfterMs);
  let next = 0;
  // A function, not the property: the deadline flips it while a row is awaited.
  const stopped = () => stop.signal.aborted;
  const worker = async () => {
    while (next < config.rows && !stopped()) {
      const i = next++;
      try {
        await one(i, stop.signal);
        if (!stopped()) result.done++;
      } catch (error) {
        if (stopped()) return;
        result.failed++;
        const message = error instanceof Error ? error.message : String(error);
        if (result.errors.length < 5 && !result.errors.includes(message)) result.errors.push(message);
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, worker));
  clearTimeout(deadline);
  return finish(result);
}

function finish(result: PeerResult): never {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
