// `community-gateway platform push`: publishes a signed bundle to a gateway's config/set topic
// and waits for its answer on config/result (docs/UPLINK.md "Remote configuration: bundles for
// integrators").
//
// The bundle is published at QoS 1, NOT retained, with an MQTT 5 message expiry at the bundle's
// expiresAt. A gateway with remote configuration on keeps a persistent session at the broker
// (clean: false, 7 days), so a bundle sent while it is offline is queued for it and delivered
// when it is back; the expiry makes the broker drop a queued bundle the gateway would refuse
// anyway. Retained, the bundle would be sent again at every (re)subscribe, that is at every
// reconnect of a flaky 4G link, and answered and audited on the box as `replay` each time; and
// clearing it means publishing an empty message, which the gateway would answer as `malformed`.
import fs from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { z } from 'zod';
import { formatIssues } from '../config/issues.js';
import { Bundle, MAX_BUNDLE_BYTES } from '../remote/bundle.js';
import { ConfigResultMessage, DiagnosticsMessage, diagnosticsTopic, remoteTopic } from '../uplink/contract.js';
import { parseCommand, type CommandIo } from './args.js';
import { writePrivateFile } from './private-file.js';

const PushArgs = z.strictObject({
  url: z.string({ error: 'is required: the platform broker, mqtt://host:port or mqtts://host:port' }).regex(/^mqtts?:\/\/[^\s/]+/, 'must be mqtt://host[:port] or mqtts://host[:port]'),
  community: z.string({ error: 'is required: the gateway\'s 12-digit community code (its topics\' second level)' }).regex(/^\d{12}$/, 'must be the 12-digit community code'),
  timeout: z
    .string()
    .regex(/^\d{1,5}$/, 'must be whole seconds')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 86400, 'must be 1..86400 seconds')
    .default(120),
  username: z.string().min(1).optional(),
  'password-file': z.string().min(1).optional(),
  ca: z.string().min(1).optional(),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  'client-id': z.string().min(1).max(64).optional(),
  /** Where a diagnostics command's bundle is written (default: stdout, after the result). */
  out: z.string().min(1).optional(),
  files: z.array(z.string()).length(1, 'exactly one BUNDLE.json is needed'),
}).superRefine((a, ctx) => {
  if ((a.cert === undefined) !== (a.key === undefined)) ctx.addIssue({ code: 'custom', path: [a.cert === undefined ? 'cert' : 'key'], message: '--cert and --key go together (mutual TLS)' });
  if ((a.ca ?? a.cert) !== undefined && !a.url.startsWith('mqtts://')) ctx.addIssue({ code: 'custom', path: ['url'], message: '--ca, --cert and --key need an mqtts:// url' });
});
type PushArgs = z.infer<typeof PushArgs>;

/** The diagnostic bundle a `diagnostics` command brought back, joined from its parts. */
export interface DiagnosticsReceived {
  name: string;
  body: string;
  bytes: number;
  parts: number;
  trimmed: number;
}

export type PushOutcome =
  | { code: 0 | 1; result: ConfigResultMessage; diagnostics?: DiagnosticsReceived }
  | { code: 3; why: string };

/** Reads and checks the bundle file (the Bundle schema, the size a gateway takes, not expired). */
export function readBundle(file: string, now = Date.now()): Bundle {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${file}: cannot read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`);
  }
  const b = Bundle.safeParse(json);
  if (!b.success) throw new Error(`${file}: not a bundle:\n  ${formatIssues(b.error).join('\n  ')}`);
  if (Buffer.byteLength(JSON.stringify(b.data)) > MAX_BUNDLE_BYTES) throw new Error(`${file}: more than the ${MAX_BUNDLE_BYTES} bytes a gateway takes`);
  if (Date.parse(b.data.expiresAt) <= now) throw new Error(`${file}: expired at ${b.data.expiresAt}: sign it again`);
  return b.data;
}

function clientOptions(a: PushArgs): IClientOptions {
  const read = (f?: string) => (f === undefined ? undefined : fs.readFileSync(f));
  return {
    protocolVersion: 5,
    clientId: a['client-id'] ?? `cgw-push-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    username: a.username,
    // A password on the command line shows in `ps` and shell history: from a file only.
    password: a['password-file'] === undefined ? undefined : fs.readFileSync(a['password-file'], 'utf8').replace(/\r?\n$/, ''),
    ca: read(a.ca),
    cert: read(a.cert),
    key: read(a.key),
  };
}

const wait = <T>(fn: (cb: (err?: Error | null, v?: T) => void) => void) =>
  new Promise<T | undefined>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

