// Who may use the local broker, and for what. Accounts come from the site config with argon2
// password hashes; each has publish and subscribe topic patterns. Personal readings (one
// resident's blood pressure) are delivered only to accounts marked `personal: true`:
// a subscription naming a personal topic is refused, and a wildcard subscription does not
// receive personal topics. Anonymous clients (if allowed at all) may subscribe to public
// readings and publish nothing.
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import type { Client, AuthenticateError, Subscription } from 'aedes';

export interface Account {
  username: string;
  passwordHash: string;
  publish: string[];
  subscribe: string[];
  personal: boolean;
}

export interface AccessOptions {
  /** off: every client needs an account; loopback: anonymous only from 127.0.0.1/::1; lan: anonymous from anywhere. */
  anonymous: 'off' | 'loopback' | 'lan';
  accounts: Account[];
  /** Topics that carry personal readings (community/<gw>/<facility>/<device>/<point>). */
  personalTopics: ReadonlySet<string>;
  /** What anonymous clients may subscribe to. */
  anonymousSubscribe: string[];
}

const ANONYMOUS: Account = { username: '', passwordHash: '', publish: [], subscribe: [], personal: false };
const accountOf = new WeakMap<Client, Account>();

/** The identity a client logged in as: `user:<name>`, or `anonymous` (all anonymous clients
 * share one identity). Client ids and retained messages are bound to it (sessions.ts,
 * memory-guard.ts). Undefined before the login succeeded. */
export function identityOf(client: Client): string | undefined {
  const a = accountOf.get(client);
  if (!a) return undefined;
  return a.username === '' ? 'anonymous' : `user:${a.username}`;
}

/** The peer address of a client's connection. TCP and TLS sockets carry it; a WebSocket
 * stream has it from the upgrade request (local-broker.ts sets it on the stream). */
