// The box's own MQTT broker (aedes, MQTT 3.1.1) for facility staff and local apps: a plain
// TCP listener, optionally a TLS and a WebSocket listener, all served by one aedes instance
// with the same accounts and ACLs (access.ts). Limits aedes lacks are added here: a cap on
// open connections over all listeners, and a packet-size and framing guard (packet-guard.ts)
// between each connection and aedes.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { Aedes, type AedesOptions } from 'aedes';
import { WebSocketServer, createWebSocketStream } from 'ws';
import type { Logger } from '../log.js';
import type { AccessControl } from './access.js';
import { PacketGuard, type GuardVerdict } from './packet-guard.js';

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
  /** Largest packet a client may send, fixed header included; default 262144. */
  maxPacketBytes?: number;
  /** Longest client id accepted; default 23. */
  maxClientIdLength?: number;
  tls?: LocalBrokerTlsOptions;
  websocket?: LocalBrokerWebSocketOptions;
}

/** Counters for metrics and the status page. Counts are since start (they only grow), except
 * `connections` and `clients`, which are current values. */
export interface LocalBrokerStats {
  /** Open connections now, over all listeners (TCP, TLS, WebSocket), counted from accept on:
   * includes ones still in the TLS/WebSocket handshake or before CONNECT. */
  connections: number;
  /** MQTT clients connected now (CONNECT accepted). */
  clients: number;
  /** Connections accepted (not refused by the cap). */
  acceptedConnections: number;
  /** Connections closed at once because maxConnections were already open. */
  refusedConnections: number;
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
  /** CONNECTs refused: bad user name or password, or anonymous where not allowed (access.ts). */
  refusedLogins: number;
  /** Subscriptions answered with SUBACK failure (outside the account's patterns, or a personal topic). */
  refusedSubscriptions: number;
  /** Publishes outside the account's patterns (dropped, client disconnected). */
  refusedPublishes: number;
}

type Listener = 'tcp' | 'tls' | 'websocket';