/** Publishes `bundle` and waits up to `timeoutMs` for the gateway's answer for its version. */
export async function pushBundle(a: PushArgs, bundle: Bundle, log: (line: string) => void): Promise<PushOutcome> {
  const setTopic = remoteTopic(a.community, bundle.gatewayId, 'set');
  const resultTopic = remoteTopic(a.community, bundle.gatewayId, 'result');
  // A diagnostics command is answered twice: the parts on .../diagnostics (sent first), then the result.
  const diagTopic = bundle.kind === 'command' && bundle.command === 'diagnostics' ? diagnosticsTopic(a.community, bundle.gatewayId) : null;
  const parts = new Map<number, DiagnosticsMessage>();
  let partsWanted: number | null = null;
  let partsDone: (() => void) | null = null;
  const client: MqttClient = mqtt.connect(a.url, clientOptions(a));
  let lastError = '';
  client.on('error', (err) => {
    lastError = err.message;
  });
  const deadline = Date.now() + a.timeout * 1000;
  let busy: ConfigResultMessage | null = null;
  let published = false;
  try {
    const answer = new Promise<ConfigResultMessage>((resolve) => {
      client.on('message', (topic, payload, packet) => {
        if (diagTopic !== null && topic === diagTopic && published) {
          let d: DiagnosticsMessage;
          try {
            d = DiagnosticsMessage.parse(JSON.parse(payload.toString('utf8')));
          } catch (err) {
            return log(`ignored a diagnostics message that does not match the schema: ${err instanceof z.ZodError ? formatIssues(err).join('; ') : (err as Error).message}`);
          }
          if (d.version !== bundle.version || d.gatewayId !== bundle.gatewayId) return log(`ignored diagnostics for version ${d.version} of gateway ${d.gatewayId}`);
          if (d.part > d.parts || (partsWanted !== null && d.parts !== partsWanted)) return log(`ignored diagnostics part ${d.part} of ${d.parts}: does not fit the other parts`);
          parts.set(d.part, d);
          partsWanted = d.parts;
          if (parts.size >= d.parts) partsDone?.();
          return;
        }
        // A retained result is an old one (sent before this push): only a live answer counts.
        if (topic !== resultTopic || packet.retain || !published) return;
        let json: unknown;
        try {
          json = JSON.parse(payload.toString('utf8'));
        } catch {
          return log(`ignored a result that is not JSON (${payload.length} bytes)`);
        }
        const r = ConfigResultMessage.safeParse(json);
        if (!r.success) return log(`ignored a result that does not match the schema: ${formatIssues(r.error).join('; ')}`);
        const m = r.data;
        if (m.gatewayId !== bundle.gatewayId || m.communityCode !== a.community) return log(`ignored a result naming gateway ${m.gatewayId} of community ${m.communityCode}`);
        if (m.version !== bundle.version) return log(`ignored a result for version ${m.version ?? 'null (a bundle the gateway could not read)'}: ${m.outcome}${m.reason ? ` (${m.reason})` : ''}`);
        // `busy`: another bundle was being applied. Held while we wait on: a second copy of this
        // one (QoS 1 is at least once) may be what met it, and the first copy still answers.
        if (m.outcome === 'refused' && m.reason === 'busy') {
          busy = m;
          return log('the gateway was busy with another bundle; waiting for a further answer');
        }
        resolve(m);
      });
    });
    const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), Math.max(0, deadline - Date.now())).unref());
    const connected = new Promise<true>((resolve) => client.once('connect', () => resolve(true)));
    if ((await Promise.race([connected, timeout])) === null) {
      return { code: 3, why: `could not connect to ${a.url} within ${a.timeout} s${lastError ? `: ${lastError}` : ''}` };
    }
    // Subscribed before publishing: an answer cannot come before we listen.
    const granted = await wait<mqtt.ISubscriptionGrant[]>((cb) => client.subscribe(resultTopic, { qos: 1 }, cb));
    if (!granted?.length || granted[0]!.qos > 2) return { code: 3, why: `the broker refused the subscription to ${resultTopic}` };
    if (diagTopic !== null) {
      const g = await wait<mqtt.ISubscriptionGrant[]>((cb) => client.subscribe(diagTopic, { qos: 1 }, cb));
      if (!g?.length || g[0]!.qos > 2) return { code: 3, why: `the broker refused the subscription to ${diagTopic}` };
    }
    const expiry = Math.max(1, Math.ceil((Date.parse(bundle.expiresAt) - Date.now()) / 1000));
    published = true;
    await wait((cb) => client.publish(setTopic, JSON.stringify(bundle), { qos: 1, retain: false, properties: { messageExpiryInterval: expiry } }, cb));
    log(`published version ${bundle.version} to ${setTopic}; waiting up to ${a.timeout} s for the answer`);
    const m = await Promise.race([answer, timeout]);
    if (m === null) {
      if (busy) return { code: 1, result: busy };
      return {
        code: 3,
        why: `no answer from gateway ${bundle.gatewayId} within ${a.timeout} s. If it is offline with remote configuration on, the broker keeps the bundle in its session until ${bundle.expiresAt} and the gateway answers on ${resultTopic} when it is back (the reference consumer stores the answer); its status' config.remoteVersion shows whether it was applied. A gateway with remote off, or whose session the broker lost, never gets it: push again`,
      };
    }
    if (diagTopic === null || m.outcome !== 'applied') return { code: m.outcome === 'applied' ? 0 : 1, result: m };
    // The parts came before the result on the gateway's connection; wait for any still on the way.
    const all = new Promise<true>((resolve) => {
      partsDone = () => resolve(true);
      if (partsWanted !== null && parts.size >= partsWanted) resolve(true);
    });
    if ((await Promise.race([all, timeout])) === null) return { code: 3, why: `gateway ${bundle.gatewayId} ran diagnostics version ${bundle.version}, but ${parts.size} of ${partsWanted ?? 'its'} part(s) arrived on ${diagTopic} within ${a.timeout} s` };
    const ordered = [...parts.values()].sort((x, y) => x.part - y.part);
    const body = ordered.map((d) => d.data).join('');
    const first = ordered[0]!;
    if (Buffer.byteLength(body, 'utf8') !== first.bytes) return { code: 3, why: `the diagnostic bundle's parts join to ${Buffer.byteLength(body, 'utf8')} bytes, the gateway said ${first.bytes}` };
    try {
      JSON.parse(body);
    } catch (err) {
      return { code: 3, why: `the diagnostic bundle's parts do not join to JSON: ${(err as Error).message}` };
    }
    return { code: 0, result: m, diagnostics: { name: first.name, body, bytes: first.bytes, parts: ordered.length, trimmed: first.trimmed } };
  } finally {
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  }
}

