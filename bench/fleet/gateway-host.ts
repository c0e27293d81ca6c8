// One process holding many simulated gateways for the fleet benchmark (bench/fleet/run.ts).
// Each gateway is the real thing from the outbox on: its own SQLite file (openDatabase, as
// the gateway opens it: WAL, synchronous=FULL), the real Outbox, and the real Uplink with its
// own clientId, the real topics (fc/v1/<community>/<gateway>/agg and .../status), the real
// backoff and the default uplink settings. Only the aggregator is replaced: items are appended
// at the rate the orchestrator asks for, each a point aggregate whose windowStart is the time
// it was appended (the end-to-end latency is received_at - item_ts in PostgreSQL).
// Usage (forked): node dist/bench/fleet/gateway-host.js '{"url":...,"first":0,"count":250,"dir":...}'
// IPC in: {cmd:'rate', perMin, batch}, {cmd:'counts'}, {cmd:'exit'}. Out: a report every second.
import path from 'node:path';
import { UplinkSchema } from '../../src/config/site-schema.js';
import { silentLogger } from '../../src/log.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { Outbox, type OutboxItem } from '../../src/store/outbox.js';
import { Uplink } from '../../src/uplink/uplink.js';

interface HostArgs {
  url: string;
  first: number;
  count: number;
  dir: string;
}

export const gatewayId = (i: number) => `gw-${String(i + 1).padStart(5, '0')}`;
/** Three gateways per community, as in the paper. */
export const communityCode = (i: number) => `330106${String(Math.floor(i / 3) + 1).padStart(6, '0')}`;

interface Gw {
  id: string;
  db: Db;
  outbox: Outbox;
  uplink: Uplink;
  appended: number;
}

const a = JSON.parse(process.argv[2]!) as HostArgs;
const log = silentLogger();
const cfg = UplinkSchema.parse({ url: a.url });
const gws: Gw[] = [];
for (let k = 0; k < a.count; k++) {
  const i = a.first + k;
  const id = gatewayId(i);
  const db = openDatabase(path.join(a.dir, `${id}.db`));
  const outbox = new Outbox(db, { maxRows: 2_000_000, maxBytes: 1024 ** 3 }, log);
  outbox.start();
  const uplink = new Uplink({ ...cfg, clientId: `cgw-fleet-${id}` }, { communityCode: communityCode(i), gatewayId: id, version: 'fleet-bench' }, outbox, log);
  gws.push({ id, db, outbox, uplink, appended: 0 });
}
for (const g of gws) g.uplink.start();

let perMin = 0;
/** Items per append (one transaction, then one message if the uplink is caught up): a window
 * of that many points. */
let batch = 1;
let acc = 0;
let next = 0;
let last = performance.now();
const TICK_MS = 50;

function item(now: number, g: Gw): OutboxItem {
  const v = (g.appended % 100) / 10;
  const body = `{"type":"point","windowStart":${now},"windowSeconds":60,"facility":"canteen","device":"fridge-1","point":"fridge_1_temperature","unit":"°C","kind":"gauge","count":6,"bad":0,"mean":${v},"min":${v},"max":${v},"sum":${v * 6},"last":${v}}`;
  return { kind: 'agg', ts: now, body };
}

// The items due this tick, `batch` items per append (one transaction, as a window's items),
// round robin over the gateways, so every gateway makes about perMin items a minute.
const ticker = setInterval(() => {
  const t = performance.now();
  acc += (gws.length * perMin * (t - last)) / 60_000;
  last = t;
  let n = Math.floor(acc / batch);
  acc -= n * batch;
  const now = Date.now();
  while (n-- > 0) {
    const g = gws[next]!;
    next = (next + 1) % gws.length;
    const items: OutboxItem[] = [];
    for (let k = 0; k < batch; k++) items.push(item(now, g));
    g.appended += g.outbox.append(items).length;
  }
}, TICK_MS);

// CONNACKs per wall-clock second: the uplinks' connect counters, read every 100 ms.
let connectsSeen = 0;
const buckets = new Map<number, number>();
const sampler = setInterval(() => {
  let c = 0;
  for (const g of gws) c += g.uplink.stats.connects;
  if (c > connectsSeen) {
    const s = Math.floor(Date.now() / 1000);
    buckets.set(s, (buckets.get(s) ?? 0) + c - connectsSeen);
    connectsSeen = c;
  }
}, 100);

function report(): void {
  let rows = 0;
  let connected = 0;
  let appended = 0;
  let acked = 0;
  let messages = 0;
  let failedConnects = 0;
  let shed = 0;
  for (const g of gws) {
    const s = g.outbox.stats();
    rows += s.rows;
    shed += s.shedRows + s.droppedRows;
    appended += g.appended;
    acked += g.uplink.stats.acked;
    messages += g.uplink.stats.messages;
    failedConnects += g.uplink.stats.failedConnects;
    if (g.uplink.state === 'connected') connected++;
  }
  const b = [...buckets.entries()];
  buckets.clear();
  process.send!({ report: { t: Date.now(), rows, connected, appended, acked, messages, connects: connectsSeen, failedConnects, shed, buckets: b } });
}
const reporter = setInterval(report, 1000);

process.on('message', (m: { cmd: string; perMin?: number; batch?: number }) => {
  if (m.cmd === 'rate') {
    perMin = m.perMin!;
    batch = Math.max(1, m.batch ?? 1);
    last = performance.now();
    acc = 0;
    report();
  } else if (m.cmd === 'counts') {
    process.send!({ counts: gws.map((g) => [g.id, g.appended, g.outbox.stats().lastSeq]) });
  } else if (m.cmd === 'exit') {
    clearInterval(ticker);
    clearInterval(sampler);
    clearInterval(reporter);
    void Promise.all(gws.map((g) => g.uplink.stop())).then(() => {
      for (const g of gws) {
        g.outbox.stop();
        g.db.close();
      }
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: gws.length });
