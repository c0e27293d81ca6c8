// The gateway side of remote configuration (docs/UPLINK.md "Remote configuration: the gateway"):
// one signed bundle from fc/v1/<cc>/<gw>/config/set in, one ConfigResultMessage out. The checks
// run in a fixed order, cheapest and least trusting first, and only a bundle that passes all of
// them reaches the same apply path as the web page (validation, the privacy rule, reload or
// restart, automatic rollback, a kept version, the audit log).
import type { SiteConfig } from '../config/site-schema.js';
import type { Logger } from '../log.js';
import type { ApplyResult } from '../web/web-app.js';
import { CONTRACT_VERSION, ConfigResultMessage, REMOTE_REFUSALS, type StatusMessage } from '../uplink/contract.js';
import { Bundle, configHash, MAX_BUNDLE_BYTES, verifySignature, type CommandBundle, type RemoteCommand } from './bundle.js';
import type { RemoteVersionStore } from './remote-state.js';

export type RunningConfigState = NonNullable<StatusMessage['config']>;
export type RemoteRefusal = (typeof REMOTE_REFUSALS)[number];

/** issuedAt may be this far ahead of the box's clock (the platform's clock and ours differ a little). */
export const ISSUED_AHEAD_MS = 5 * 60_000;
const DETAIL_MAX = 4000;

/** What the handler needs of the daemon (App implements it). */
export interface RemoteHost {
  readonly config: SiteConfig;
  readonly configText: string;
  /** The kept version holding the running text, or null. */
  runningVersion(): number | null;
  /** The time daemon's verdict: false only when it says "not synchronised". */
  clockSynchronized(): boolean | null;
  /** Validation exactly as a local apply does it (App.validate plus the fields fixed while
   * running), against the running profiles with the bundle's site profiles (file name -> text)
   * added. The errors as text parts (path, message), secrets already removed. */
  check(text: string, profiles: Readonly<Record<string, string>>): { ok: true } | { ok: false; errors: { path: string; message: string }[] };
  /** Runs `fn` with no other config change (web or remote) in between. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  /** App.apply's own path, called inside serial(). */
  applyNow(text: string, who: { user: string; ip: string }, note: string, detail: Record<string, unknown>, profiles: Readonly<Record<string, string>>): Promise<ApplyResult>;
  audit(entry: { user: string; ip: string; action: string; detail?: Record<string, unknown> }): void;
  /** Carries out a verified command (called inside serial(), its version already used). */
  command(name: RemoteCommand, version: number): Promise<CommandOutcome>;
}

/** What a command did: `after` runs once its answer is on its way (restart: answer first, then stop). */
export type CommandOutcome = { ok: true; detail?: string; after?: () => void } | { ok: false; detail: string };

/** The answer to one message on config/set, and what to do once it is sent. */
export interface RemoteAnswer {
  result: ConfigResultMessage;
  after?: () => void;
}

export class RemoteConfigHandler {
  /** A bundle is being applied (reload or restart running). */
  private applying = false;

