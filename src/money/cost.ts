import type { KlingRequest } from '../model/kling-v3.js';

/** Money is integer micro-dollars everywhere; dollars appear only when printing. */
export const MICROS_PER_USD = 1_000_000;

export interface Pricing {
  silentMicrosPerSecond: number;
  audioMicrosPerSecond: number;
  voiceMicrosPerSecond: number;
}

export type AudioMode = 'silent' | 'audio' | 'voice';

export function usdToMicros(usd: number): number {
  return Math.round(usd * MICROS_PER_USD);
}

/** Exact decimal-string parse ("0.700000", "1.4", "3") so the provider's cost never passes through a float. */
export function parseUsdToMicros(text: string): number | undefined {
  const m = /^\s*(\d+)(?:\.(\d*))?\s*$/.exec(text);
  if (!m) return undefined;
  const whole = Number(m[1]);
  const fraction = (m[2] ?? '').padEnd(7, '0');
  // Round half up on the seventh decimal: providers print at most 6 in practice.
  const micros = Number(fraction.slice(0, 6)) + (Number(fraction[6]) >= 5 ? 1 : 0);
  return whole * MICROS_PER_USD + micros;
}

export function formatUsd(micros: number, decimals = 2): string {
  const sign = micros < 0 ? '-' : '';
  const abs = Math.abs(micros);
  const factor = 10 ** (6 - decimals);
  const rounded = Math.round(abs / factor);
  const whole = Math.floor(rounded / 10 ** decimals);
  const fraction = String(rounded % 10 ** decimals).padStart(decimals, '0');
  return `${sign}$${whole}${decimals > 0 ? `.${fraction}` : ''}`;
}

/** Voice control is `voice_ids` (Runflow) or a video element carrying a `voice_id` (both providers), with audio on. */
export function audioModeOf(request: Pick<KlingRequest, 'generateAudio' | 'voiceIds' | 'elements'>): AudioMode {
  if (!request.generateAudio) return 'silent';
  const elementVoice = (request.elements ?? []).some((e) => e.kind === 'video' && e.voiceId !== undefined);
  return (request.voiceIds?.length ?? 0) > 0 || elementVoice ? 'voice' : 'audio';
}

/** What one clip should cost: seconds of output times the rate of its audio mode. */
export function estimateMicros(request: Pick<KlingRequest, 'generateAudio' | 'voiceIds' | 'elements' | 'durationSeconds'>, pricing: Pricing): number {
  const mode = audioModeOf(request);
  const rate = mode === 'voice' ? pricing.voiceMicrosPerSecond : mode === 'audio' ? pricing.audioMicrosPerSecond : pricing.silentMicrosPerSecond;
  return rate * request.durationSeconds;
}