/** Exit code: 0 applied, 1 refused or rolled back, 2 bad arguments or bundle, 3 no answer. */
export async function platformPushCommand(argv: string[], usage: string, io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const fail = (code: number, msg: string) => {
    io.stderr.write(`platform push: ${msg}\n`);
    return code;
  };
  const parsed = parseCommand(
    'platform push',
    argv,
    usage,
    io,
    {
      url: { type: 'string' },
      community: { type: 'string' },
      timeout: { type: 'string' },
      username: { type: 'string' },
      'password-file': { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'client-id': { type: 'string' },
      out: { type: 'string' },
    },
    (values, positionals) => PushArgs.safeParse({ ...values, files: positionals }),
  );
  if (!parsed.ok) return parsed.code;
  const args = parsed.args;
  let bundle: Bundle;
  try {
    bundle = readBundle(args.files[0]!);
    for (const f of [args.ca, args.cert, args.key, args['password-file']]) if (f !== undefined) fs.accessSync(f, fs.constants.R_OK);
  } catch (err) {
    return fail(2, (err as Error).message);
  }
  const out = await pushBundle(args, bundle, (line) => io.stderr.write(`platform push: ${line}\n`));
  if (out.code === 3) return fail(3, out.why);
  const m = out.result;
  io.stdout.write(`${JSON.stringify(m)}\n`);
  if (m.outcome === 'applied' && m.command) io.stderr.write(`platform push: gateway ${m.gatewayId} carried out command ${m.command}, version ${m.version}${m.detail ? `: ${m.detail}` : ''}\n`);
  else if (m.outcome === 'applied') io.stderr.write(`platform push: gateway ${m.gatewayId} applied version ${m.version}${m.applied ? ` (${m.applied})` : ''}; running config ${m.config.hash}\n`);
  else io.stderr.write(`platform push: gateway ${m.gatewayId} ${m.outcome} version ${m.version}${m.reason ? `: ${m.reason}` : ''}${m.detail ? `: ${m.detail}` : ''}\n`);
  const d = out.diagnostics;
  if (d) {
    const what = `diagnostic bundle ${d.name}: ${d.bytes} bytes in ${d.parts} part(s)${d.trimmed ? `, ${d.trimmed} oldest log records left out by the gateway` : ''}`;
    if (args.out !== undefined) {
      try {
        // 0600: redacted, but it still describes the site (its config, devices, logs).
        writePrivateFile(args.out, d.body, true);
      } catch (err) {
        return fail(1, `cannot write ${args.out}: ${(err as Error).message}`);
      }
      io.stderr.write(`platform push: ${what} -> ${args.out}\n`);
    } else {
      io.stdout.write(`${d.body}\n`);
      io.stderr.write(`platform push: ${what} (on stdout after the result)\n`);
    }
  }
  return out.code;
}
