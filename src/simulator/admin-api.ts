import type { RawHandler, SimulatorContext } from './context.js';
import { serveVideo } from './downloads.js';
import { sendJson } from './http.js';
import { receiveUpload, serveAsset } from './storage.js';
import type { Route } from './types.js';

/** The queue's state after a hold or release, so a test can see what it did. */
function queueState(sim: SimulatorContext): { held: boolean; queued: number } {
  return { held: sim.runs.isHeld, queued: sim.runs.queued };
}

/**
 * The simulator's own routes, answered before any key check: presigned storage (videos, uploads,
 * assets), the ledger and counters tests read, and the hold that keeps runs queued until released.
 */
export const ADMIN_ROUTES: Route<RawHandler>[] = [
  // Storage checks the method itself: a presigned URL answers any verb with its own error.
  { method: '*', pattern: /^\/__simulator\/files\//, handler: serveVideo },
  { method: '*', pattern: /^\/__simulator\/uploads\//, handler: (sim, call) => receiveUpload(sim.files, sim.stats, call) },
  { method: '*', pattern: /^\/__simulator\/assets\//, handler: (sim, call) => serveAsset(sim.files, call) },
  { method: 'GET', pattern: /^\/__simulator\/ledger$/, handler: (sim, { res }) => sendJson(res, 200, { created: sim.runs.created, billed: sim.runs.billed }) },
  { method: 'GET', pattern: /^\/__simulator\/stats$/, handler: (sim, { res }) => sendJson(res, 200, sim.statistics()) },
  {
    method: 'POST',
    pattern: /^\/__simulator\/hold$/,
    handler: (sim, { res }) => {
      sim.runs.hold();
      sendJson(res, 200, queueState(sim));
    },
  },
  {
    method: 'POST',
    pattern: /^\/__simulator\/release$/,
    handler: (sim, { res }) => {
      sim.runs.release();
      sendJson(res, 200, queueState(sim));
    },
  },
];
