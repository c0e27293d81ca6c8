// Replay protection for the page's commands (a confirmed write to a device, a config apply or
// rollback): each request carries a fresh random X-Request-Nonce, and a nonce is taken once per
// session. A request copied off the wire or out of a proxy log, or re-sent by a stuck browser,
// is refused instead of writing the register or applying the config a second time. Nonces are
// kept for the session's life (sessions end within hours), bounded per session.
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;
const MAX_PER_SESSION = 5000;
/** Past this many remembered sessions, those that have ended are forgotten; a session's nonces
 * are never dropped while it lives (its captured commands would replay). */
const PRUNE_AT = 200;

export type NonceVerdict = 'ok' | 'missing' | 'malformed' | 'replayed' | 'exhausted';

export class ReplayGuard {
  private readonly seen = new Map<string, Set<string>>();

  /** `live(session)`: whether a session can still make requests (auth.ts, without counting
   * as activity). */
  constructor(private readonly live: (session: string) => boolean) {}

  /** Takes `nonce` for `session`; anything but 'ok' means the command must not run. */
  take(session: string, nonce: string | string[] | undefined): NonceVerdict {
    if (nonce === undefined) return 'missing';
    if (typeof nonce !== 'string' || !NONCE.test(nonce)) return 'malformed';
    let used = this.seen.get(session);
    if (!used) {
      used = new Set();
      this.seen.set(session, used);
      if (this.seen.size > PRUNE_AT) for (const t of [...this.seen.keys()]) if (t !== session && !this.live(t)) this.seen.delete(t);
    }
    if (used.has(nonce)) return 'replayed';
    // Dropping old nonces would let them be replayed: past the bound, log in again.
    if (used.size >= MAX_PER_SESSION) return 'exhausted';
    used.add(nonce);
    return 'ok';
  }

  /** A logged-out session's nonces are no longer needed: its token is never accepted again. */
  forget(session: string): void {
    this.seen.delete(session);
  }
}
