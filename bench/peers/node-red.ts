// Node-RED as the peer: installed at benchmark time into a temporary folder (never into our
// dependencies), with node-red-contrib-modbus and a generated flow that does the gateway's
// job: poll Modbus TCP devices, publish the readings to an MQTT broker (Mosquitto).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, removeTempDir, sleep, tempDir, track, waitPort } from './util.js';

export const NODE_RED_VERSION = process.env.BENCH_NODE_RED_VERSION ?? '4';
export const CONTRIB_MODBUS_VERSION = '5.45.2';

/** npm install into `dir` (created). node-red-contrib-modbus 5.45.2 depends on
 * @openp4nr/modbus-serial, published as a tarball on a host this machine cannot reach; the
 * overrides entry replaces it with modbus-serial 8.0.25 from the registry (PEERS.md). */
export function installNodeRed(dir: string): { seconds: number; nodeRed: string; contribModbus: string } {
  fs.mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  if (!fs.existsSync(path.join(dir, 'node_modules/node-red/red.js'))) {
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({ name: 'cgw-bench-node-red', private: true, overrides: { '@openp4nr/modbus-serial': 'npm:modbus-serial@8.0.25' } }, null, 2),
    );
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const r = spawnSync(npm, ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', `node-red@${NODE_RED_VERSION}`, `node-red-contrib-modbus@${CONTRIB_MODBUS_VERSION}`], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 300_000,
    });
    if (r.status !== 0) throw new Error(`npm install of Node-RED failed (${r.status ?? r.signal}):\n${r.stderr}`);
  }
  const version = (p: string) => (JSON.parse(fs.readFileSync(path.join(dir, 'node_modules', p, 'package.json'), 'utf8')) as { version: string }).version;
  return { seconds: (performance.now() - t0) / 1000, nodeRed: version('node-red'), contribModbus: version('node-red-contrib-modbus') };
}

export interface NrDevice {
  id: string;
  port: number;
  unitId: number;
}

export interface FlowOptions {
  devices: NrDevice[];
  /** One modbus-client per device (own TCP connection), or one per simulator port shared by every unit on it. */
  clientPerDevice: boolean;
  pollMs: number;
  /** Holding registers read per request, from address 0 (the r4dcb08's four temperatures). */
  quantity: number;
  points: string[];
  mqttPort: number;
  /** per-value: a function node decodes (int16, x0.1, range check) and sends one JSON message
   * per register, as the gateway does; per-read: modbus-read's array goes straight to mqtt out. */
  mode: 'per-value' | 'per-read';
}

const PER_VALUE_FUNC = `const ts = Date.now();
const v = msg.payload;
const out = [];
for (let i = 0; i < v.length; i++) {
  const raw = v[i] >= 0x8000 ? v[i] - 0x10000 : v[i];
  const value = Math.round(raw) / 10;
  const good = value >= -55 && value <= 125;
  out.push({ topic: 'nodered/canteen/' + msg.topic + '/' + POINTS[i], payload: JSON.stringify({ ts: ts, value: value, unit: '\u00b0C', quality: good ? 'good' : 'out_of_range' }) });
}
return [out];`;

