// The probe of every listen address before start-up, against real sockets and the real /proc.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { busyListeners, busyMessage, portHolder } from '../../src/service/port-check.js';
import { freePort } from '../helpers/peers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function hold(port: number, host = '127.0.0.1'): Promise<net.Server> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(port, host, () => resolve()));
  cleanups.push(() => new Promise((r) => s.close(r)));
  return s;
}

async function bindable(port: number): Promise<boolean> {
  const s = net.createServer();
  return new Promise((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('busyListeners', () => {
  it('finds nothing when every port is free, skips port 0, and leaves the ports free again', async () => {
    const [a, b] = [await freePort(), await freePort()];
    expect(await busyListeners([{ what: 'local broker', host: '127.0.0.1', port: a }, { what: 'web server', host: '127.0.0.1', port: b }, { what: 'simulator', host: '127.0.0.1', port: 0 }])).toEqual([]);
    expect(await bindable(a)).toBe(true);
    expect(await bindable(b)).toBe(true);
  });

  it('names every busy one with its code and holder (this process), the free ones not', async () => {
    const [free, busy1, busy2] = [await freePort(), await freePort(), await freePort()];
    await hold(busy1);
    await hold(busy2, '0.0.0.0'); // a wildcard holder blocks the loopback address too
    const r = await busyListeners([
      { what: 'local broker', host: '127.0.0.1', port: busy1 },
      { what: 'simulator', host: '127.0.0.1', port: free },
      { what: 'web server', host: '127.0.0.1', port: busy2 },
    ]);
    expect(r.map((b) => [b.what, b.port, b.code])).toEqual([
      ['local broker', busy1, 'EADDRINUSE'],
      ['web server', busy2, 'EADDRINUSE'],
    ]);
    for (const b of r) expect(b.holder).toMatch(new RegExp(`^held by pid ${process.pid}: `));
    const msg = busyMessage(r);
    expect(msg.split('\n')[0]).toBe('2 ports are not available, nothing was started:');
    expect(msg).toContain(`  local broker cannot listen on 127.0.0.1:${busy1}: EADDRINUSE (held by pid ${process.pid}: `);
    expect(msg).toContain(`  web server cannot listen on 127.0.0.1:${busy2}: EADDRINUSE (held by pid ${process.pid}: `);
    expect(await bindable(free)).toBe(true);
  });

  it('two listeners of one config on the same port: the second names the first', async () => {
    const p = await freePort();
    const r = await busyListeners([
      { what: 'local broker', host: '127.0.0.1', port: p },
      { what: 'web server', host: '127.0.0.1', port: p },
    ]);
    expect(r).toEqual([{ what: 'web server', host: '127.0.0.1', port: p, code: 'EADDRINUSE', holder: `this config puts its local broker on 127.0.0.1:${p} too` }]);
    expect(await bindable(p)).toBe(true);
  });

  it('an address not on this box is EADDRNOTAVAIL, without a holder', async () => {
    const p = await freePort();
    const r = await busyListeners([{ what: 'web server', host: '192.0.2.222', port: p }]);
    expect(r).toEqual([{ what: 'web server', host: '192.0.2.222', port: p, code: 'EADDRNOTAVAIL', holder: undefined }]);
    expect(busyMessage(r)).toBe(`a port is not available, nothing was started:\n  web server cannot listen on 192.0.2.222:${p}: EADDRNOTAVAIL`);
  });
});

describe('portHolder', () => {
  it('finds another process listening on the port, with its command line', async () => {
    const p = await freePort();
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${p}, '127.0.0.1', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(() => new Promise((r) => (child.kill('SIGKILL'), child.once('exit', r))));
    await new Promise((r) => child.stdout!.once('data', r));
    expect(portHolder(p)).toBe(`pid ${child.pid}: ${process.execPath} -e require('net').createServer().listen(${p}, '127.0.0.1', () => console.log('up'))`);
  });

  it('undefined for a port nobody listens on', async () => {
    expect(portHolder(await freePort())).toBeUndefined();
  });
});
