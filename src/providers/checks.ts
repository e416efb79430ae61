import type { HttpResponse } from '../infra/http.js';
import type { AccountCheck } from './provider.js';

/** Skew beyond this misjudges poll timing and run deadlines measured from the provider's `started_at`. */
const WARN_SKEW_MS = 5_000;
const FAIL_SKEW_MS = 120_000;

/** Pure: the clock skew against the `Date` headers of answers received just now (HTTP dates have one-second steps). */
export function clockCheck(answers: readonly Pick<HttpResponse, 'headers'>[], nowMs = Date.now()): AccountCheck {
  const dates = answers
    .map((a) => a.headers.date)
    .map((d) => (Array.isArray(d) ? d[0] : d))
    .map((d) => (d === undefined ? Number.NaN : Date.parse(d)))
    .filter((t) => Number.isFinite(t));
  if (dates.length === 0) return { name: 'clock', status: 'warn', detail: 'no answer carried a Date header to compare the clock with' };
  const skewMs = nowMs - Math.max(...dates);
  // A Date header is truncated to the second: up to a second behind is no skew.
  const beyond = skewMs > 0 ? Math.max(0, skewMs - 1000) : -skewMs;
  const text = `${(skewMs / 1000).toFixed(1)} s ${skewMs >= 0 ? 'ahead of' : 'behind'} the provider's clock`;
  if (beyond > FAIL_SKEW_MS) return { name: 'clock', status: 'fail', detail: `this machine is ${text}: fix its time (NTP) before a paid night` };
  if (beyond > WARN_SKEW_MS) return { name: 'clock', status: 'warn', detail: `this machine is ${text}; poll timing assumes clocks within a few seconds` };
  return { name: 'clock', status: 'ok', detail: `within a second or so of the provider's clock (${text})` };
}
