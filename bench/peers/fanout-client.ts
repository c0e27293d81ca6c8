// mqtt.js clients of the fan-out benchmark, in a process of their own, driven over IPC.
//   node fanout-client.js pub PORT FIRST COUNT   COUNT publishers, bench/<FIRST>.., on command {rate, ms}
//   node fanout-client.js sub PORT FIRST COUNT   COUNT subscribers to bench/#, measuring latency
// The payload is 100 bytes: the send time (ms since the epoch, microsecond resolution, the
// same clock in every process) then padding. Latencies go into 10-microsecond buckets.
import mqtt from 'mqtt';

const [role, portArg, firstArg, countArg] = process.argv.slice(2);
const port = Number(portArg);
const first = Number(firstArg);
const count = Number(countArg ?? 1);
const now = () => performance.timeOrigin + performance.now();
const send = (m: unknown) => process.send!(m);
const PAYLOAD_BYTES = 100;
const BUCKET_US = 10;
const BUCKETS = 200_000; // up to 2 s; later ones land in the last bucket

const clients = await Promise.all(
  Array.from({ length: count }, async (_, k) => {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId: `${role}${first + k}-${process.pid}`.slice(0, 23),
      protocolVersion: 4,
      keepalive: 60,
      reconnectPeriod: 0,
      ...(role === 'pub' ? { username: 'bench', password: 'bench' } : {}),
    });
    c.on('error', (e) => send({ type: 'error', message: e.message }));
    return c;
  }),
);
const exit = () => void Promise.all(clients.map((c) => c.endAsync())).finally(() => process.exit(0));

if (role === 'sub') {
  const hist = new Uint32Array(BUCKETS);
  let received = 0;
  let last = 0;
  const onMessage = (_topic: string, payload: Buffer) => {
    const t = now();
    const sent = Number(payload.toString('latin1', 0, 17));
    let b = Math.floor(((t - sent) * 1000) / BUCKET_US);
    if (b < 0) b = 0;
    if (b >= BUCKETS) b = BUCKETS - 1;
    hist[b]!++;
    received++;
    last = t;
  };
  for (const c of clients) {
    c.on('message', onMessage);
    await c.subscribeAsync('bench/#', { qos: 0 });
  }
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'reset') {
      hist.fill(0);
      received = 0;
      last = 0;
      send({ type: 'reset' });
    } else if (m.cmd === 'count') {
      send({ type: 'count', count: received, last });
    } else if (m.cmd === 'report') {
      const sparse: [number, number][] = [];
      for (let i = 0; i < BUCKETS; i++) if (hist[i]) sparse.push([i, hist[i]!]);
      send({ type: 'report', count: received, last, hist: sparse });
    } else if (m.cmd === 'exit') exit();
  });
} else {
  const pad = 'x'.repeat(PAYLOAD_BYTES);
  process.on('message', (m: { cmd: string; rate?: number; ms?: number }) => {
    if (m.cmd === 'run') {
      // rate is per publisher; the publishers of this process take turns message by message.
      const rate = m.rate! * count;
      const ms = m.ms!;
      const start = performance.now();
      let sent = 0;
      const total = Math.round((rate * ms) / 1000);
      const tick = () => {
        const due = Math.min(total, Math.floor((rate * (performance.now() - start)) / 1000));
        while (sent < due) {
          const ts = now().toFixed(3); // 17 characters until the year 2286
          const k = sent % count;
          clients[k]!.publish(`bench/${first + k}`, Buffer.from(ts + pad.slice(ts.length), 'latin1'), { qos: 0 });
          sent++;
        }
        if (sent < total) setTimeout(tick, 1);
        else send({ type: 'done', sent, start: performance.timeOrigin + start });
      };
      tick();
    } else if (m.cmd === 'exit') exit();
  });
}
send({ type: 'ready' });
