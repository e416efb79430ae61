/** `clipmill repair`: its parts live in ./repair/ (reading what survives, sidecar recovery, the report, the provider look-up). */
export { recoverFromProvider } from './repair/recover-from-provider.js';
export { repairFolder } from './repair/repair-folder.js';
export { repairWithProvider } from './repair/repair-with-provider.js';
export { REPAIR_EXIT, type RepairResult } from './repair/result.js';