  constructor(
    private readonly host: RemoteHost,
    private readonly versions: RemoteVersionStore,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The running config as status and result messages report it. */
  state(): RunningConfigState {
    const h = this.host;
    return { hash: configHash(h.configText), version: h.runningVersion(), remoteVersion: this.versions.version, remote: h.config.remote !== undefined };
  }

  /** Handles one message from config/set; resolves to the answer for config/result, already
   * validated against the contract. A restart command's stop is dropped here: use receive(). */
  async handle(payload: Buffer): Promise<ConfigResultMessage> {
    return (await this.receive(payload)).result;
  }

  /** Handles one message from config/set (a config bundle or a command): the answer, and for a
   * restart command what to run once the answer is sent. */
  async receive(payload: Buffer): Promise<RemoteAnswer> {
    const r = await this.check(payload);
    return 'result' in r ? r : { result: r };
  }

  private async check(payload: Buffer): Promise<ConfigResultMessage | RemoteAnswer> {
    const site = this.host.config.site;
    const envelope = { v: CONTRACT_VERSION, gatewayId: site.gatewayId, communityCode: site.communityCode, kind: 'config-result' } as const;
    let version: number | null = null;
    let user = 'platform';
    /** Set once the bundle is read and is a command: named in its refusal too. */
    let command: RemoteCommand | undefined;
    const refuse = (reason: RemoteRefusal, detail: string): ConfigResultMessage => {
      this.host.audit({ user, ip: '', action: 'config-remote-refused', detail: { reason, version, ...(command ? { command } : {}), detail: detail.slice(0, 500) } });
      this.log.warn({ reason, version, command, detail: detail.slice(0, 500) }, `remote ${command ? 'command' : 'config bundle'} refused: ${reason}`);
      return this.result({ ...envelope, ts: this.now(), version, outcome: 'refused', reason, detail: clip(detail), ...(command ? { command } : {}), config: this.state() });
    };

    // 1. Size, JSON, shape: before anything is trusted or even parsed in full.
    if (payload.length > MAX_BUNDLE_BYTES) return refuse('too-large', `the bundle has ${payload.length} bytes, more than ${MAX_BUNDLE_BYTES}`);
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch (err) {
      return refuse('malformed', `not JSON: ${(err as Error).message}`);
    }
    const raw = json as { version?: unknown } | null;
    if (raw && typeof raw === 'object' && Number.isSafeInteger(raw.version) && (raw.version as number) > 0) version = raw.version as number;
    const parsed = Bundle.safeParse(json);
    if (!parsed.success) return refuse('malformed', parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(bundle)'}: ${i.message}`).join('; '));
    const b = parsed.data;
    version = b.version;
    if (b.kind === 'command') command = b.command;

    // 2. The signature, against the keys of the RUNNING config: a bundle can change the trusted
    // keys only when signed by a key trusted already.
    const trusted = this.host.config.remote?.trustedKeys ?? [];
    const sig = verifySignature(b, trusted);
    if (!sig.ok) return refuse(sig.reason, sig.reason === 'unknown-key' ? `key ${b.keyId} is not in remote.trustedKeys` : `the signature does not match the bundle for key ${b.keyId}`);
    user = `platform:${b.keyId}`;

    // 3. Target and time.
    if (b.gatewayId !== site.gatewayId) return refuse('wrong-gateway', `the bundle is for gateway "${b.gatewayId}", this is "${site.gatewayId}"`);
    const now = this.now();
    if (this.host.clockSynchronized() === false) return refuse('clock-unsynced', `this box's clock is not synchronised (it says ${new Date(now).toISOString()}): expiry cannot be checked; send again once NTP has synced`);
    if (now > Date.parse(b.expiresAt)) return refuse('expired', `expired at ${b.expiresAt}; this box's clock says ${new Date(now).toISOString()}`);
    if (Date.parse(b.issuedAt) > now + ISSUED_AHEAD_MS) return refuse('not-yet-valid', `issued at ${b.issuedAt}, more than 5 minutes ahead of this box's clock (${new Date(now).toISOString()})`);

    // 4. One bundle at a time: refused while another is being applied. Bundles that arrive
    // together (the broker delivering what it kept while the box was offline) are checked in
    // arrival order instead, each after the one before it is done.
    if (this.applying) return refuse('busy', 'another bundle is being applied');
    if (b.kind === 'command') return this.host.serial(() => this.runCommand(b, refuse, now));
    return this.host.serial(async () => {
        // Inside the apply queue: a web apply just before has changed the running text.
        const highest = this.versions.version;
        if (highest !== null && b.version <= highest) return refuse('replay', `version ${b.version} is not above ${highest}, the highest version this gateway applied`);
        const running = configHash(this.host.configText);
        if (!b.override && b.base !== running) return refuse('conflict', `the bundle was made against ${b.base ?? 'no base'}, the running config is ${running} (changed on site?); send it with override to replace it anyway`);
        const checked = this.host.check(b.config, b.profiles);
        if (!checked.ok) return refuse('invalid', checked.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '));

        // Used before it is applied (durably): a crash during the apply cannot make it appliable again.
        this.versions.use(b.version, b.keyId, now);
        const note = b.note ? `platform bundle ${b.version}: ${b.note}` : `platform bundle ${b.version}`;
        let r: ApplyResult;
        this.applying = true;
        try {
          r = await this.host.applyNow(b.config, { user, ip: '' }, note, { remoteVersion: b.version, keyId: b.keyId, override: b.override }, b.profiles);
        } finally {
          this.applying = false;
        }
        if (r.ok) {
          this.log.info({ version: b.version, keyId: b.keyId, applied: r.applied, kept: r.version.id }, 'remote config bundle applied');
          const profiles = Object.keys(b.profiles).length ? { profiles: Object.fromEntries(Object.entries(b.profiles).map(([n, t]) => [n, configHash(t)])) } : {};
          return this.result({ ...envelope, ts: this.now(), version: b.version, outcome: 'applied', applied: r.applied, ...profiles, config: this.state() });
        }
        if ('startError' in r) {
          this.log.warn({ version: b.version, err: r.startError }, 'remote config bundle failed to start: the previous config is running again');
          return this.result({ ...envelope, ts: this.now(), version: b.version, outcome: 'rolled-back', detail: clip(r.startError), config: this.state() });
        }
        // check() passed, so this is only reachable if validation changed in between.
        return refuse('invalid', r.errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; '));
    });
  }

  /** A verified command, inside the apply queue: the same replay rule and counter as a config
   * bundle, then the host carries it out. */
  private async runCommand(b: CommandBundle, refuse: (reason: RemoteRefusal, detail: string) => ConfigResultMessage, now: number): Promise<ConfigResultMessage | RemoteAnswer> {
    const highest = this.versions.version;
    if (highest !== null && b.version <= highest) return refuse('replay', `version ${b.version} is not above ${highest}, the highest version this gateway applied`);
    // Used before it runs, as a config bundle's: a restart cannot make it runnable again.
    this.versions.use(b.version, b.keyId, now);
    const user = `platform:${b.keyId}`;
    let out: CommandOutcome;
    try {
      out = await this.host.command(b.command, b.version);
    } catch (err) {
      out = { ok: false, detail: (err as Error).message };
    }
    if (!out.ok) return refuse('unavailable', out.detail);
    this.host.audit({ user, ip: '', action: 'config-remote-command', detail: { command: b.command, version: b.version, keyId: b.keyId, note: b.note, ...(out.detail ? { detail: out.detail.slice(0, 500) } : {}) } });
    this.log.info({ command: b.command, version: b.version, keyId: b.keyId }, `remote command ${b.command} carried out`);
    const site = this.host.config.site;
    const result = this.result({ v: CONTRACT_VERSION, gatewayId: site.gatewayId, communityCode: site.communityCode, kind: 'config-result', ts: this.now(), version: b.version, outcome: 'applied', command: b.command, ...(out.detail ? { detail: clip(out.detail) } : {}), config: this.state() });
    return { result, ...(out.after ? { after: out.after } : {}) };
  }

  /** Validated against the contract before it is sent: a bug here shows as an error, not as a
   * message the platform cannot read. */
  private result(m: ConfigResultMessage): ConfigResultMessage {
    // Named as the gateway running now: a bundle that changed site.gatewayId or communityCode
    // is answered by the new uplink, on the new topic, whose envelope must match it.
    const site = this.host.config.site;
    return ConfigResultMessage.parse({ ...m, gatewayId: site.gatewayId, communityCode: site.communityCode });
  }
}

function clip(s: string): string {
  return s.length > DETAIL_MAX ? `${s.slice(0, DETAIL_MAX - 1)}…` : s;
}
