// Read-only status over HTTP on web.port: /healthz for liveness, /api/status for the live
// state, and a plain status page. The technician's full page (login, config editing, charts)
// is issue 6; until it lands nothing here changes state, and personal or identifier values
// are withheld because there is no login yet.
import http from 'node:http';
import type { Logger } from '../log.js';
import type { Reading } from '../types.js';
import { STATUS_PAGE } from './status-page.js';

export interface StatusSource {
  snapshot(): unknown;
  privacy(): unknown;
}

export function publicReading(r: Reading): Record<string, unknown> {
  const withheld = r.privacy !== 'public';
  return { ts: r.ts, value: withheld ? null : r.value, unit: r.unit, quality: r.quality, ...(withheld ? { withheld: r.privacy } : {}), ...(r.detail ? { detail: r.detail } : {}) };
}

export class StatusServer {
  private server: http.Server | null = null;

  constructor(
    private readonly opts: { host: string; port: number },
    private readonly source: StatusSource,
    private readonly log: Logger,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.opts.port;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`web server cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`)));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.log.info({ host: this.opts.host, port: this.port }, 'status web server listening');
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = (req.url ?? '/').split('?')[0];
    const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, allow: 'GET, HEAD', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'method not allowed' }));
      return;
    }
    if (url === '/healthz') {
      res.writeHead(200, { ...headers, 'content-type': 'text/plain' }).end('ok\n');
    } else if (url === '/api/status') {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(this.source.snapshot()));
    } else if (url === '/api/privacy') {
      res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(this.source.privacy()));
    } else if (url === '/') {
      res
        .writeHead(200, { ...headers, 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" })
        .end(STATUS_PAGE);
    } else {
      res.writeHead(404, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
    }
  }
}
