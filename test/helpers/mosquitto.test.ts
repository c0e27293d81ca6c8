// Smoke test for the real-broker helpers: plain pub/sub, sessions surviving a broker restart, mutual TLS.
import { execFile, spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { makeCerts } from './certs.js';
import { Mosquitto, stopAll } from './mosquitto.js';
import { sleep } from './peers.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], timeoutMs = 8000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

/** Start `mosquitto_sub` and keep publishing `msg` until the subscriber has printed something. */
async function subscribeAndProve(port: number, subArgs: string[], topic: string, msg: string) {
  const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(port), ...subArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  sub.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  sub.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => sub.once('exit', (c) => resolve(c)));
  const until = Date.now() + 8000;
  while (!out) {
    if (Date.now() > until || sub.exitCode !== null) throw new Error(`mosquitto_sub got nothing: ${err}`);
    await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-t', topic, '-m', msg]);
    await sleep(100);
  }
  return { sub, exited, output: () => out };
}

describe('Mosquitto test helper (real mosquitto 2.0)', () => {
  afterAll(() => stopAll());

  it('delivers a QoS 1 publish on the plain listener', async () => {
    const m = await Mosquitto.start({ persistence: false });
    expect(m.running).toBe(true);
    expect(m.port).not.toBe(1883);
    const { exited, output } = await subscribeAndProve(m.port, ['-C', '1', '-q', '1', '-t', 'smoke/a'], 'smoke/a', 'hello');
    expect(await exited).toBe(0);
    expect(output().trim()).toBe('hello');
    await m.stop();
    expect(m.running).toBe(false);
    expect(m.log()).toMatch(/mosquitto version 2\.0\.\d+ terminating/);
  });

  it('keeps a persistent session and its queued QoS 1 message across a broker restart', async () => {
    const m = await Mosquitto.start({});
    const session = ['-c', '-i', 'sess1', '-q', '1', '-t', 't/#'];
    const { sub, exited } = await subscribeAndProve(m.port, session, 't/prime', 'prime');
    sub.kill('SIGKILL');
    await exited;
    // Published while the client is away: queued in its session.
    const pub = await run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(m.port), '-q', '1', '-t', 't/away', '-m', 'while-away']);
    expect(pub.code, pub.stderr).toBe(0);
    const port = m.port;
    await m.restart();
    expect(m.port).toBe(port);
    const back = await run('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(m.port), ...session, '-C', '1', '-W', '5', '-v']);
    expect(back.code, `${back.stderr}\n${m.log()}`).toBe(0);
    expect(back.stdout.trim()).toBe('t/away while-away');
  });

  it('accepts only client certificates from its CA on the TLS listener', async () => {
    const c = makeCerts();
    const m = await Mosquitto.start({ persistence: false, tls: { caFile: c.caCert, certFile: c.serverCert, keyFile: c.serverKey } });
    expect(m.tlsPort).toBeDefined();
    const base = ['-h', '127.0.0.1', '-p', String(m.tlsPort), '--cafile', c.caCert, '-q', '1', '-t', 'tls/x', '-m', 'y'];
    const ok = await run('mosquitto_pub', [...base, '--cert', c.clientCert, '--key', c.clientKey]);
    expect(ok.code, ok.stderr + m.log()).toBe(0);
    const rogue = await run('mosquitto_pub', [...base, '--cert', c.rogueClientCert, '--key', c.rogueClientKey]);
    expect(rogue.code).not.toBe(0);
    const none = await run('mosquitto_pub', base);
    expect(none.code).not.toBe(0);
    // Refused for the right reasons (not, say, a server-certificate problem on the client side).
    expect(m.log()).toMatch(/certificate verify failed/);
    expect(m.log()).toMatch(/peer did not return a certificate/);
    expect(m.running).toBe(true);
  });
});
