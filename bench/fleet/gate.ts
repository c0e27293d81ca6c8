// The gateways' way in to the broker during the fleet benchmark: a TCP relay in a process of
// its own (its CPU is measured apart). It stands for the platform's load balancer or the
// broker's gateway-facing listener: closed for the outage, opened again only once the
// consumers have subscribed to the restarted broker. Mosquitto 2.0 drops what a gateway
// publishes before the consumers' shared subscription is back (docs/UPLINK.md, "Subscribe
// again on every connect"); with FLEET_GATE=0 the gateways connect straight to Mosquitto and
// the benchmark shows that window instead.
// Usage (forked): node dist/bench/fleet/gate.js LISTEN_PORT BROKER_PORT; IPC 'open' / 'close'.
import net from 'node:net';

const [listenPort, brokerPort] = process.argv.slice(2).map(Number) as [number, number];
const sockets = new Set<net.Socket>();
let server: net.Server | null = null;

function open(): Promise<void> {
  if (server) return Promise.resolve();
  const s = net.createServer({ noDelay: true }, (down) => {
    const up = net.connect({ port: brokerPort, host: '127.0.0.1', noDelay: true });
    sockets.add(down);
    sockets.add(up);
    const end = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('error', end).on('close', end);
    up.on('error', end).on('close', end);
    down.pipe(up);
    up.pipe(down);
  });
  server = s;
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen({ port: listenPort, host: '127.0.0.1', backlog: 4096 }, () => resolve());
  });
}

function close(): Promise<void> {
  const s = server;
  server = null;
  for (const x of sockets) x.destroy();
  sockets.clear();
  return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()));
}

process.on('message', (m: { cmd: 'open' | 'close' }) => {
  void (m.cmd === 'open' ? open() : close()).then(
    () => process.send!({ done: m.cmd, connections: sockets.size / 2 }),
    (err: Error) => process.send!({ error: err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
await open();
process.send!({ ready: true });