export function remoteOf(client: Client): string {
  return (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? client.req?.socket?.remoteAddress ?? '';
}

/** Largest number of topics whose forward verdict is remembered per account (the hot path:
 * every delivery asks); past it the memo starts again. */
const FORWARD_MEMO_MAX = 4096;

/** MQTT 3.1.1 section 3.1.2.3: CONNACK return code 5, not authorized; 4, bad user name or password. */
function authError(code: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

export class AccessControl {
  private accounts: Map<string, Account>;
  private personalTopics: ReadonlySet<string>;
  /** Per account object: topic -> may its subscribe patterns receive it (authorizeForward). */
  private forwardMemo = new WeakMap<Account, Map<string, boolean>>();
  private anonymous: Account;
  refusedLogins = 0;
  refusedSubscriptions = 0;
  refusedPublishes = 0;

  constructor(private readonly opts: AccessOptions) {
    this.accounts = new Map(opts.accounts.map((a) => [a.username, a]));
    this.personalTopics = opts.personalTopics;
    this.anonymous = { ...ANONYMOUS, subscribe: opts.anonymousSubscribe };
  }

  /** After a config reload: accounts (and their patterns) may have changed. Connected
   * clients and stored sessions keep their subscriptions, but authorizeForward checks each
   * delivery against the account as it is now, so a tightened or removed account receives
   * nothing its current patterns do not allow. */
  setAccounts(accounts: Account[], anonymousSubscribe: string[] = this.opts.anonymousSubscribe): void {
    this.accounts = new Map(accounts.map((a) => [a.username, a]));
    this.anonymous = { ...ANONYMOUS, subscribe: anonymousSubscribe };
    this.forwardMemo = new WeakMap();
  }

  /** The account a client acts as now: looked up again by name, so a reload takes effect. */
  private current(client: Client): Account | undefined {
    const a = accountOf.get(client);
    if (!a) return undefined;
    return a.username === '' ? this.anonymous : this.accounts.get(a.username);
  }

  /** After a config reload: devices (and so personal topics) may have come or gone. */
  setPersonalTopics(topics: ReadonlySet<string>): void {
    this.personalTopics = topics;
  }

  authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    if (!username) {
      const remote = remoteOf(client);
      const loopback = remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1';
      if (this.opts.anonymous === 'lan' || (this.opts.anonymous === 'loopback' && loopback)) {
        accountOf.set(client, this.anonymous);
        return done(null, true);
      }
      this.refusedLogins++;
      return done(authError(5, 'anonymous clients are not allowed'), false);
    }
    const account = this.accounts.get(username);
    const fail = () => {
      this.refusedLogins++;
      done(authError(4, 'bad user name or password'), false);
    };
    if (!password) return fail();
    if (!account) {
      // The same argon2 work as a known user's wrong password: the answer's timing must not
      // tell which user names exist.
      dummyHash()
        .then((h) => argon2.verify(h, password))
        .then(fail, fail);
      return;
    }
    argon2.verify(account.passwordHash, password).then(
      (ok) => {
        if (!ok) return fail();
        accountOf.set(client, account);
        done(null, true);
      },
      () => fail(),
    );
  };

  authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    const a = this.current(client) ?? ANONYMOUS;
    const allowed = a.subscribe.some((p) => covers(p, sub.topic));
    const personalTarget = !a.personal && !/[+#]/.test(sub.topic) && this.personalTopics.has(sub.topic);
    if (!allowed || personalTarget) {
      this.refusedSubscriptions++;
      // null, not an error: the client stays connected and gets SUBACK 0x80, "failure"
      // (MQTT 3.1.1 section 3.9.3); an error would drop the whole connection.
      return done(null, null);
    }
    done(null, sub);
  };

  authorizePublish = (client: Client | null, packet: { topic: string }, done: (err?: Error | null) => void): void => {
    if (!client) return done(null); // the gateway's own publishes
    const a = this.current(client) ?? ANONYMOUS;
    if (a.publish.some((p) => matches(p, packet.topic))) return done(null);
    this.refusedPublishes++;
    done(new Error(`not authorized to publish to ${packet.topic}`));
  };

  /** Last gate before every delivery (live, queued for a stored session, retained): the
   * topic must match one of the account's subscribe patterns as they are now (a stored
   * subscription outlives a tightened account), and personal readings go only to accounts
   * allowed to see them. */
  authorizeForward = <P extends { topic: string }>(client: Client, packet: P): P | null => {
    const a = this.current(client);
    if (!a) return null;
    if (this.personalTopics.has(packet.topic) && !a.personal) return null;
    let memo = this.forwardMemo.get(a);
    if (!memo) this.forwardMemo.set(a, (memo = new Map()));
    let ok = memo.get(packet.topic);
    if (ok === undefined) {
      ok = a.subscribe.some((p) => matches(p, packet.topic));
      if (memo.size >= FORWARD_MEMO_MAX) memo.clear();
      memo.set(packet.topic, ok);
    }
    return ok ? packet : null;
  };
}

/** MQTT 3.1.1 section 4.7.2: a filter starting with a wildcard does not match topics that
 * start with `$` ($SYS/...); only a pattern naming the `$` level literally does. */
function dollarBlocked(pattern: string, topic: string): boolean {
  return topic.charCodeAt(0) === 36 && (pattern.charCodeAt(0) === 35 || pattern.charCodeAt(0) === 43);
}

/** Does topic filter `pattern` match the concrete topic `topic` (MQTT 3.1.1 section 4.7)? */
export function matches(pattern: string, topic: string): boolean {
  if (dollarBlocked(pattern, topic)) return false;
  const p = pattern.split('/');
  const t = topic.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= t.length) return false;
    if (p[i] !== '+' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/** Does the allowed filter `pattern` cover every topic that filter `filter` can match? */
export function covers(pattern: string, filter: string): boolean {
  if (dollarBlocked(pattern, filter)) return false;
  const p = pattern.split('/');
  const f = filter.split('/');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '#') return true;
    if (i >= f.length) return false;
    if (f[i] === '#') return false; // the filter reaches deeper than the pattern allows
    if (p[i] === '+') continue;
    if (f[i] !== p[i]) return false; // a literal (or +) where the pattern needs this literal
  }
  return p.length === f.length;
}

let dummy: Promise<string> | null = null;
/** A hash of a random password, made once: verified against for unknown user names. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}

/** argon2id with OWASP's minimum memory setting (19 MiB, t=2, p=1): a Pi-class box verifies a
 * login in tens of milliseconds without a 64 MiB spike per connection. */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
}
