// A small API client on node:http (not fetch): it can send any Host header and pick its local
// loopback address (127.0.0.x), so tests can play a DNS-rebound page or many client addresses.
import http from 'node:http';

export interface RawAnswer {
  status: number;
  body: any;
  headers: http.IncomingHttpHeaders;
}

export function rawRequest(port: number, method: string, url: string, opts: { body?: unknown; headers?: Record<string, string>; localAddress?: string } = {}): Promise<RawAnswer> {
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: url,
        localAddress: opts.localAddress,
        agent: false,
        headers: { host: `127.0.0.1:${port}`, ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}), ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A browser-like client: keeps the session cookie and CSRF token, from one local address. */
export class RawClient {
  cookie = '';
  csrf = '';
  constructor(
    readonly port: number,
    readonly localAddress = '127.0.0.1',
    readonly host = `127.0.0.1:${port}`,
  ) {}

  async call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
    const r = await rawRequest(this.port, method, url, {
      body: body ?? (method === 'GET' ? undefined : {}),
      localAddress: this.localAddress,
      headers: { host: this.host, ...(this.cookie ? { cookie: this.cookie } : {}), ...(method !== 'GET' && this.csrf ? { 'x-csrf-token': this.csrf } : {}), ...headers },
    });
    const set = r.headers['set-cookie']?.[0];
    if (set) this.cookie = set.split(';')[0]!;
    if (r.body && typeof r.body === 'object' && typeof r.body.csrf === 'string') this.csrf = r.body.csrf;
    return r;
  }

  get = (url: string) => this.call('GET', url);
  post = (url: string, body: unknown = {}) => this.call('POST', url, body);
}
