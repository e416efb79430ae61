import { createHash, randomBytes } from 'node:crypto';

/**
 * The client_ref of one create attempt: row key, request hash and attempt, plus random bytes so that two
 * output folders running the same manifest on one account never share a token. Only [a-z0-9-]: it sits in a quoted filter.
 */
export function clientRefFor(key: string, request: string, attempt: number, random: Buffer = randomBytes(4)): string {
  return `${clientRefPrefix(key, request)}-a${attempt}-${random.toString('hex')}`;
}

/** What every client_ref of one row and request starts with: how a run is found for a row whose journal was lost. */
export function clientRefPrefix(key: string, request: string): string {
  return `clipmill-${createHash('sha256').update(key).digest('hex').slice(0, 10)}-${request}`;
}
