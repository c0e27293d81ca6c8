// Who may use the local broker, and for what. Accounts come from the site config with argon2
// password hashes; each has publish and subscribe topic patterns. Personal readings (one
// resident's blood pressure) are delivered only to accounts marked `personal: true`:
// a subscription naming a personal topic is refused, and a wildcard subscription does not
// receive personal topics. Anonymous clients (if allowed at all) may subscribe to public
// readings and publish nothing.
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

/** MQTT 3.1.1 section 3.1.2.3: CONNACK return code 5, not authorized; 4, bad user name or password. */
function authError(code: 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

export class AccessControl {
  private readonly accounts: Map<string, Account>;
  private personalTopics: ReadonlySet<string>;
  refusedLogins = 0;
  refusedSubscriptions = 0;
  refusedPublishes = 0;

  constructor(private readonly opts: AccessOptions) {
    this.accounts = new Map(opts.accounts.map((a) => [a.username, a]));
    this.personalTopics = opts.personalTopics;
  }

  /** After a config reload: devices (and so personal topics) may have come or gone. */
  setPersonalTopics(topics: ReadonlySet<string>): void {
    this.personalTopics = topics;
  }

  authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    if (!username) {
      // TCP and TLS sockets carry the peer address; a WebSocket stream has it from the
      // upgrade request (local-broker.ts sets it on the stream, and passes the request).
      const remote = (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? client.req?.socket?.remoteAddress ?? '';
      const loopback = remote === '127.0.0.1' || remote === '::1' || remote === '::ffff:127.0.0.1';
      if (this.opts.anonymous === 'lan' || (this.opts.anonymous === 'loopback' && loopback)) {
        accountOf.set(client, { ...ANONYMOUS, subscribe: this.opts.anonymousSubscribe });
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
    if (!account || !password) return fail();
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
    const a = accountOf.get(client) ?? ANONYMOUS;
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
    const a = accountOf.get(client) ?? ANONYMOUS;
    if (a.publish.some((p) => matches(p, packet.topic))) return done(null);
    this.refusedPublishes++;
    done(new Error(`not authorized to publish to ${packet.topic}`));
  };

  /** Last gate before delivery: personal readings only to accounts allowed to see them. */
  authorizeForward = <P extends { topic: string }>(client: Client, packet: P): P | null => {
    if (!this.personalTopics.has(packet.topic)) return packet;
    return accountOf.get(client)?.personal ? packet : null;
  };
}

/** Does topic filter `pattern` match the concrete topic `topic` (MQTT 3.1.1 section 4.7)? */
export function matches(pattern: string, topic: string): boolean {
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

/** argon2id with OWASP's minimum memory setting (19 MiB, t=2, p=1): a Pi-class box verifies a
 * login in tens of milliseconds without a 64 MiB spike per connection. */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
}
