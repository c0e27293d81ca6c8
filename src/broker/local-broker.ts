// The box's own MQTT broker (aedes, MQTT 3.1.1) for facility staff and local apps: a plain
// TCP listener, optionally a TLS and a WebSocket listener, all served by one aedes instance
// with the same accounts and ACLs (access.ts). Limits aedes lacks are added here: caps on
// open connections (over all listeners, per source address, and for connections that have
// not logged in yet), a server-side idle bound, a packet-size and framing guard
// (packet-guard.ts) between each connection and aedes, login back-off (login-guard.ts),
// client ids bound to their owner (sessions.ts) and memory caps (memory-guard.ts).
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../log.js';
import { identityOf, remoteOf, type AccessControl } from './access.js';
import { BROKER_DEFAULTS, LIVE_COALESCE_MS, LIVE_DRAIN_TIMEOUT_MS, LIVE_MAX_BUFFERED_BYTES, LOGIN_DEFAULTS, MEMORY_DEFAULTS } from './broker-defaults.js';
import { DirectDelivery } from './direct-delivery.js';
import { LoginGuard, type LoginBackoffOptions } from './login-guard.js';
import { MemoryGuard, packetBytes, type MemoryLimits, type WrappablePersistence } from './memory-guard.js';
import { PacketGuard, type GuardVerdict } from './packet-guard.js';
import { SessionRegistry } from './sessions.js';
import { monoNow } from '../time/monotonic.js';

export interface LocalBrokerTlsOptions {
  /** Default: the plain listener's host. */
  host?: string;
  port: number;
  certFile: string;
  keyFile: string;
  caFile?: string;
  requireClientCert?: boolean;
}

export interface LocalBrokerWebSocketOptions {
  /** Default: the plain listener's host. */
  host?: string;
  port: number;
}

/** The localBroker section of the site config (LocalBrokerSchema); the defaults below are the schema's. */
export interface LocalBrokerOptions {
  host: string;
  port: number;
  /** Open connections over all listeners; default 200. */
  maxConnections?: number;
  /** Open connections from one source address; default 20. */
  maxConnectionsPerAddress?: number;
  /** Connections not logged in yet (before CONNACK 0) at most; past it the oldest such one is
   * closed to make room. Default: half of maxConnections, so that clients that have logged in
   * always keep the other half. */
  maxPendingConnections?: number;
  /** CONNECT (and the TLS or WebSocket handshake) must arrive this soon; default 5000. */
  connectTimeoutMs?: number;
  /** Longest keepalive honoured (MQTT 3.1.1 section 3.1.2.10); default 300. */
  maxKeepaliveSeconds?: number;
  /** Persistent sessions offline this long are expired; default 259200 (3 days). */
  sessionExpirySeconds?: number;
  /** Persistent sessions per account; default 50 (a new one past it expires the longest-offline). */
  maxSessionsPerAccount?: number;
  loginBackoff?: Partial<LoginBackoffOptions>;
  memory?: Partial<MemoryLimits>;
  /** Largest packet a client may send, fixed header included; default 262144. */
  maxPacketBytes?: number;
  /** Longest client id accepted; default 23. */
  maxClientIdLength?: number;
  tls?: LocalBrokerTlsOptions;
  websocket?: LocalBrokerWebSocketOptions;
  /** Coalescing of the gateway's own publishes (cork()); default 10 ms. maxBufferedBytes and
   * drainTimeoutMs (direct-delivery.ts) are not in the site config: tests shorten them. */
  live?: { coalesceMs?: number; maxBufferedBytes?: number; drainTimeoutMs?: number };
}

/** Counters for metrics and the status page. Counts are since start (they only grow), except
 * `connections` and `clients`, which are current values. */
