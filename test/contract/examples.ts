/**
 * The documented request and response shapes of ../shared/PROVIDERS.md, transcribed as data. Values are
 * made up; field names, types and status codes are the documentation's. Each example says where it is from.
 */

/** Runflow: "Run object fields seen". */
export const RUNFLOW_RUN_FIELDS = [
  'id',
  'status_code',
  'model_id',
  'input',
  'output',
  'cost',
  'cost_breakdown',
  'duration_ms',
  'created_at',
  'started_at',
  'completed_at',
  'client_ref',
  'metadata',
  'failure_code',
  'failure_message',
  'failure_stage_code',
  'error',
] as const;

/** Runflow: "`status_code` is one of …" (with both spellings of canceled). */
export const RUNFLOW_STATUSES = ['queued', 'dispatching', 'running', 'succeeded', 'failed', 'canceled', 'cancelled', 'partial_succeeded'] as const;

/** Runflow: "Create: POST /v1/models/…/runs with body { input, client_ref?, metadata?, callback_url? }", answered 201, `queued`. */
export const runflowCreateBody = {
  input: { start_image_url: 'https://images.example.com/a.jpg', prompt: 'a slow pan', duration: '5', generate_audio: false },
  client_ref: 'clipmill-0123456789-abcdef0123456789-a1-00000000',
  metadata: { clipmill_row: 'contract' },
};

/** Runflow run objects as the documentation describes them (ids are UUIDs, v7 in the callback examples). */
export const runflowRuns = {
  queued: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e0f',
    status_code: 'queued',
    model_id: 'kuaishou/kling-video/v3/pro/image-to-video',
    output: null,
    cost: null,
    client_ref: 'ref-1',
    metadata: {},
  },
  dispatching: { id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e10', status_code: 'dispatching' },
  running: { id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e11', status_code: 'running', started_at: '2026-11-24T01:00:00.000Z' },
  /** "Output is normalised: output.outputs[], each entry {type: image|video|audio, url, …}". */
  succeeded: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e12',
    status_code: 'succeeded',
    cost: '0.700000',
    duration_ms: 95_000,
    started_at: '2026-11-24T01:00:00.000Z',
    completed_at: '2026-11-24T01:01:35.000Z',
    output: { outputs: [{ type: 'video', url: 'https://cdn.example.com/v.mp4?X-Amz-Signature=secret', content_type: 'video/mp4', file_name: 'v.mp4' }] },
  },
  /** "If entries come without type, take the one whose content type or file name is a video." */
  succeededUntyped: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e13',
    status_code: 'succeeded',
    cost: '0.42',
    output: {
      outputs: [
        { url: 'https://cdn.example.com/still.png', content_type: 'image/png' },
        { url: 'https://cdn.example.com/clip?sig=1', file_name: 'clip.mp4' },
      ],
    },
  },
  /** "A succeeded run whose output holds no video is an error to report." */
  succeededWithoutVideo: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e14',
    status_code: 'succeeded',
    cost: '0.70',
    output: { outputs: [{ type: 'image', url: 'https://cdn.example.com/still.png?sig=2' }] },
  },
  /** "A bad input image may also surface as a failed run (failure_code INPUT_VALIDATION_FAILED, stage preprocess)"; "failed runs are not billed". */
  failed: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e15',
    status_code: 'failed',
    cost: '0',
    failure_code: 'INPUT_VALIDATION_FAILED',
    failure_message: 'start image could not be read',
    failure_stage_code: 'preprocess',
    error: { code: 'INPUT_VALIDATION_FAILED', message: 'start image could not be read' },
  },
  canceled: { id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e16', status_code: 'canceled' },
  cancelled: { id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e17', status_code: 'cancelled' },
  partialSucceeded: {
    id: '01934d2e-7b1a-7c3d-8e4f-5a6b7c8d9e18',
    status_code: 'partial_succeeded',
    output: { outputs: [{ type: 'video', url: 'https://cdn.example.com/p.mp4' }] },
  },
};

/** Runflow list: "the answer is { items: [...], next_pq?, prev_pq? } (a sibling endpoint names the cursor next: accept both)". */
export const runflowListPages = {
  withNextPq: { items: [], next_pq: 'cursor-2' },
  withNext: { items: [], next: 'cursor-2' },
  last: { items: [runflowRuns.queued], prev_pq: 'cursor-1' },
};

/** Runflow errors: JSON { code, message, errors: [] | null }, and what each status means for clipmill. */
export const runflowErrors: {
  status: number;
  body: { code: string; message: string; errors: unknown[] | null };
  kind: 'row' | 'fatal' | 'credit' | 'transient';
}[] = [
  { status: 400, body: { code: 'BAD_REQUEST', message: 'bad request', errors: null }, kind: 'row' },
  { status: 401, body: { code: 'UNAUTHORIZED', message: 'invalid API key', errors: null }, kind: 'fatal' },
  { status: 402, body: { code: 'INSUFFICIENT_CREDIT', message: 'top up', errors: null }, kind: 'credit' },
  { status: 403, body: { code: 'PERMISSION_DENIED', message: 'not allowed', errors: null }, kind: 'fatal' },
  { status: 404, body: { code: 'RUN_NOT_FOUND', message: 'no such run', errors: null }, kind: 'row' },
  { status: 409, body: { code: 'CONFLICT', message: 'conflict', errors: null }, kind: 'row' },
  {
    status: 422,
    body: { code: 'VALIDATION_ERROR', message: 'invalid input', errors: [{ field: 'input.duration', message: 'must be "3" to "15"' }] },
    kind: 'row',
  },
  { status: 429, body: { code: 'RATE_LIMITED', message: 'slow down', errors: null }, kind: 'transient' },
  { status: 503, body: { code: 'MODEL_UNAVAILABLE', message: 'busy', errors: null }, kind: 'transient' },
];

/** Runflow asset upload: declare → 201 {asset_id, upload_url}; PUT; confirm → 201 with the full asset. */
export const RUNFLOW_ASSET_FIELDS = ['id', 'name', 'url', 'mime_type', 'size_bytes', 'thumbnail_url', 'created_at'] as const;

/** fal submit: { status: "IN_QUEUE", request_id, status_url, response_url, cancel_url, queue_position }. */
export const FAL_SUBMIT_FIELDS = ['status', 'request_id', 'status_url', 'response_url', 'cancel_url', 'queue_position'] as const;

/** fal: "Out of balance is a 403 whose body is only {detail: …}" (other reasons seen: Admin lock, TOP_UP). */
export const falLocked = { status: 403, body: { detail: 'User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.' } };
export const falAdminLocked = { status: 403, body: { detail: 'User is locked. Reason: Admin lock' } };

/** fal: a failed model call's result, e.g. a 422 {detail: [{loc, msg, type}]}; infrastructure errors {detail, error_type} + X-Fal-Error-Type. */
export const falValidation = {
  status: 422,
  body: { detail: [{ loc: ['body', 'start_image_url'], msg: 'could not be downloaded', type: 'value_error' }] },
  headers: {},
};
export const falInfrastructure = {
  status: 504,
  body: { detail: 'Request timed out', error_type: 'request_timeout' },
  headers: { 'x-fal-error-type': 'request_timeout' },
};
