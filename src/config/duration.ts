import { z } from 'zod';

/** "500ms", "5s", "20m", "1h" or a number of seconds. */
export function parseDurationMs(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = (m[2] ?? 's').toLowerCase();
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000;
  return Math.round(Number(m[1]) * factor);
}

/** The inverse, for messages: 250 → "250ms", 90000 → "90s", 1200000 → "20m". */
export function formatDurationMs(ms: number): string {
  if (ms < 1000 || ms % 1000 !== 0) return `${ms}ms`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

const durationInput = z.union([z.string(), z.number()]);

function toMs(minMs: number) {
  return (v: string | number, ctx: z.RefinementCtx): number => {
    const ms = parseDurationMs(v);
    if (ms === undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is not a duration (like 500ms, 5s, 20m, 1h)` });
    else if (ms < minMs) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(v)} is too short (at least ${formatDurationMs(minMs)})` });
    return ms ?? 0;
  };
}

/** A duration setting ("5s", "20m", or seconds) as milliseconds, at least `minMs`; `fallback` when absent. */
export function duration(fallback: string, minMs: number) {
  return durationInput.default(fallback).transform(toMs(minMs));
}

/** A duration with no default (a command's own flag, like `--since`), at least `minMs`. */
export function requiredDuration(minMs: number) {
  return durationInput.transform(toMs(minMs));
}
