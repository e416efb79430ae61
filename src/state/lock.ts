/** One run per output folder: the lock's parts live in ./lock/ (format, liveness rules, takeover, heartbeat). */
export { acquireLock } from './lock/acquire.js';
export { LockContestedError, LockedError, LockLostError } from './lock/errors.js';
export type { HeldLock } from './lock/heartbeat.js';
export type { LockOptions } from './lock/options.js';
export { LOCK_FILE, type LockHolder } from './lock/record.js';
