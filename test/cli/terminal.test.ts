// `run` as a person starts it on a terminal and as systemd starts it (stdout not a TTY), and a
// second instance on a clashing port (issue 16: the terminal and start-up).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort, tmpDir, waitFor, waitForPort } from '../helpers/peers.js';
import { CLI, ROOT, assertBuilt } from '../helpers/cli.js';
import { Mosquitto } from '../helpers/mosquitto.js';

beforeAll(assertBuilt);

interface Daemon {
  proc: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

let daemons: Daemon[] = [];
let servers: net.Server[] = [];
let brokers: Mosquitto[] = [];
afterEach(async () => {
  for (const d of daemons) if (d.proc.exitCode === null && d.proc.signalCode === null) d.proc.kill('SIGKILL');
  await Promise.all(daemons.map((d) => d.exited));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  daemons = [];
  servers = [];
});
afterAll(async () => {
  await Promise.all(brokers.map((b) => b.stop()));
});

async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

async function siteFile(over: Record<string, unknown> = {}): Promise<string> {
  const [broker, web, sim] = await freePorts(3);
  const dir = tmpDir('cgw-term-');
  const cfg = {
    site: { communityCode: '330106001001', gatewayId: 'gw-term-test' },
    localBroker: { host: '127.0.0.1', port: broker },
    web: { host: '127.0.0.1', port: web, https: false },
    storage: { path: path.join(dir, 'gateway.db') },
    uplink: { url: 'mqtt://127.0.0.1:1', windowSeconds: 60 },
    buses: [{ id: 'lan', type: 'modbus-tcp', host: '127.0.0.1', port: sim, timeoutMs: 500 }],
    devices: [{ id: 'th-1', facility: 'canteen', profile: 'xy-md02', bus: 'lan', unitId: 1, pollMs: 500 }],
    simulator: { enabled: true, host: '127.0.0.1', port: sim, seed: 7 },
    ...over,
  };
  const file = path.join(dir, 'site.yaml');
  fs.writeFileSync(file, stringify(cfg));
  return file;
}

function start(cmd: string, args: string[], env: Record<string, string> = {}): Daemon {
  // stdin a pipe kept open: script(1) ends the session when its stdin ends.
  const proc = spawn(cmd, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info', ...env } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const d = { proc, out: () => out, err: () => err, exited };
  daemons.push(d);
  return d;
}

function daemon(file: string, stateDir: string, env: Record<string, string> = {}): Daemon {
  return start(process.execPath, [CLI, 'run', '--config', file, '--state-dir', stateDir], env);
}

/** The daemon on a real pseudo-terminal: util-linux script(1) gives it one as its stdout. */
function onTerminal(file: string, stateDir: string, env: Record<string, string> = {}): Daemon {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = ['exec', process.execPath, CLI, 'run', '--config', file, '--state-dir', stateDir].map(quote).join(' ');
  return start('script', ['-qfec', cmd, '/dev/null'], env);
}

const ANSI = /\x1b\[[0-9;]*m/g;

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('run: the terminal log', () => {
  it('on a terminal: human lines, the page URL and the setup hint at INFO, no JSON', async () => {
    const file = await siteFile();
    const d = onTerminal(file, tmpDir('cgw-term-state-'));
    const web = (await import('yaml')).parse(fs.readFileSync(file, 'utf8')).web.port as number;
    const text = () => d.out().replace(ANSI, '').replace(/\r/g, '');
    await waitFor(() => text().includes('no admin account yet'), 20_000, `the setup hint on the terminal:\n${d.out()}`);
    const lines = text().split('\n').filter(Boolean);
    expect(lines.some((l) => l.startsWith('{'))).toBe(false);
    for (const l of lines.filter((x) => /^\[\d\d:\d\d:\d\d\]/.test(x) === false)) expect(l, 'a continuation line').toMatch(/^\s+\w+: /);
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO: web page: http://127\\.0\\.0\\.1:${web}/ `)));
    expect(lines).toContainEqual(
      expect.stringMatching(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO: no admin account yet: open http://127\\.0\\.0\\.1:${web}/ from the site LAN, choose the admin password and enter the setup code [A-Z0-9]{10} `)),
    );
    expect(d.out()).toMatch(ANSI); // colours on a colour terminal
    d.proc.kill('SIGTERM');
    await d.exited;
  });

  it('on a terminal with LOG_FORMAT=json, and with stdout a pipe (systemd, journald): JSON lines, the hint at level 30', async () => {
    for (const how of ['tty-json', 'pipe'] as const) {
      const file = await siteFile();
      const state = tmpDir('cgw-term-state-');
      const d = how === 'pipe' ? daemon(file, state) : onTerminal(file, state, { LOG_FORMAT: 'json' });
      await waitFor(() => d.out().includes('no admin account yet'), 20_000, `the setup hint (${how}):\n${d.out()}\n${d.err()}`);
      const lines = jsonLines(d.out().replace(/\r/g, '').split('\n').filter((l) => l.startsWith('{')).join('\n'));
      expect(d.out().replace(/\r/g, '').split('\n').filter(Boolean).every((l) => l.startsWith('{')), how).toBe(true);
      const page = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('web page: '))!;
      expect(page.level).toBe(30);
      expect(page.urls).toEqual([expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/$/)]);
      const hint = lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('no admin account yet'))!;
      expect(hint.level).toBe(30);
      expect(hint.setupCode).toMatch(/^[A-Z0-9]{10}$/);
      expect(hint.msg).toContain(page.urls && (page.urls as string[])[0]);
      // The hint once, at info: no warn-level setup line as before.
      expect(lines.filter((l) => 'setupCode' in l || /setup code/.test(String(l.msg))).map((l) => l.level)).toEqual([30]);
      d.proc.kill('SIGTERM');
      await d.exited;
    }
  });

  it('a bad --log-format exits 2 naming the flag', async () => {
    const d = start(process.execPath, [CLI, 'run', '--log-format', 'colour']);
    expect(await d.exited).toBe(2);
    expect(d.err()).toContain('--log-format must be one of auto, json, pretty (got "colour")');
  });
});

describe('run: every port checked before any is opened', () => {
  it('the web port held by another process: exits non-zero naming it and its holder; no broker, simulator or uplink was started', async () => {
    const platform = await Mosquitto.start({ persistence: false });
    brokers.push(platform);
    const file = await siteFile({ uplink: { url: `mqtt://127.0.0.1:${platform.port}`, windowSeconds: 60 } });
    const cfg = (await import('yaml')).parse(fs.readFileSync(file, 'utf8')) as { web: { port: number }; localBroker: { port: number }; simulator: { port: number } };
    const holder = net.createServer();
    servers.push(holder);
    await new Promise<void>((resolve) => holder.listen(cfg.web.port, '127.0.0.1', () => resolve()));
    const d = daemon(file, tmpDir('cgw-term-state-'));
    expect(await d.exited).toBe(1);
    // Nothing came up before the refusal: neither listener logged, no uplink login at the platform.
    expect(d.out()).not.toMatch(/local MQTT broker listening|simulated Modbus TCP devices listening|gateway started/);
    expect(platform.log()).not.toContain('cgw-gw-term-test');
    expect(d.err()).toContain('a port is not available, nothing was started:');
    expect(d.err()).toContain(`web server cannot listen on 127.0.0.1:${cfg.web.port}: EADDRINUSE (held by pid ${process.pid}: `);
    expect(d.err()).not.toMatch(/local broker cannot|simulator cannot/);
  });

  it('a second daemon clashing only on the web port leaves the first one connected to the platform', async () => {
    const platform = await Mosquitto.start({ persistence: false });
    brokers.push(platform);
    const uplink = { url: `mqtt://127.0.0.1:${platform.port}`, windowSeconds: 60 };
    const first = await siteFile({ uplink });
    const a = daemon(first, tmpDir('cgw-term-state-'));
    await waitFor(() => /New client connected .* as cgw-gw-term-test /.test(platform.log()), 20_000, `the first daemon's uplink at mosquitto:\n${a.out()}`);
    // Same gateway (client id), same uplink, same web port; its own broker, simulator and files.
    const web = ((await import('yaml')).parse(fs.readFileSync(first, 'utf8')) as { web: { port: number } }).web.port;
    const second = await siteFile({ uplink, web: { host: '127.0.0.1', port: web, https: false } });
    const b = daemon(second, tmpDir('cgw-term-state-'));
    expect(await b.exited).not.toBe(0);
    // Give a (wrong) second login the time mosquitto takes to log it, then look: one session,
    // never taken over.
    await new Promise((r) => setTimeout(r, 1500));
    const log = platform.log();
    expect(log).not.toMatch(/already connected, closing old connection/);
    expect(log.match(/New client connected .* as cgw-gw-term-test /g)).toHaveLength(1);
    expect(b.err()).toContain(`web server cannot listen on 127.0.0.1:${web}: EADDRINUSE (held by pid ${a.proc.pid}: ${process.execPath} ${CLI} run`);
    expect(a.proc.exitCode).toBeNull();
    await waitForPort(web, 2000); // the first daemon's page still answers
  });
});
