// Client ids bound to the identity that holds them. aedes lets any CONNECT with a known
// client id take over that id's session (MQTT 3.1.1 section 3.1.4-2 and 3.1.2.4): with
// several accounts on one broker, that hands one account's queued messages to another, lets
// an anonymous clean connect wipe them, and lets a stranger disconnect a live client. Here a
// client id belongs to the identity (access.ts identityOf) whose connection created it, for
// as long as that connection is open or, for a persistent session (CleanSession 0), until the
// session ends: the owner connects with CleanSession 1, or the session stays offline for
// sessionExpiryMs and is expired (its subscriptions, queued and in-flight messages freed).
// One identity may hold at most maxSessionsPerOwner persistent sessions: a new one past that
// expires the owner's longest-offline session first (so an account cannot pile up sessions,
// each with its subscriptions, by connecting with fresh client ids).
import type { Client } from 'aedes';
import { monoNow } from '../time/monotonic.js';

interface Session {
  owner: string;
  /** CleanSession 0 on its latest connection: the session outlives the connection. */
  persistent: boolean;
  /** The connection that holds the id now, or null while a persistent session is offline. */
  holder: Client | null;
  offlineSince: number;
}

export class SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  /** CONNECTs refused because the client id belongs to another identity. */
  refusedTakeovers = 0;
  /** Persistent sessions expired after staying offline for sessionExpiryMs. */
  expiredSessions = 0;

  constructor(
    private readonly expiryMs: number,
    private readonly onExpire: (clientId: string) => void,
    private readonly maxSessionsPerOwner = Infinity,
  ) {}

  /** At CONNECT, once the credentials were accepted: may `owner` use `clientId`? If so, this
   * connection holds it now (a reconnect of the owner takes over its own session, as MQTT
   * 3.1.1 section 3.1.4-2 wants). */
  claim(client: Client, clientId: string, owner: string, clean: boolean, now = monoNow()): boolean {
    const s = this.sessions.get(clientId);
    if (s && s.owner !== owner) {
      this.refusedTakeovers++;
      return false;
    }
    if (!clean && !s?.persistent) this.makeRoom(owner);
    // CleanSession 1 discards any previous session (section 3.1.2.4): it ends with this connection.
    this.sessions.set(clientId, { owner, persistent: !clean, holder: client, offlineSince: now });
    return true;
  }

  /** The connection `client` closed: a clean session ends, a persistent one goes offline. */
  release(clientId: string, client: Client, now = monoNow()): void {
    const s = this.sessions.get(clientId);
    if (!s || s.holder !== client) return; // taken over by the owner's newer connection
    if (!s.persistent) {
      this.sessions.delete(clientId);
      return;
    }
    s.holder = null;
    s.offlineSince = now;
  }

  /** Expires persistent sessions offline for longer than sessionExpiryMs. */
  sweep(now = monoNow()): void {
    for (const [id, s] of this.sessions) {
      if (s.holder === null && now - s.offlineSince >= this.expiryMs) {
        this.sessions.delete(id);
        this.expiredSessions++;
        this.onExpire(id);
      }
    }
  }

  /** At maxSessionsPerOwner persistent sessions: expires the owner's longest-offline one. */
  private makeRoom(owner: string): void {
    let n = 0;
    let oldest: [string, Session] | null = null;
    for (const e of this.sessions) {
      const s = e[1];
      if (s.owner !== owner || !s.persistent) continue;
      n++;
      if (s.holder === null && (!oldest || s.offlineSince < oldest[1].offlineSince)) oldest = e;
    }
    if (n < this.maxSessionsPerOwner || !oldest) return; // all online: the connection caps bound those
    this.sessions.delete(oldest[0]);
    this.expiredSessions++;
    this.onExpire(oldest[0]);
  }

  /** Persistent sessions now (online or offline). */
  get persistentSessions(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.persistent) n++;
    return n;
  }

  ownerOf(clientId: string): string | undefined {
    return this.sessions.get(clientId)?.owner;
  }
}
