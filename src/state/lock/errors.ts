import { ClipmillError } from '../../infra/errors.js';
import type { LockHolder } from './record.js';

/** Another live run holds the folder: the CLI reports it and exits 2 without touching anything. */
export class LockedError extends ClipmillError {
  readonly exit = 'invalid';
  constructor(
    readonly holder: LockHolder,
    readonly file: string,
  ) {
    super(
      `another clipmill run (pid ${holder.pid} on ${holder.host}, started ${holder.started_at}) is using this output folder; ` +
        `wait for it to finish, or use another --out. A lock whose run is gone is taken over by itself (at once on this host; ` +
        `from another host once its heartbeat has stood still for a while as this run watches it); if you are sure it is gone, ` +
        `you may also delete ${file}`,
    );
    this.name = 'LockedError';
  }
}

/** The reason `HeldLock.lost` is aborted with: another process now holds the lock file, or it vanished. */
export class LockLostError extends ClipmillError {
  readonly exit = 'invalid';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`lost the lock ${file}: ${detail}; this run stops starting new work so that only one run writes the folder`);
    this.name = 'LockLostError';
  }
}

/** Other runs kept taking the lock for the whole attempt: nothing was touched; the CLI exits 2, as for a held lock. */
export class LockContestedError extends ClipmillError {
  readonly exit = 'invalid';
  constructor(readonly file: string) {
    super(`could not take the lock ${file}: other runs kept racing for it; nothing was done, run the command again once they have settled`);
    this.name = 'LockContestedError';
  }
}
