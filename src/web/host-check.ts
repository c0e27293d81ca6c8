// DNS rebinding defence: a page on an attacker's domain whose name later resolves to the box
// can make a LAN browser send requests to the box, but the browser still sends the attacker's
// name in Host. So every API request must name the box itself: one of its own addresses or
// names, with the port it was received on (RFC 9110 7.2: Host is host[:port]).
import net from 'node:net';
import os from 'node:os';

const CACHE_MS = 5_000;

/** The names and addresses this box answers to, lower case, IPv6 without brackets. */
export class HostCheck {
  private cached: { at: number; names: Set<string> } | null = null;

  constructor(
    /** The listening address (web.host); 0.0.0.0 / :: add nothing by themselves. */
    private readonly listenHost: () => string,
    /** Extra names the site uses for the box (web.allowedHosts), e.g. a DNS name. */
    private readonly extra: () => readonly string[] = () => [],
    private readonly now: () => number = () => performance.now(),
  ) {}

  names(): Set<string> {
    const t = this.now();
    // Interfaces change (DHCP, a second NIC): re-read every few seconds, not per request.
    if (this.cached && t - this.cached.at < CACHE_MS) return this.cached.names;
    const names = new Set<string>(['localhost', '127.0.0.1', '::1']);
    const host = this.listenHost().toLowerCase();
    if (host !== '0.0.0.0' && host !== '::' && host !== '') names.add(host);
    const hn = os.hostname().toLowerCase();
    if (hn) {
      names.add(hn);
      names.add(`${hn.split('.')[0]}.local`);
    }
    for (const list of Object.values(os.networkInterfaces())) {
      for (const a of list ?? []) names.add(stripZone(a.address.toLowerCase()));
    }
    for (const e of this.extra()) names.add(e.toLowerCase());
    this.cached = { at: t, names };
    return names;
  }

  /** True when `header` (the Host header) names this box on `port`. */
  allows(header: string | undefined, port: number, defaultPort: number): boolean {
    const parsed = parseHost(header);
    if (!parsed) return false;
    if ((parsed.port ?? defaultPort) !== port) return false;
    return this.names().has(parsed.host);
  }
}

function stripZone(a: string): string {
  const i = a.indexOf('%');
  return i >= 0 ? a.slice(0, i) : a;
}

/** "Host" as {host, port?}; null if malformed. "[::1]:8080", "gw.local", "10.0.0.5:80". */
export function parseHost(header: string | undefined): { host: string; port?: number } | null {
  if (!header) return null;
  const h = header.trim().toLowerCase();
  let host: string;
  let portText: string | undefined;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    host = stripZone(h.slice(1, end).replace('%25', '%'));
    const rest = h.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return null;
    portText = rest ? rest.slice(1) : undefined;
    if (!net.isIPv6(host)) return null;
  } else {
    const colon = h.lastIndexOf(':');
    if (colon >= 0 && h.indexOf(':') !== colon) return null; // bare IPv6 is not a valid Host
    host = colon >= 0 ? h.slice(0, colon) : h;
    portText = colon >= 0 ? h.slice(colon + 1) : undefined;
    if (host.endsWith('.')) host = host.slice(0, -1); // "gw.local." is the same name
    if (!/^[a-z0-9.-]+$/.test(host)) return null;
  }
  if (portText === undefined) return { host };
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port > 0 && port <= 65535 ? { host, port } : null;
}
