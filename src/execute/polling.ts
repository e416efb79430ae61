/**
 * When to poll a run next (pure). Instead of polling every few seconds, polls are timed from what is
 * known: when the run started, and how long runs have taken so far tonight, within a floor and a ceiling.
 */
export interface PollBounds {
  floorMs: number;
  ceilingMs: number;
}

/** Learns tonight's run time as a + b × seconds of video (least squares), or a plain mean when it cannot. */
export class RunTimeModel {
  private readonly samples: { seconds: number; runMs: number }[] = [];
  private readonly queueSamples: number[] = [];
  private queueMedianMs: number | undefined;
  /** Recent runs only, so the model follows the provider when it speeds up or slows down. */
  private static readonly MAX_SAMPLES = 50;

  observe(seconds: number, runMs: number, queueMs?: number): void {
    if (queueMs !== undefined && queueMs >= 0) {
      this.queueSamples.push(queueMs);
      if (this.queueSamples.length > RunTimeModel.MAX_SAMPLES) this.queueSamples.shift();
      // Every step of every row reads it: sorted here, once per finished run.
      const sorted = [...this.queueSamples].sort((a, b) => a - b);
      this.queueMedianMs = sorted[Math.floor(sorted.length / 2)];
    }
    if (!(runMs > 0)) return;
    this.samples.push({ seconds, runMs });
    if (this.samples.length > RunTimeModel.MAX_SAMPLES) this.samples.shift();
  }

  /** The median wait between create and start of recent runs, when the provider tells both times (one long wait moves it little). */
  expectedQueueMs(): number | undefined {
    return this.queueMedianMs;
  }

  get count(): number {
    return this.samples.length;
  }

  expectedMs(seconds: number): number | undefined {
    const n = this.samples.length;
    if (n === 0) return undefined;
    const meanX = this.samples.reduce((s, p) => s + p.seconds, 0) / n;
    const meanY = this.samples.reduce((s, p) => s + p.runMs, 0) / n;
    const sxx = this.samples.reduce((s, p) => s + (p.seconds - meanX) ** 2, 0);
    if (n < 3 || sxx === 0) return meanY;
    const slope = Math.max(0, this.samples.reduce((s, p) => s + (p.seconds - meanX) * (p.runMs - meanY), 0) / sxx);
    return Math.max(0, meanY + slope * (seconds - meanX));
  }
}

export interface PollSituation {
  now: number;
  state: 'queued' | 'running';
  /** When the run started running (the provider's clock, or our earliest bound), if known. */
  startedAtMs?: number;
  /** Expected running time for this row, once tonight's runs have taught one. */
  expectedRunMs?: number;
  /** For a run just created: the expected wait before it starts. */
  expectedQueueMs?: number;
  /** The run was just created: with a learned run time its end is not a guess, so the ceiling does not cut the first wait. */
  justCreated?: boolean;
  /** The previous wait, for the ramp used before anything is learned. */
  previousDelayMs?: number;
}

/** Aim a little after the expected end: a poll that lands just before it costs a whole extra interval. */
const LATE_MARGIN = 0.01;

const clamp = (ms: number, bounds: PollBounds) => Math.round(Math.min(bounds.ceilingMs, Math.max(bounds.floorMs, ms)));

export function nextPollDelayMs(s: PollSituation, bounds: PollBounds): number {
  const expected = s.expectedRunMs;
  // Nothing learned yet: start at the floor and widen geometrically.
  if (expected === undefined) return clamp(s.previousDelayMs === undefined ? bounds.floorMs : s.previousDelayMs * 1.5, bounds);
  // Just created: one poll just after its learned wait to start and run; a ceiling below a run time would cost a second poll per row.
  if (s.justCreated === true) return Math.round(Math.max(bounds.floorMs, ((s.expectedQueueMs ?? 0) + expected) * (1 + LATE_MARGIN)));
  // Queued: it cannot finish sooner than a full run from now.
  if (s.state === 'queued' || s.startedAtMs === undefined) return clamp(expected * (1 + LATE_MARGIN), bounds);
  const due = s.startedAtMs + expected * (1 + LATE_MARGIN);
  // Running with a known start and a learned run time: poll once, when it should be done (the ceiling
  // guards guesses, not this).
  if (due > s.now) return Math.round(Math.max(bounds.floorMs, due - s.now));
  // Overdue: poll often at first, then less as the run drags on.
  return clamp(0.05 * expected + 0.1 * (s.now - due), bounds);
}