export interface LocalBrokerStats {
  /** Open connections now, over all listeners (TCP, TLS, WebSocket), counted from accept on:
   * includes ones still in the TLS/WebSocket handshake or before CONNECT. */
  connections: number;
  /** MQTT clients connected now (CONNECT accepted). */
  clients: number;
  /** Open connections not logged in yet (counted against maxPendingConnections). */
  pendingConnections: number;
  /** Connections accepted (not refused by the cap). */
  acceptedConnections: number;
  /** Connections closed at once because maxConnections (or maxConnectionsPerAddress from
   * that address) were already open. */
  refusedConnections: number;
  /** Of refusedConnections: refused by maxConnectionsPerAddress. */
  refusedPerAddress: number;
  /** Connections not yet logged in, closed to make room for a new one (maxPendingConnections). */
  evictedPending: number;
  /** Connections closed for silence: no packet for 1.5x the (bounded) keepalive. */
  idleTimeouts: number;
  /** CONNECTs refused, by reason (refusedLogins is their sum). */
  loginRefusals: Record<LoginRefusal, number>;
  /** Logins answered at once without a password check because of back-off. */
  backedOffLogins: number;
  /** argon2 verifications started. */
  loginVerifications: number;
  /** Persistent sessions now, and expired so far. */
  persistentSessions: number;
  expiredSessions: number;
  /** Memory caps (memory-guard.ts): refusals and current usage. */
  refusedInflight: number;
  droppedQueued: number;
  refusedRetained: number;
  inflightMessages: number;
  inflightBytes: number;
  queuedMessages: number;
  queuedBytes: number;
  retainedMessages: number;
  retainedBytes: number;
  /** Connections closed because a packet announced more than maxPacketBytes (or a WebSocket
   * message was larger than that). */
  oversizedPackets: number;
  /** Connections closed by the framing guard: a Remaining Length longer than 4 bytes, a
   * reserved or server-only packet type, wrong fixed-header flags, a first packet that is
   * not CONNECT; or a broken WebSocket frame. */
  malformedPackets: number;
  /** Errors aedes closed a connection for: a packet body it could not parse, a protocol
   * violation, a refused login or publish, CONNECT not arriving in time, a reset. */
  clientErrors: number;
  /** TLS handshakes that failed on the TLS listener: no client certificate or one not from
   * caFile (with requireClientCert), a plain-TCP client, a handshake timeout. */
  tlsHandshakeFailures: number;
  /** CONNECTs refused, for any reason in loginRefusals. */
  refusedLogins: number;
  /** Subscriptions answered with SUBACK failure (outside the account's patterns, or a personal topic). */
  refusedSubscriptions: number;
  /** Publishes outside the account's patterns (dropped, client disconnected). */
  refusedPublishes: number;
  /** The gateway's live messages not written to a subscriber that had more than
   * LIVE_MAX_BUFFERED_BYTES waiting (it was not reading). */
  droppedLive: number;
  /** Subscribers closed for not reading: over that for LIVE_DRAIN_TIMEOUT_MS. */
  slowSubscribersClosed: number;
}

type Listener = 'tcp' | 'tls' | 'websocket';

export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1;
}

/** Why a CONNECT was refused: bad_credentials (CONNACK 4), anonymous where not allowed (5),
 * backed_off and busy (3, server unavailable: try later), client_id_taken (2, the id belongs
 * to another identity), client_id_invalid (2, longer than maxClientIdLength, or empty with
 * CleanSession 0: MQTT 3.1.1 section 3.1.3.1). */
export type LoginRefusal = 'bad_credentials' | 'anonymous' | 'backed_off' | 'busy' | 'client_id_taken' | 'client_id_invalid';
const LOGIN_REFUSALS: LoginRefusal[] = ['bad_credentials', 'anonymous', 'backed_off', 'busy', 'client_id_taken', 'client_id_invalid'];

/** What the CONNECT said that authenticate() does not get from aedes. */
interface ConnectInfo {
  clientIdBytes: number;
  clean: boolean;
  keepalive: number;
}