const DEFAULT_MAX_CONNECTIONS = 200;
const DEFAULT_MAX_PACKET_BYTES = 262_144;
const DEFAULT_MAX_CLIENT_ID_LENGTH = 23;
/** CONNECT must arrive this soon after accept; also the TLS and WebSocket handshake timeout. */
const CONNECT_TIMEOUT_MS = 10_000;
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
  private readonly counts = { acceptedConnections: 0, refusedConnections: 0, oversizedPackets: 0, malformedPackets: 0, clientErrors: 0, tlsHandshakeFailures: 0 };
  private readonly lastWarn = new Map<string, number>();
  private readonly dropped = new WeakSet<Duplex>();
  /** Publishes handed to aedes and not yet delivered to every subscriber. */
  pending = 0;
  /** Connections corked while the gateway's own publishes are in flight (see publish()). */
  private corked: Duplex[] | null = null;
  private corkTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: LocalBrokerOptions,
    private readonly log: Logger,
    private readonly access: AccessControl,
  ) {}

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
    return {
      connections: this.sockets.size,
      clients: this.clients,
      ...this.counts,
      refusedLogins: this.access.refusedLogins,
      refusedSubscriptions: this.access.refusedSubscriptions,
      refusedPublishes: this.access.refusedPublishes,
    };
  }

  private get maxConnections(): number {
    return this.opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  }

  private get maxPacketBytes(): number {
    return this.opts.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES;
  }

  async start(): Promise<void> {
    // TLS files first: a missing key must stop the start before anything listens.
    const tlsOpts = this.opts.tls ? readTlsFiles(this.opts.tls) : null;
    const options: AedesOptions = {
      // aedes' own guards: a stuck client is dropped instead of stalling fan-out, and
      // absurdly deep topics are refused before they reach the topic tree.
      drainTimeout: 10_000,
      maxTopicLevels: 16,
      connectTimeout: CONNECT_TIMEOUT_MS,
      maxClientsIdLength: this.opts.maxClientIdLength ?? DEFAULT_MAX_CLIENT_ID_LENGTH,
      authenticate: this.access.authenticate,
      authorizeSubscribe: this.access.authorizeSubscribe,
      authorizePublish: this.access.authorizePublish,
      authorizeForward: this.access.authorizeForward as AedesOptions['authorizeForward'],
    };
    const aedes = await Aedes.createBroker(options);
    aedes.on('clientError', (client, err) => {
      this.counts.clientErrors++;
      this.log.debug({ client: client?.id, err: err.message }, 'local broker client error');
    });
    aedes.on('connectionError', (client, err) => {
      this.counts.clientErrors++;
      this.log.debug({ client: client?.id, err: err.message }, 'local broker connection error');
    });
    this.aedes = aedes;
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
          handshakeTimeout: CONNECT_TIMEOUT_MS,
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
    const server = http.createServer({ headersTimeout: CONNECT_TIMEOUT_MS, requestTimeout: CONNECT_TIMEOUT_MS }, (_req, res) => {
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

  /** Counts an accepted TCP connection, or closes it at once past maxConnections. */
  private admit(socket: net.Socket, listener: Listener): boolean {
    if (this.sockets.size >= this.maxConnections) {
      this.counts.refusedConnections++;
      this.warn('cap', { listener, maxConnections: this.maxConnections, refused: this.counts.refusedConnections }, 'local broker connection cap reached: refusing connections');
      socket.destroy();
      return false;
    }
    this.counts.acceptedConnections++;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return true;
  }

  /** Hands a connection to aedes behind the packet guard. The guard wraps the stream's
   * read() (aedes consumes it with read() on 'readable'), so it judges each chunk before
   * aedes' parser sees it: an oversized or malformed packet never reaches aedes, while the
   * whole packets before it in the same chunk still do. A 'data' listener would run too
   * late: aedes would already hold the chunk. */
  private serve(aedes: Aedes, conn: Duplex, listener: Listener, req?: http.IncomingMessage): void {
    const guard = new PacketGuard(this.maxPacketBytes);
    const read = conn.read.bind(conn);
    conn.read = (size?: number) => {
      const chunk = read(size) as Buffer | string | null;
      if (chunk === null || typeof chunk === 'string') return chunk;
      const verdict = guard.check(chunk);
      if (verdict === null) return chunk;
      this.drop(conn, verdict, listener);
      conn.destroy();
      return guard.validBytes > 0 ? chunk.subarray(0, guard.validBytes) : null;
    };
    this.conns.add(conn);
    conn.once('close', () => this.conns.delete(conn));
    aedes.handle(conn, req);
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

  /** Publish from the gateway itself (QoS 0 for live values, QoS 1 for retained state).
   * `done` runs once aedes has handed the message to every subscriber. No promise here:
   * this is the per-reading hot path. */
  publish(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 } = {}, done?: () => void): void {
    const a = this.aedes;
    if (!a || a.closed) {
      done?.();
      return;
    }
    if (!this.corked && this.conns.size > 0) this.cork();
    this.pending++;
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
        this.pending--;
        if (this.pending === 0) this.uncork();
        if (err) this.log.warn({ topic, err: err.message }, 'local publish failed');
        done?.();
      },
    );
  }

  /** The readings of one Modbus reply are published together, but aedes delivers them one
   * macrotask apart, so each would cost every subscriber its own socket write (about 13 % of
   * the gateway's CPU at a site-like rate, PERFORMANCE.md). The connections are corked while
   * the gateway's publishes are in flight and uncorked when none is left, or after at most
   * CORK_MAX_MS so that a steady stream is still flushed and a full socket buffer (aedes
   * waiting for 'drain') cannot stall. */
  private cork(): void {
    const conns = [...this.conns];
    for (const c of conns) c.cork();
    this.corked = conns;
    this.corkTimer = setTimeout(() => this.uncork(), CORK_MAX_MS);
  }

  private uncork(): void {
    const conns = this.corked;
    if (!conns) return;
    this.corked = null;
    if (this.corkTimer) clearTimeout(this.corkTimer);
    this.corkTimer = null;
    for (const c of conns) if (!c.destroyed) c.uncork();
  }

  publishAsync(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    return new Promise((resolve) => this.publish(topic, payload, opts, resolve));
  }

  /** Lets written bytes reach the clients (bounded), then closes every connection. */
  async stop(): Promise<void> {
    const a = this.aedes;
    const servers = [this.server, this.tlsServer, this.wsHttp].filter((s): s is net.Server => s !== null);
    const wss = this.wss;
    this.aedes = null;
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

/** Longest a connection stays corked for the gateway's publishes: well under what a person
 * watching a live value notices, and short enough to keep a socket's buffer small. */
const CORK_MAX_MS = 5;

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