export function buildFlow(o: FlowOptions): object[] {
  const flow: object[] = [{ id: 'tab', type: 'tab', label: 'bench', disabled: false, info: '' }];
  const clients = new Map<string, string>();
  const client = (d: NrDevice): string => {
    const key = o.clientPerDevice ? d.id : String(d.port);
    let id = clients.get(key);
    if (id) return id;
    id = `mc${clients.size + 1}`;
    clients.set(key, id);
    flow.push({
      id,
      type: 'modbus-client',
      name: `sim-${key}`,
      clienttype: 'tcp',
      bufferCommands: true,
      stateLogEnabled: false,
      queueLogEnabled: false,
      failureLogEnabled: false,
      tcpHost: '127.0.0.1',
      tcpPort: String(d.port),
      tcpType: 'DEFAULT',
      serialPort: '/dev/ttyUSB',
      serialType: 'RTU-BUFFERD',
      serialBaudrate: '9600',
      serialDatabits: '8',
      serialStopbits: '1',
      serialParity: 'none',
      serialConnectionDelay: '100',
      serialAsciiResponseStartDelimiter: '0x3A',
      unit_id: String(d.unitId),
      commandDelay: '1',
      clientTimeout: '1000',
      reconnectOnTimeout: true,
      reconnectTimeout: '2000',
      parallelUnitIdsAllowed: true,
      showErrors: false,
      showWarnings: false,
      showLogs: false,
    });
    return id;
  };
  const next = o.mode === 'per-value' ? 'fn' : 'mqout';
  for (const d of o.devices) {
    flow.push({
      id: `mr-${d.id}`,
      type: 'modbus-read',
      z: 'tab',
      name: d.id,
      topic: o.mode === 'per-value' ? d.id : `nodered/canteen/${d.id}`,
      showStatusActivities: false,
      logIOActivities: false,
      showErrors: false,
      showWarnings: false,
      unitid: String(d.unitId),
      dataType: 'HoldingRegister',
      adr: '0',
      quantity: String(o.quantity),
      rate: String(o.pollMs),
      rateUnit: 'ms',
      delayOnStart: false,
      enableDeformedMessages: false,
      startDelayTime: '',
      server: client(d),
      useIOFile: false,
      ioFile: '',
      useIOForPayload: false,
      emptyMsgOnFail: false,
      x: 100,
      y: 100,
      wires: [[next], []],
    });
  }
  if (o.mode === 'per-value') {
    flow.push({
      id: 'fn',
      type: 'function',
      z: 'tab',
      name: 'decode, scale, one message per value',
      func: `const POINTS = ${JSON.stringify(o.points)};\n${PER_VALUE_FUNC}`,
      outputs: 1,
      timeout: 0,
      noerr: 0,
      initialize: '',
      finalize: '',
      libs: [],
      x: 300,
      y: 100,
      wires: [['mqout']],
    });
  }
  flow.push(
    { id: 'mqout', type: 'mqtt out', z: 'tab', name: '', topic: '', qos: '0', retain: 'false', respTopic: '', contentType: '', userProps: '', correl: '', expiry: '', broker: 'mqbroker', x: 500, y: 100, wires: [] },
    {
      id: 'mqbroker',
      type: 'mqtt-broker',
      name: 'mosquitto',
      broker: '127.0.0.1',
      port: String(o.mqttPort),
      clientid: '',
      autoConnect: true,
      usetls: false,
      protocolVersion: '4',
      keepalive: '60',
      cleansession: true,
      autoUnsubscribe: true,
      birthTopic: '',
      closeTopic: '',
      willTopic: '',
    },
  );
  return flow;
}

export class NodeRed {
  private output = '';
  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly userDir: string,
  ) {}

  get pid(): number {
    return this.proc.pid!;
  }

  log(): string {
    return this.output;
  }

  /** node [BENCH_NODE_RED_FLAGS] <dir>/node_modules/node-red/red.js -u USERDIR -p PORT -s settings FLOWFILE (default Node flags). */
  static async start(installDir: string, flow: object[]): Promise<NodeRed> {
    // Node-RED finds node-red-contrib-modbus in the node_modules that holds node-red itself.
    const userDir = tempDir('cgw-peers-nr-user-');
    const flowFile = path.join(userDir, 'flows.json');
    fs.writeFileSync(flowFile, JSON.stringify(flow));
    const settings = path.join(userDir, 'settings.js');
    fs.writeFileSync(
      settings,
      `module.exports = {
  flowFile: 'flows.json',
  credentialSecret: false,
  uiHost: '127.0.0.1',
  logging: { console: { level: 'warn', metrics: false, audit: false } },
  telemetry: { enabled: false },
  diagnostics: { enabled: false, ui: false },
  functionExternalModules: false,
  editorTheme: { projects: { enabled: false }, tours: false, palette: { catalogues: [] } },
};\n`,
    );
    const port = await freePort();
    const proc = track(
      // BENCH_NODE_RED_FLAGS: Node flags for Node-RED (e.g. --perf-basic-prof), default none.
      spawn(process.execPath, [...(process.env.BENCH_NODE_RED_FLAGS ?? '').split(' ').filter(Boolean), path.join(installDir, 'node_modules/node-red/red.js'), '-u', userDir, '-p', String(port), '-s', settings, flowFile], {
        cwd: userDir,
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    const nr = new NodeRed(proc, port, userDir);
    const collect = (d: Buffer) => (nr.output = (nr.output + d.toString()).slice(-20_000));
    proc.stdout!.on('data', collect);
    proc.stderr!.on('data', collect);
    await Promise.race([
      waitPort(port, 60_000),
      new Promise((_, reject) => proc.once('exit', (c) => reject(new Error(`Node-RED exited (${c}):\n${nr.output}`)))),
    ]);
    return nr;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (p.exitCode === null && p.signalCode === null) {
      await new Promise<void>((r) => {
        p.once('exit', () => r());
        p.kill('SIGTERM');
        setTimeout(() => p.kill('SIGKILL'), 5000).unref();
      });
    }
    await sleep(50);
    removeTempDir(this.userDir);
  }
}
