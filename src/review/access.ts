/**
 * Who may use the review page: the browser that opens the printed link first. The link's one-time key is
 * exchanged for an HttpOnly, SameSite=Strict cookie; the page, its files and the marks API need that cookie,
 * so another local user (or a page of another site) cannot read the page, its token or the videos.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const same = (given: string, want: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** Pure: one cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

export class Access {
  private readonly key = randomBytes(24).toString('base64url');
  private readonly session = randomBytes(32).toString('base64url');
  private used = false;
  /** Set once listening: cookies are per host, not per port, so two review servers need two names. */
  port = 0;

  private get cookie(): string {
    return `clipmill_review_${this.port}`;
  }

  /** The link `clipmill review` prints. */
  get link(): string {
    return `http://127.0.0.1:${this.port}/?key=${this.key}`;
  }

  /** The link, with its key hidden, as a message names it. */
  get shownLink(): string {
    return `http://127.0.0.1:${this.port}/?key=…`;
  }

  /** Whether the request carries this server's cookie. */
  admits(req: IncomingMessage): boolean {
    const value = cookieValue(req.headers.cookie, this.cookie);
    return value !== undefined && same(value, this.session);
  }

  /** The key of the printed link, exchanged once: the Set-Cookie header to answer with, or undefined (a wrong or used key). */
  exchange(given: string): string | undefined {
    if (this.used || !same(given, this.key)) return undefined;
    this.used = true;
    return `${this.cookie}=${this.session}; HttpOnly; SameSite=Strict; Path=/`;
  }
}
