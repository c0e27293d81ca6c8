// The box's own MQTT broker (aedes, MQTT 3.1.1) for facility staff and local apps.
import net from 'node:net';
import { Aedes, type AedesOptions } from 'aedes';
import type { Logger } from '../log.js';
import type { AccessControl } from './access.js';

export interface LocalBrokerOptions {
  host: string;
  port: number;
}

export class LocalBroker {
  private aedes: Aedes | null = null;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Publishes handed to aedes and not yet delivered to every subscriber. */
  pending = 0;

  constructor(
    private readonly opts: LocalBrokerOptions,
    private readonly log: Logger,
    private readonly access: AccessControl,
  ) {}

  /** The bound port (differs from the configured one when that was 0). */
  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.opts.port;
  }

  get clients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  async start(): Promise<void> {
    const options: AedesOptions = {
      // aedes' own guards: a stuck client is dropped instead of stalling fan-out, and
      // absurdly deep topics are refused before they reach the topic tree.
      drainTimeout: 10_000,
      maxTopicLevels: 16,
      connectTimeout: 10_000,
      authenticate: this.access.authenticate,
      authorizeSubscribe: this.access.authorizeSubscribe,
      authorizePublish: this.access.authorizePublish,
      authorizeForward: this.access.authorizeForward as AedesOptions['authorizeForward'],
    };
    const aedes = await Aedes.createBroker(options);
    aedes.on('clientError', (client, err) => this.log.debug({ client: client?.id, err: err.message }, 'local broker client error'));
    aedes.on('connectionError', (client, err) => this.log.debug({ client: client?.id, err: err.message }, 'local broker connection error'));
    const server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      aedes.handle(socket);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new Error(`local broker cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`)),
      );
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.aedes = aedes;
    this.server = server;
    this.log.info({ host: this.opts.host, port: this.port }, 'local MQTT broker listening');
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
        if (err) this.log.warn({ topic, err: err.message }, 'local publish failed');
        done?.();
      },
    );
  }

  publishAsync(topic: string, payload: string | Buffer, opts: { retain?: boolean; qos?: 0 | 1 } = {}): Promise<void> {
    return new Promise((resolve) => this.publish(topic, payload, opts, resolve));
  }

  /** Lets written bytes reach the clients (bounded), then closes every connection. */
  async stop(): Promise<void> {
    const a = this.aedes;
    const s = this.server;
    this.aedes = null;
    this.server = null;
    // Bounded wait for publishes still inside aedes, then for bytes still in socket buffers.
    const until = Date.now() + 1000;
    while (Date.now() < until && (this.pending > 0 || [...this.sockets].some((k) => k.writableLength > 0))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (a) await new Promise<void>((resolve) => a.close(() => resolve()));
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