/** MQTT 3.1.1 section 3.2.2.3: CONNACK return codes used here. */
function connackError(code: 2 | 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

/** MQTT 3.1.1 section 1.5.3: U+0000 in a UTF-8 string is a protocol violation. */
const hasNul = (s: string) => s.includes('\u0000');
/** Repeated warnings (cap reached, bad packets) at most this often. */
const WARN_INTERVAL_MS = 60_000;

export class LocalBroker {
  private aedes: Aedes | null = null;
  private server: net.Server | null = null;
  private tlsServer: tls.Server | null = null;
  private wsHttp: http.Server | null = null;
  private wss: WebSocketServer | null = null;
  /** Every accepted TCP connection, whatever the listener (the cap counts these). */
  private readonly sockets = new Set<net.Socket>();
  /** What aedes reads and writes: the socket, the TLS socket or the WebSocket stream. */
  private readonly conns = new Set<Duplex>();
  /** Connections of logged-in clients (after CONNACK 0): the only ones corked (cork()). A
   * connection still logging in is never corked, so a refusal's CONNACK is not held in a
   * buffer that the close right after it would discard. */
  private readonly readyConns = new Set<Duplex>();
  private readonly counts = { acceptedConnections: 0, refusedConnections: 0, refusedPerAddress: 0, evictedPending: 0, idleTimeouts: 0, oversizedPackets: 0, malformedPackets: 0, clientErrors: 0, tlsHandshakeFailures: 0 };
  private readonly loginRefusals = Object.fromEntries(LOGIN_REFUSALS.map((r) => [r, 0])) as Record<LoginRefusal, number>;
  /** Open connections per source address. */
  private readonly perAddress = new Map<string, number>();
  /** Accepted connections that have not logged in yet, oldest first. */
  private readonly pendingSockets = new Set<net.Socket>();
  /** Raw sockets by "address|port", to find a client's socket whatever stream aedes reads. */
  private readonly byPeer = new Map<string, net.Socket>();
  private readonly connectInfo = new WeakMap<Client, ConnectInfo>();
  /** Pending sockets whose CONNECT has arrived (logging in): evicted only after idle ones. */
  private readonly connectSeen = new WeakSet<net.Socket>();
  private readonly loginGuard: LoginGuard;
  private readonly sessions: SessionRegistry;
  readonly memory: MemoryGuard;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly lastWarn = new Map<string, number>();
  private readonly dropped = new WeakSet<Duplex>();
  private readonly listenerOf = new WeakMap<Duplex, Listener>();
  /** One of the gateway's publishes is inside aedes (publish()). */
  private inAedes = false;
  /** The gateway's publishes waiting for it, in order. */
  private readonly waiting: { topic: string; payload: string | Buffer; opts: PublishOptions; done: (() => void) | undefined }[] = [];
  /** The gateway's own QoS 0 messages, written without aedes (direct-delivery.ts). */
  private direct: DirectDelivery | null = null;
  /** Connections corked while the gateway's own publishes of this tick are written (cork()). */
  private corked: Duplex[] | null = null;
  private corkTimer: NodeJS.Timeout | null = null;
  private corkedAt = 0;
  /** Rounds of polls open now (liveRound). */
  private openRounds = 0;

  constructor(
    private readonly opts: LocalBrokerOptions,
    private readonly log: Logger,
    private readonly access: AccessControl,
  ) {
    this.loginGuard = new LoginGuard({ ...LOGIN_DEFAULTS, ...opts.loginBackoff });
    this.memory = new MemoryGuard({ ...MEMORY_DEFAULTS, ...opts.memory });
    this.sessions = new SessionRegistry(this.opt('sessionExpirySeconds') * 1000, (id) => {
      this.memory.expire(id).catch((err: Error) => this.log.warn({ client: id, err: err.message }, 'local broker: could not free an expired session'));
      this.log.info({ client: id, sessionExpirySeconds: this.opt('sessionExpirySeconds'), maxSessionsPerAccount: this.opt('maxSessionsPerAccount') }, 'local broker: persistent session expired (offline too long, or its account at maxSessionsPerAccount), its queued messages freed');
    }, this.opt('maxSessionsPerAccount'));
  }

  /** An option, or its default (BROKER_DEFAULTS, the schema's). */
  private opt<K extends keyof typeof BROKER_DEFAULTS>(key: K): number {
    return (this.opts[key] as number | undefined) ?? BROKER_DEFAULTS[key];
  }

  /** The bound port (differs from the configured one when that was 0). */
  get port(): number {
    return boundPort(this.server) ?? this.opts.port;
  }

  /** The TLS listener's bound port, or undefined without one. */
  get tlsPort(): number | undefined {
    return boundPort(this.tlsServer) ?? this.opts.tls?.port;
  }

  /** The WebSocket listener's bound port, or undefined without one. */
  get websocketPort(): number | undefined {
    return boundPort(this.wsHttp) ?? this.opts.websocket?.port;
  }

  get clients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  /** See LocalBrokerStats for what each counter means. */
  get stats(): LocalBrokerStats {
    const refusedLogins = LOGIN_REFUSALS.reduce((n, r) => n + this.loginRefusals[r], 0);
    return {
      connections: this.sockets.size,
      clients: this.clients,
      pendingConnections: this.pendingSockets.size,
      ...this.counts,
      loginRefusals: { ...this.loginRefusals },
      backedOffLogins: this.loginRefusals.backed_off,
      loginVerifications: this.loginGuard.verifications,
      persistentSessions: this.sessions.persistentSessions,
      expiredSessions: this.sessions.expiredSessions,
      refusedInflight: this.memory.refusedInflight,
      droppedQueued: this.memory.droppedQueued,
      refusedRetained: this.memory.refusedRetained,
      ...this.memory.usage,
      refusedLogins,
      refusedSubscriptions: this.access.refusedSubscriptions,
      refusedPublishes: this.access.refusedPublishes,
      droppedLive: this.direct?.dropped ?? 0,
      slowSubscribersClosed: this.direct?.closedSlow ?? 0,
    };
  }

  private get maxConnections(): number {
    return this.opt('maxConnections');
  }

  private get maxPendingConnections(): number {
    return this.opts.maxPendingConnections ?? Math.max(1, Math.floor(this.maxConnections / 2));
  }

  private get maxPacketBytes(): number {
    return this.opt('maxPacketBytes');
  }

  async start(): Promise<void> {
    // TLS files first: a missing key must stop the start before anything listens.
    const tlsOpts = this.opts.tls ? readTlsFiles(this.opts.tls) : null;
    const options: AedesOptions = {
      // aedes' own guards: a stuck client is dropped instead of stalling fan-out, and
      // absurdly deep topics are refused before they reach the topic tree.
      drainTimeout: LIVE_DRAIN_TIMEOUT_MS,
      maxTopicLevels: 16,
      connectTimeout: this.opt('connectTimeoutMs'),
      // aedes applies this to MQTT 3.1 only; authenticate() below enforces it for 3.1.1.
      maxClientsIdLength: this.opt('maxClientIdLength'),
      // aedes' own count cap on inbound QoS 2 awaiting PUBREL; memory-guard.ts adds bytes.
      maxInflightInbound: this.memory.limits.inflightPerClient,
      preConnect: this.preConnect,
      authenticate: this.authenticate,
      authorizeSubscribe: this.authorizeSubscribe,
      authorizePublish: this.authorizePublish,
      authorizeForward: this.access.authorizeForward as AedesOptions['authorizeForward'],
    };
    const aedes = await Aedes.createBroker(options);
    this.memory.install((aedes as unknown as { persistence: WrappablePersistence }).persistence);
    aedes.on('connackSent', (packet, client) => {
      if (packet.returnCode !== 0) return;
      // Logged in: no longer counted against maxPendingConnections. Ready from the CONNACK on,
      // not from 'clientReady', which a persistent session reaches only after its queue was
      // read back: a live message between the two would miss it.
      const sock = this.byPeer.get(peerKey(client.conn as unknown as net.Socket));
      if (sock) this.pendingSockets.delete(sock);
      const conn = client.conn as unknown as Duplex;
      if (this.conns.has(conn)) this.readyConns.add(conn);
      this.direct?.invalidate();
    });
    aedes.on('clientError', (client, err) => {
      this.counts.clientErrors++;
      // aedes closes these itself (MQTT 3.1.1 section 4.7.1); counted as malformed here.
      if (/is not allowed in PUBLISH|empty topic not allowed/.test(err.message)) this.dropClient(client, 'malformed');
      this.log.debug({ client: client?.id, err: err.message }, 'local broker client error');
    });
    aedes.on('connectionError', (client, err) => {
      this.counts.clientErrors++;
      this.log.debug({ client: client?.id, err: err.message }, 'local broker connection error');
    });
    const direct = new DirectDelivery(
      { maxBufferedBytes: this.opts.live?.maxBufferedBytes ?? LIVE_MAX_BUFFERED_BYTES, drainTimeoutMs: this.opts.live?.drainTimeoutMs ?? LIVE_DRAIN_TIMEOUT_MS },
      () => this.readyClients(),
      this.access.authorizeForward,
      (client) => this.warn('slow', { client: client.id, remote: remoteOf(client), closed: direct.closedSlow }, 'local broker: subscriber not reading its live messages, connection closed'),
    );
    direct.attach(aedes);
    this.direct = direct;
    this.aedes = aedes;
    const expiryMs = this.opt('sessionExpirySeconds') * 1000;
    this.sweepTimer = setInterval(() => this.sessions.sweep(), Math.min(60_000, Math.max(50, Math.floor(expiryMs / 4))));
    this.sweepTimer.unref();
    try {
      const server = net.createServer();
      server.on('connection', (socket: net.Socket) => {
        if (this.admit(socket, 'tcp')) this.serve(aedes, socket, 'tcp');
      });
      this.server = server;
      await listen(server, this.opts.host, this.opts.port, 'local broker');
      if (this.opts.tls && tlsOpts) await this.startTls(aedes, this.opts.tls, tlsOpts);
      if (this.opts.websocket) await this.startWebSocket(aedes, this.opts.websocket);
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info(
      {
        host: this.opts.host,
        port: this.port,
        ...(this.tlsServer ? { tlsPort: this.tlsPort } : {}),
        ...(this.wsHttp ? { websocketPort: this.websocketPort } : {}),
        maxConnections: this.maxConnections,
        maxConnectionsPerAddress: this.opt('maxConnectionsPerAddress'),
        maxPendingConnections: this.maxPendingConnections,
        maxPacketBytes: this.maxPacketBytes,
      },
      'local MQTT broker listening',
    );
  }

  private async startTls(aedes: Aedes, t: LocalBrokerTlsOptions, files: { cert: Buffer; key: Buffer; ca?: Buffer }): Promise<void> {
    const requireCert = t.requireClientCert ?? false;
    let server: tls.Server;
    try {
      server = tls.createServer(
        {
          ...files,
          minVersion: 'TLSv1.2',
          requestCert: requireCert,
          rejectUnauthorized: requireCert,
          handshakeTimeout: this.opt('connectTimeoutMs'),
        },
        (socket) => this.serve(aedes, socket, 'tls'),
      );
    } catch (err) {
      // Not PEM, or a key that does not belong to the certificate.
      throw new Error(`localBroker.tls: cannot use certFile ${t.certFile} with keyFile ${t.keyFile}${t.caFile ? ` and caFile ${t.caFile}` : ''}: ${(err as Error).message}`);
    }
    // The cap is checked on the raw TCP connection, before any handshake work.
    server.prependListener('connection', (raw: net.Socket) => void this.admit(raw, 'tls'));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      // OpenSSL's errors (no client certificate, a plain-TCP client, a timeout) and a client
      // certificate Node refused after the handshake (authorizationError, e.g. an unknown CA)
      // are failures; a refused connection or a client leaving mid-handshake is a reset.
      const authorizationError = socket.authorizationError as unknown as string | undefined;
      if (!/^ERR_(SSL|TLS)_/.test(err.code ?? '') && !authorizationError) return;
      this.counts.tlsHandshakeFailures++;
      this.warn('tls', { remote: socket.remoteAddress, err: authorizationError ?? err.message }, 'local broker TLS handshake failed');
    });
    this.tlsServer = server;
    await listen(server, t.host ?? this.opts.host, t.port, 'local broker TLS listener');
  }

  private async startWebSocket(aedes: Aedes, w: LocalBrokerWebSocketOptions): Promise<void> {
    // Plain HTTP requests get 426; the WebSocket upgrade on /mqtt is MQTT (MQTT 3.1.1 section 6).
    const server = http.createServer({ headersTimeout: this.opt('connectTimeoutMs'), requestTimeout: this.opt('connectTimeoutMs') }, (_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', connection: 'close', upgrade: 'websocket' });
      res.end('MQTT over WebSocket: ws://<host>:<port>/mqtt, subprotocol mqtt\n');
    });
    server.prependListener('connection', (raw: net.Socket) => void this.admit(raw, 'websocket'));
    const wss = new WebSocketServer({
      server,
      path: '/mqtt',
      perMessageDeflate: false,
      // One WebSocket message may not be larger than the largest packet either (ws closes
      // the connection with 1009 otherwise); a packet may span several messages.
      maxPayload: this.maxPacketBytes,
      // MQTT 3.1.1 section 6: the server selects "mqtt" (MQTT 3.1 clients offer "mqttv3.1").
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    wss.on('connection', (ws, req) => {
      const stream = createWebSocketStream(ws);
      // access.ts reads the peer from client.conn.remoteAddress (the loopback-anonymous rule).
      Object.defineProperty(stream, 'remoteAddress', { value: req.socket.remoteAddress, enumerable: true });
      Object.defineProperty(stream, 'remotePort', { value: req.socket.remotePort, enumerable: true });
      // ws closes the connection itself on a message over maxPayload (1009) or a broken frame.
      ws.on('error', (err: Error & { code?: string }) => {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.drop(stream, 'oversized', 'websocket');
        else if (err.code?.startsWith('WS_ERR_')) this.drop(stream, 'malformed', 'websocket');
      });
      this.serve(aedes, stream, 'websocket', req);
    });
    wss.on('error', (err) => this.log.warn({ err: err.message }, 'local broker WebSocket listener error'));
    this.wsHttp = server;
    this.wss = wss;
    await listen(server, w.host ?? this.opts.host, w.port, 'local broker WebSocket listener');
  }

  /** Counts an accepted TCP connection, or closes it at once past maxConnections or
   * maxConnectionsPerAddress. Connections that have not logged in yet may hold at most
   * maxPendingConnections: past it the oldest of them is closed, so idle sockets cannot keep
   * a client that sends its CONNECT at once out. */
  private admit(socket: net.Socket, listener: Listener): boolean {
    const address = socket.remoteAddress ?? '';
    const fromHere = this.perAddress.get(address) ?? 0;
    if (this.sockets.size >= this.maxConnections || fromHere >= this.opt('maxConnectionsPerAddress')) {
      this.counts.refusedConnections++;
      const perAddress = this.sockets.size < this.maxConnections;
      if (perAddress) this.counts.refusedPerAddress++;
      this.warn(
        perAddress ? 'cap-address' : 'cap',
        { listener, remote: address, maxConnections: this.maxConnections, maxConnectionsPerAddress: this.opt('maxConnectionsPerAddress'), refused: this.counts.refusedConnections },
        perAddress ? 'local broker per-address connection cap reached: refusing connections from this address' : 'local broker connection cap reached: refusing connections',
      );
      socket.destroy();
      return false;
    }
    if (this.pendingSockets.size >= this.maxPendingConnections) {
      // The oldest that has not even sent CONNECT; a login in progress only if there is none.
      let oldest: net.Socket | undefined;
      for (const p of this.pendingSockets) {
        if (!this.connectSeen.has(p)) {
          oldest = p;
          break;
        }
      }
      oldest ??= this.pendingSockets.values().next().value!;
      this.pendingSockets.delete(oldest);
      this.counts.evictedPending++;
      this.warn('pending', { listener, remote: oldest.remoteAddress, maxPendingConnections: this.maxPendingConnections, evicted: this.counts.evictedPending }, 'local broker: too many connections not logged in, closing the oldest');
      oldest.destroy();
    }
    this.counts.acceptedConnections++;
    this.sockets.add(socket);
    this.pendingSockets.add(socket);
    this.perAddress.set(address, fromHere + 1);
    const key = peerKey(socket);
    this.byPeer.set(key, socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.pendingSockets.delete(socket);
      if (this.byPeer.get(key) === socket) this.byPeer.delete(key);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
    return true;
  }

  /** Before aedes looks at a CONNECT: note what authenticate() needs, and close the
   * connection on a will topic that breaks MQTT 3.1.1 (U+0000, section 1.5.3; a wildcard,
   * section 3.1.3.3 and 4.7.1). An error here closes the connection without a CONNACK. */
  private readonly preConnect = (client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void => {
    this.connectInfo.set(client, { clientIdBytes: Buffer.byteLength(packet.clientId ?? ''), clean: packet.clean ?? true, keepalive: packet.keepalive ?? 0 });
    const sock = this.byPeer.get(peerKey(client.conn as unknown as net.Socket));
    if (sock) this.connectSeen.add(sock);
    const will = packet.will?.topic;
    if (hasNul(packet.clientId ?? '') || (will !== undefined && (hasNul(will) || /[+#]/.test(will) || will === ''))) {
      this.dropClient(client, 'malformed');
      return done(new Error('malformed CONNECT: U+0000 or a wildcard in the client id or will topic'), false);
    }
    done(null, true);
  };

  /** Login: the client id rules, back-off, the account check (access.ts), then the client id
   * binding (sessions.ts). */
  private readonly authenticate = (client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void => {
    const info = this.connectInfo.get(client);
    const remote = remoteOf(client);
    const refuse = (reason: LoginRefusal, err: AuthenticateError) => {
      this.loginRefusals[reason]++;
      this.warn(`login-${reason}`, { remote, username, client: client.id, reason, refused: this.loginRefusals[reason] }, 'local broker: login refused');
      done(err, false);
    };
    // MQTT 3.1.1 section 3.1.3.1: a server may refuse a long client id, and must refuse an
    // empty one with CleanSession 0 (3.1.3-8), with CONNACK 2, identifier rejected (3.2.2.3).
    if (info && (info.clientIdBytes > this.opt('maxClientIdLength') || (info.clientIdBytes === 0 && !info.clean))) {
      return refuse('client_id_invalid', connackError(2, 'identifier rejected'));
    }
    const user = username ?? '';
    if (this.loginGuard.wait(remote, user) > 0) return refuse('backed_off', connackError(3, 'too many failed logins: try again later'));
    const finish = (err: AuthenticateError | null, ok: boolean | null) => {
      if (err || !ok) {
        if (!username) return refuse('anonymous', err ?? connackError(5, 'not authorized'));
        const t = this.loginGuard.failure(remote, user);
        this.loginRefusals.bad_credentials++;
        this.warn('login-failure', { remote, username, failuresFromAddress: t.failures, refused: this.loginRefusals.bad_credentials }, 'local broker: wrong user name or password');
        return done(err ?? connackError(4, 'bad user name or password'), false);
      }
      if (username) this.loginGuard.success(remote, user);
      // The client may have gone while argon2 ran: its 'close' has fired already, so a claim
      // now would never be released (the id bound for good, the entry never swept).
      const conn = client.conn as Duplex;
      if (client.closed || conn.destroyed) return done(connackError(3, 'the connection closed during the login'), false);
      const owner = identityOf(client) ?? 'anonymous';
      // CONNACK 2, not 5: the credentials were right; what is refused is this client id,
      // which belongs to another identity (MQTT 3.1.1 section 3.2.2.3: "the Client
      // identifier is correct UTF-8 but not allowed by the Server"). Checked only after the
      // password, so a stranger learns nothing about which ids are in use.
      if (!this.sessions.claim(client, client.id, owner, info?.clean ?? client.clean)) {
        return refuse('client_id_taken', connackError(2, 'identifier rejected: this client id belongs to another account'));
      }
      const id = client.id;
      conn.once('close', () => this.sessions.release(id, client));
      done(null, true);
    };
    if (!username) return this.access.authenticate(client, username, password, finish);
    const queued = this.loginGuard.run((release) => {
      // Waited for a slot: failures meanwhile may have backed this attempt off.
      if (client.closed) return release();
      if (this.loginGuard.wait(remote, user) > 0) {
        release();
        return refuse('backed_off', connackError(3, 'too many failed logins: try again later'));
      }
      this.access.authenticate(client, username, password, (err, ok) => {
        release();
        finish(err, ok);
      });
    });
    if (!queued) refuse('busy', connackError(3, 'too many logins at once: try again later'));
  };

  private readonly authorizeSubscribe = (client: Client, sub: Subscription, done: (err: Error | null, sub?: Subscription | null) => void): void => {
    if (hasNul(sub.topic)) {
      this.dropClient(client, 'malformed');
      return done(new Error('U+0000 in a topic filter (MQTT 3.1.1 section 1.5.3)'));
    }
    this.access.authorizeSubscribe(client, sub, done);
  };

  /** Protocol checks aedes lacks, the ACL, then the retained-message caps (before any PUBACK). */
  private readonly authorizePublish = (client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void => {
    if (client && hasNul(packet.topic)) {
      // MQTT 3.1.1 section 1.5.3: the receiver MUST close the network connection.
      this.dropClient(client, 'malformed');
      return done(new Error('U+0000 in a PUBLISH topic (MQTT 3.1.1 section 1.5.3)'));
    }
    this.access.authorizePublish(client, packet, (err) => {
      if (err || !client || !packet.retain || typeof packet.payload === 'string' || packet.payload.length === 0) return done(err);
      const owner = identityOf(client) ?? 'anonymous';
      if (!this.memory.retainedFits(owner, packet.topic, packetBytes(packet))) {
        this.memory.refusedRetained++;
        this.warn('retained-cap', { client: client.id, owner, topic: packet.topic, refused: this.memory.refusedRetained, usage: this.memory.retainedUsage(owner) }, 'local broker: retained message over the cap refused, connection closed');
        return done(new Error('retained message cap reached'));
      }
      this.memory.noteOwner(packet.payload, owner);
      done(null);
    });
  };

  /** Hands a connection to aedes behind the packet guard. The guard wraps the stream's
   * read() (aedes consumes it with read() on 'readable'), so it judges each chunk before
   * aedes' parser sees it: an oversized or malformed packet never reaches aedes, while the
   * whole packets before it in the same chunk still do. A 'data' listener would run too
   * late: aedes would already hold the chunk. */
  private serve(aedes: Aedes, conn: Duplex, listener: Listener, req?: http.IncomingMessage): void {
    const guard = new PacketGuard(this.maxPacketBytes);
    // Server-side idle bound: a client silent for 1.5x maxKeepaliveSeconds is closed, whatever
    // keepalive it asked for (0, "none", or more than the maximum; MQTT 3.1.1 section
    // 3.1.2.10). A client within its own smaller keepalive is closed earlier by aedes.
    const idle = setTimeout(() => {
      this.counts.idleTimeouts++;
      this.warn('idle', { listener, remote: (conn as { remoteAddress?: string }).remoteAddress, maxKeepaliveSeconds: this.opt('maxKeepaliveSeconds') }, 'local broker: connection silent too long, closed');
      conn.destroy();
    }, this.opt('maxKeepaliveSeconds') * 1500);
    idle.unref();
    conn.once('close', () => clearTimeout(idle));
    const read = conn.read.bind(conn);
    conn.read = (size?: number) => {
      const chunk = read(size) as Buffer | string | null;
      if (chunk === null || typeof chunk === 'string') return chunk;
      idle.refresh();
      const verdict = guard.check(chunk);
      if (verdict === null) return chunk;
      this.drop(conn, verdict, listener);
      conn.destroy();
      return guard.validBytes > 0 ? chunk.subarray(0, guard.validBytes) : null;
    };
    this.conns.add(conn);
    this.listenerOf.set(conn, listener);
    conn.once('close', () => {
      this.conns.delete(conn);
      if (this.readyConns.delete(conn)) this.direct?.invalidate();
    });
    aedes.handle(conn, req);
  }

  /** drop() for a connection aedes serves. */
  private dropClient(client: Client, verdict: GuardVerdict): void {
    const conn = client.conn as Duplex;
    this.drop(conn, verdict, this.listenerOf.get(conn) ?? 'tcp');
  }

  /** Counts a connection closed for a bad packet (once per connection). */
  private drop(conn: Duplex, verdict: GuardVerdict, listener: Listener): void {
    if (this.dropped.has(conn)) return;
    this.dropped.add(conn);
    const remote = (conn as { remoteAddress?: string }).remoteAddress;
    if (verdict === 'oversized') this.counts.oversizedPackets++;
    else this.counts.malformedPackets++;
    this.warn(
      verdict,
      { listener, remote, maxPacketBytes: this.maxPacketBytes, oversizedPackets: this.counts.oversizedPackets, malformedPackets: this.counts.malformedPackets },
      verdict === 'oversized' ? 'local broker: packet over maxPacketBytes, connection closed' : 'local broker: malformed MQTT framing, connection closed',
    );
  }

  /** A warning at most once a minute per kind (a flood must not flood the log); debug otherwise. */
  private warn(kind: string, obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    if (now - (this.lastWarn.get(kind) ?? -Infinity) >= WARN_INTERVAL_MS) {
      this.lastWarn.set(kind, now);
      this.log.warn(obj, msg);
    } else {
      this.log.debug(obj, msg);
    }
  }

  private *readyClients(): Iterable<Client> {
    for (const conn of this.readyConns) {
      const client = (conn as Duplex & { client?: Client }).client;
      if (client) yield client;
    }
  }

  /** Publish from the gateway itself (QoS 0 for live values, QoS 1 for retained state).
   * `done` runs once the message was handed to every subscriber. No promise here: this is
   * the per-reading hot path. A QoS 0 message that is not retained is written directly
   * (direct-delivery.ts); the others go through aedes, one at a time, and whatever the gateway
   * publishes meanwhile waits in order behind it. One at a time because aedes drops a message
   * that a later one overtook: it keeps, per subscriber, the highest broker counter delivered
   * and refuses lower ones as duplicates (aedes lib/client.js dedupe), and a retained message
   * waits for its store while a later one does not. An "online" followed by the device's
   * readings in the same tick was lost that way. */
  publish(topic: string, payload: string | Buffer, opts: PublishOptions = {}, done?: () => void): void {
    const a = this.aedes;
    if (!a || a.closed) {
      done?.();
      return;
    }
    // In a round the window has no timer: one that is coalesceMs old is written now.
    if (this.corked && this.openRounds > 0 && this.coalesceMs > 0 && monoNow() - this.corkedAt >= this.coalesceMs) this.uncork();
    if (!this.corked && this.readyConns.size > 0) this.cork();
    if (this.inAedes || this.waiting.length > 0) {
      this.waiting.push({ topic, payload, opts, done });
      return;
    }
    this.send(a, topic, payload, opts, done);
  }

  /** Publishes of the gateway not yet handed to every subscriber: the one inside aedes and
   * those waiting behind it. */
  get pending(): number {
    return (this.inAedes ? 1 : 0) + this.waiting.length;
  }

  private send(a: Aedes, topic: string, payload: string | Buffer, opts: PublishOptions, done: (() => void) | undefined): void {
    if (this.direct && !opts.retain && (opts.qos ?? 0) === 0) {
      this.direct.deliver(topic, payload);
      done?.();
      return;
    }
    this.inAedes = true;
    a.publish(
      {
        cmd: 'publish',
        topic,
        payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
        qos: opts.qos ?? 0,
        retain: opts.retain ?? false,
        dup: false,
      },
      (err) => {
        this.inAedes = false;
        if (err) this.log.warn({ topic, err: err.message }, 'local publish failed');
        done?.();
        this.sendWaiting();
      },
    );
  }

  private sendWaiting(): void {
    const a = this.aedes;
    while (!this.inAedes && this.waiting.length > 0) {
      const w = this.waiting.shift()!;
      if (!a || a.closed) w.done?.();
      else this.send(a, w.topic, w.payload, w.opts, w.done);
    }
  }

  /** The gateway's live messages reach each subscriber in as few writes as it can, with few
   * wake-ups of the process. aedes wrote each message to each subscriber's socket on its own,
   * and a socket write per reading and subscriber was the costliest step of the per-reading
   * path (PERFORMANCE.md); on this kind of machine a wake-up from idle costs more than a
   * round's work. So the ready connections are corked at the gateway's first publish, and:
   * - while a bus' round of polls is open (liveRound), they are uncorked when it ends, or at a
   *   publish once the window is coalesceMs old (a long RTU round streams). No timer: a timer
   *   costs a wake-up even when cleared before it fires (Node leaves libuv's timer armed);
   * - otherwise (GPIO, availability), coalesceMs later, one timer per window.
   * With coalesceMs 0, always in a setImmediate queued after the tick's publishes.
   * Nothing stays corked waiting for a subscriber, so a full socket cannot stall the others. The
   * cost of no timer: while a round waits on a silent device (up to the bus' timeoutMs), what
   * it published before waits with it. */
  private cork(): void {
    const conns = [...this.readyConns];
    for (const c of conns) c.cork();
    this.corked = conns;
    this.corkedAt = monoNow();
    this.armCorkTimer();
  }

  private get coalesceMs(): number {
    return this.opts.live?.coalesceMs ?? LIVE_COALESCE_MS;
  }

  private armCorkTimer(): void {
    const ms = this.coalesceMs;
    if (ms === 0) process.nextTick(this.queueUncork);
    else if (this.openRounds === 0) this.corkTimer = setTimeout(this.uncorkNow, ms);
  }

  /** A producer's round of polls opened or ended (ModbusBus.onRound): while any is open, the
   * live window closes at its end instead of on a timer. */
  liveRound(open: boolean): void {
    if (open) {
      this.openRounds++;
      return;
    }
    this.openRounds = Math.max(0, this.openRounds - 1);
    this.uncork();
  }

  private readonly queueUncork = (): void => {
    setImmediate(this.uncorkNow);
  };

  private readonly uncorkNow = (): void => this.uncork();

  private uncork(): void {
    if (this.corkTimer) clearTimeout(this.corkTimer);
    this.corkTimer = null;
    const conns = this.corked;
    if (!conns) return;
    this.corked = null;
    for (const c of conns) if (!c.destroyed) c.uncork();
  }

  publishAsync(topic: string, payload: string | Buffer, opts: PublishOptions = {}): Promise<void> {
    return new Promise((resolve) => this.publish(topic, payload, opts, resolve));
  }

  /** Lets written bytes reach the clients (bounded), then closes every connection. */
  async stop(): Promise<void> {
    const a = this.aedes;
    const servers = [this.server, this.tlsServer, this.wsHttp].filter((s): s is net.Server => s !== null);
    const wss = this.wss;
    this.aedes = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    this.server = null;
    this.tlsServer = null;
    this.wsHttp = null;
    this.wss = null;
    // Bounded wait for publishes still inside aedes, then for bytes still in socket buffers.
    const until = Date.now() + 1000;
    while (Date.now() < until && (this.pending > 0 || [...this.conns].some((k) => k.writableLength > 0))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    this.uncork();
    if (a) await new Promise<void>((resolve) => a.close(() => resolve()));
    for (const c of this.conns) c.destroy();
    for (const sock of this.sockets) sock.destroy();
    if (wss) await new Promise<void>((resolve) => wss.close(() => resolve()));
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  }
}

/** "address|port" of a connection: the same for a raw socket and the TLS socket or WebSocket
 * stream on top of it. */
function peerKey(conn: { remoteAddress?: string; remotePort?: number }): string {
  return `${conn.remoteAddress ?? ''}|${conn.remotePort ?? ''}`;
}

function boundPort(s: net.Server | null): number | undefined {
  const a = s?.address();
  return a && typeof a === 'object' ? a.port : undefined;
}

function listen(server: net.Server, host: string, port: number, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // Stays attached: a later listener error is then a no-op, not an unhandled 'error'.
    server.on('error', (err: NodeJS.ErrnoException) => reject(new Error(`${what} cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
    server.listen(port, host, () => resolve());
  });
}

/** Reads the TLS listener's PEM files; an error names the config field and the file. */
function readTlsFiles(t: LocalBrokerTlsOptions): { cert: Buffer; key: Buffer; ca?: Buffer } {
  const read = (field: 'certFile' | 'keyFile' | 'caFile', file: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`localBroker.tls.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return {
    cert: read('certFile', t.certFile),
    key: read('keyFile', t.keyFile),
    ...(t.caFile !== undefined ? { ca: read('caFile', t.caFile) } : {}),
  };
}
