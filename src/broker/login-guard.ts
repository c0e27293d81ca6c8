// Back-off for MQTT logins, in front of argon2. Without it a LAN client could try a password
// per millisecond, and the argon2 work (19 MiB, tens of ms each) slowed everything else on the
// box. Two keys, like the web login (src/web/auth.ts):
//  - per source address: after `freeFailures` failures, each further attempt must wait a delay
//    that doubles per failure up to maxDelayMs, counted from the last failure;
//  - per user name: the same growing delay, but never a lock of the real user: an address that
//    has logged in as that user before is not delayed by the user's failures (only by its own).
// A backed-off attempt is answered at once, before argon2. At most `maxConcurrent`
// verifications run at a time; up to `maxQueued` more wait, and past that a login is refused
// as busy. Failures are forgotten after FORGET_MS without one.
import { monoNow } from '../time/monotonic.js';

export interface LoginBackoffOptions {
  freeFailures: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxConcurrent: number;
  maxQueued: number;
}

interface Track {
  failures: number;
  last: number;
}

/** A record with no failure for this long is dropped: a fresh allowance. */
const FORGET_MS = 15 * 60_000;
/** Tracked addresses, user names and remembered good addresses at most; past it the least
 * recently failed go (the map's insertion order is kept least recent first). */
const MAX_TRACKED = 10_000;
const MAX_GOOD_PER_USER = 32;

export class LoginGuard {
  private readonly byAddress = new Map<string, Track>();
  private readonly byUser = new Map<string, Track>();
  private readonly goodAddresses = new Map<string, Set<string>>();
  private active = 0;
  private readonly queue: (() => void)[] = [];
  /** Attempts answered at once because the address or user name was backed off. */
  backedOff = 0;
  /** Attempts refused because maxConcurrent verifications ran and maxQueued waited. */
  busy = 0;
  /** argon2 verifications started (for tests and diagnostics). */
  verifications = 0;

  constructor(private readonly opts: LoginBackoffOptions) {}

  /** Milliseconds until `address` may try `username` again; 0: now. */
  wait(address: string, username: string, now = monoNow()): number {
    const a = this.delayLeft(this.byAddress.get(address), now);
    const trusted = this.goodAddresses.get(username)?.has(address) ?? false;
    const u = trusted ? 0 : this.delayLeft(this.byUser.get(username), now);
    return Math.max(a, u);
  }

  /** Runs `verify` when a verification slot is free; false (and nothing run) when too many wait. */
  run(verify: (release: () => void) => void): boolean {
    if (this.active >= this.opts.maxConcurrent) {
      if (this.queue.length >= this.opts.maxQueued) {
        this.busy++;
        return false;
      }
      this.queue.push(() => this.start(verify));
      return true;
    }
    this.start(verify);
    return true;
  }

  private start(verify: (release: () => void) => void): void {
    this.active++;
    this.verifications++;
    let released = false;
    verify(() => {
      if (released) return;
      released = true;
      this.active--;
      this.queue.shift()?.();
    });
  }

  failure(address: string, username: string, now = monoNow()): Track {
    this.bump(this.byUser, username, now);
    return this.bump(this.byAddress, address, now);
  }

  success(address: string, username: string): void {
    this.byAddress.delete(address);
    this.byUser.delete(username);
    let good = this.goodAddresses.get(username);
    if (!good) {
      if (this.goodAddresses.size >= MAX_TRACKED) this.goodAddresses.delete(this.goodAddresses.keys().next().value!);
      this.goodAddresses.set(username, (good = new Set()));
    }
    good.delete(address);
    good.add(address);
    if (good.size > MAX_GOOD_PER_USER) good.delete(good.values().next().value!);
  }

  private delayLeft(t: Track | undefined, now: number): number {
    if (!t || t.failures < this.opts.freeFailures || now - t.last >= FORGET_MS) return 0;
    const delay = Math.min(this.opts.baseDelayMs * 2 ** (t.failures - this.opts.freeFailures), this.opts.maxDelayMs);
    return Math.max(0, t.last + delay - now);
  }

  private bump(map: Map<string, Track>, key: string, now: number): Track {
    const old = map.get(key);
    const t = old && now - old.last < FORGET_MS ? { failures: old.failures + 1, last: now } : { failures: 1, last: now };
    map.delete(key);
    map.set(key, t);
    if (map.size > MAX_TRACKED) map.delete(map.keys().next().value!);
    return t;
  }
}
