import { z } from 'zod';

/** The simulator listens on loopback only: it is a rehearsal stage, never a service. */
export const SIMULATOR_HOST = '127.0.0.1';

const rate = z.number().min(0).max(1);

/**
 * The simulator's knobs, the one source for the pipeline file's `simulator:` block, the `simulate`
 * flags and `new Simulator(...)`: snake_case as in the pipeline file, defaults written only here.
 */
export const simulatorOptionsSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(0),
    protocol: z.enum(['runflow', 'fal']).default('runflow'),
    latency_ms: z.number().int().min(0).default(1500),
    concurrency: z.number().int().min(1).default(8),
    fail_rate: rate.default(0),
    error_rate: rate.default(0),
    rate_limit_rate: rate.default(0),
    reset_rate: rate.default(0),
    truncate_rate: rate.default(0),
    slow_download_rate: rate.default(0),
    slow_download_ms: z.number().int().min(0).default(500),
    requests_per_minute: z.number().int().min(0).default(0),
    url_ttl_ms: z.number().int().min(0).default(0),
    credit_usd: z.number().min(0).optional(),
    price_usd_per_second: z.number().min(0).default(0.14),
    audio_price_usd_per_second: z.number().min(0).default(0.14),
    voice_price_usd_per_second: z.number().min(0).default(0.14),
    api_key: z.string().min(1).optional(),
    create_response_delay_ms: z.number().int().min(0).default(0),
    create_commit_delay_ms: z.number().int().min(0).default(0),
    cancel_rate: rate.default(0),
    list_page_size: z.number().int().min(1).max(500).default(500),
    list_empty_pages: z.number().int().min(0).max(40).default(0),
    list_delay_ms: z.number().int().min(0).default(0),
    result_ttl_scale: z.number().min(0).max(1).default(1),
    seed: z.number().int().default(1),
  })
  .strict();

/** What a caller writes: any subset, snake_case. */
export type SimulatorOptionsInput = z.input<typeof simulatorOptionsSchema>;
/** What the simulator reads: every knob, defaults filled in. */
export type SimulatorSettings = z.output<typeof simulatorOptionsSchema>;
