/** The options that name a fleet (its Redis and its name), shared by the fleet commands and the commands that read a fleet. */
import type { Command } from 'commander';
import { checkFleetName } from '../fleet/queue.js';
import { InputError } from '../load/problem.js';

type Opts = Record<string, unknown>;

export const REDIS_HELP =
  "the fleet's Redis, redis://[:password@]host:port[/db] (or set CLIPMILL_REDIS_URL: a password is better kept out of the command line)";
export const QUEUE_HELP = 'the fleet\'s name: its queues and Redis keys (default "clipmill"); enqueuers and workers of one night use the same';

/** The fleet's Redis and name from the options or the environment; a clear error when there is none. */
export function fleetOf(opts: Opts, env: NodeJS.ProcessEnv): { redisUrl: string; queue: string } {
  const redisUrl = typeof opts.redis === 'string' ? opts.redis : env.CLIPMILL_REDIS_URL;
  const queue = typeof opts.queue === 'string' ? opts.queue : 'clipmill';
  const problems = [];
  if (redisUrl === undefined || redisUrl === '')
    problems.push({ file: '--redis', line: 0, field: 'redis', message: 'is required (or set CLIPMILL_REDIS_URL)' });
  const badName = checkFleetName(queue);
  if (badName !== undefined) problems.push({ file: '--queue', line: 0, field: 'queue', message: badName });
  if (problems.length > 0) throw new InputError(problems);
  return { redisUrl: redisUrl!, queue };
}

/** For status, report and estimate: the fleet to read, when `--redis` or `--queue` names one (else the folder's journal). */
export function fleetIfNamed(opts: Opts, env: NodeJS.ProcessEnv): { redisUrl: string; queue: string } | undefined {
  return opts.redis === undefined && opts.queue === undefined ? undefined : fleetOf(opts, env);
}

/** `--redis` and `--queue` on a command that reads a folder's journal by default. */
export function addFleetReadOptions(command: Command): Command {
  return command
    .option('--redis <url>', "read a fleet's journal in this Redis instead of the folder's (or give --queue and set CLIPMILL_REDIS_URL)")
    .option('--queue <name>', 'the fleet to read (default "clipmill")');
}
