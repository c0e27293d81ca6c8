// The daemon above the gateway: the running Gateway, the technician's web server, the admin
// login, the audit log and the config file with its kept versions. The web server lives here,
// not in the Gateway, so that applying a config which needs a full gateway restart does not
// take the page down with it. Constructors do no I/O; start() and stop() do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Profile } from './config/profile-schema.js';
import { ProfileSet, siteProfileDir } from './config/profiles.js';
import { DRIVERS_DIR } from './config/paths.js';
import type { SiteConfig } from './config/site-schema.js';
import { parseSiteConfig } from './config/site-config.js';
import { ConfigStore } from './config/config-store.js';
import { adoptLegacyState } from './config/state-dir.js';
import { isSecretPath, redactSecrets, restoreSecrets } from './config/secrets.js';
import { ensurePrivateDir } from './store/private-files.js';
import { logRing, type Logger, type LogRing } from './log.js';
import { Gateway } from './main.js';
import type { GpioBackend } from './io/gpio/line.js';
import { WebAuth } from './web/auth.js';
import { AuditLog } from './web/audit-log.js';
import { WebServer } from './web/server.js';
import { DrainTracker } from './web/drain-tracker.js';
import { Metrics } from './web/metrics.js';
import { fieldError, splitError, type FieldError } from './web/config-edit.js';
import type { Actor, ApplyResult, WebApp } from './web/web-app.js';
import { applyMode, fixedFieldChanges } from './config/apply-mode.js';
import type { Reading } from './types.js';
import { busyListeners, busyMessage, type Listener } from './service/port-check.js';
import { RemoteConfigHandler, type CommandOutcome, type RemoteHost } from './remote/remote-config.js';
import type { RemoteCommand } from './remote/bundle.js';
import { diagnosticsParts } from './remote/diagnostics-upload.js';
import { diagnosticBundle } from './web/diagnostics.js';
import { RemoteVersionStore } from './remote/remote-state.js';
import { bundleProfiles, installProfiles } from './remote/bundle-profiles.js';

/** Longest a remote restart waits for its answer to be acknowledged by the broker. */
const RESULT_BEFORE_RESTART_MS = 5000;

export interface AppOptions {
  /** The file the running config came from. */
  configFile: string;
  /** Where applied configs are written: the same file, or ./data/site.yaml when the daemon
   * runs on the embedded (read-only) default. */
  editableFile: string;
  profiles: ReadonlyMap<string, Profile>;
  log: Logger;
  /** The fixed state folder (src/config/state-dir.ts): admin account, audit log, site secret. */
  stateDir: string;
  gpioBackend?: GpioBackend;
  /** The log records the page shows (diagnostics); default the process' logRing. */
  logs?: LogRing;
}

export class App implements WebApp {
  gateway: Gateway;
  readonly auth: WebAuth;
  readonly audit: AuditLog;
  readonly configs: ConfigStore;
  readonly web: WebServer;
  readonly drain = new DrainTracker();
  readonly metrics: Metrics;
  private text: string;
  /** The profiles gateways are built with: the start's, plus those a remote bundle installed. */
  private profileSet: ReadonlyMap<string, Profile>;
  private readonly readingListeners = new Set<(r: Reading) => void>();
  private offReadings: (() => void) | null = null;
  private sampler: NodeJS.Timeout | null = null;
  /** One config change at a time: a second apply waits for the first. */
  private applying: Promise<unknown> = Promise.resolve();
  /** Set by the CLI's run(): stops the daemon and exits with RESTART_EXIT_CODE so that
   * systemd starts it again. Null (tests, embedding): a restart is refused. */
  restartHandler: (() => void) | null = null;
  /** Once the page listens, a new setup code (after reset-admin --delete) is logged with its URL. */
  private listening = false;
  /** Remote configuration (src/remote/): the bundle handler and the highest version used. */
  readonly remoteVersions: RemoteVersionStore;
  readonly remote: RemoteConfigHandler;

  constructor(
    config: SiteConfig,
    text: string,
    private readonly opts: AppOptions,
  ) {
    this.text = text;
    this.profileSet = opts.profiles;
    const stateDir = opts.stateDir;
    this.auth = new WebAuth({
      dir: stateDir,
      ...authSettings(config),
      // The one-time setup code goes to the log only (journalctl): whoever can read it is on
      // the box already; a browser on the LAN alone cannot claim the admin account.
      // At start the code is logged once the page listens, with its URL (start()).
      onSetupCode: (setupCode) => {
        if (this.listening) this.logSetupHint(setupCode);
      },
      onExternalChange: (what) => opts.log.warn({ file: this.auth.file, what }, 'web-admin.json changed on disk (reset-admin): every session ended'),
    });
    this.audit = new AuditLog(path.join(stateDir, 'audit.log'), Date.now, { ...config.web.audit, log: opts.log });
    this.configs = new ConfigStore(opts.editableFile, { redact: redactSecrets });
    this.remoteVersions = new RemoteVersionStore(stateDir);
    this.remote = new RemoteConfigHandler(this.remoteHost(), this.remoteVersions, opts.log);
    this.gateway = this.build(config);
    this.metrics = new Metrics(this);
    this.web = new WebServer({ ...config.web, stateDir }, this, opts.log);
  }

  get config(): SiteConfig {
    return this.gateway.config;
  }

  get configText(): string {
    return this.text;
  }

  get logs(): LogRing {
    return this.opts.logs ?? logRing;
  }

  get profiles(): ReadonlyMap<string, Profile> {
    return this.profileSet;
  }

  /** The site profile folder, or null when the config sits in the package (no site folder). */
  siteProfileDir(): string | null {
    if (this.profileSet instanceof ProfileSet) return this.profileSet.siteDir;
    const dir = siteProfileDir(this.configs.file);
    return path.resolve(dir) === path.resolve(DRIVERS_DIR) ? null : dir;
  }

  async start(): Promise<void> {
    // Every port first, before any part opens one (or the uplink connects): src/service/port-check.ts.
    const busy = await busyListeners(this.listeners());
    if (busy.length) throw new Error(busyMessage(busy));
    const warning = ensurePrivateDir(this.opts.stateDir);
    if (warning) this.opts.log.warn(warning);
    const moved = adoptLegacyState(this.opts.stateDir, path.dirname(path.resolve(this.config.storage.path)));
    if (moved.length) this.opts.log.warn({ stateDir: this.opts.stateDir, moved }, 'moved the admin account, audit log and site secret beside the database into the state folder');
    this.auth.load();
    // Before the uplink can deliver a bundle: the replay check needs the highest version used.
    this.remoteVersions.load();
    // Config versions kept by a gateway before issue 16 were off by one: converted once.
    const migrated = this.configs.migrate();
    if (migrated !== null) this.opts.log.warn({ dir: `${this.configs.file}.versions`, versions: migrated }, 'config versions converted: each now holds the config its change produced');
    const scrubbed = this.configs.scrub();
    if (scrubbed) this.opts.log.warn({ versions: scrubbed }, 'removed secrets from kept config versions');
    await this.gateway.start();
    this.relayReadings();
    try {
      await this.web.start();
    } catch (err) {
      await this.gateway.stop();
      throw err;
    }
    this.sampler = setInterval(() => this.sample(), 2000);
    this.sampler.unref();
    this.listening = true;
    const urls = this.pageUrls();
    this.opts.log.info({ urls }, `web page: ${urls.join('  ')}`);
    const code = this.auth.setupRequired ? this.auth.setupCode : null;
    if (code) this.logSetupHint(code);
  }

  /** Every address the daemon listens on, as each part names itself in its bind error. */
  private listeners(): Listener[] {
    const c = this.config;
    const b = c.localBroker;
    const out: Listener[] = [{ what: 'local broker', host: b.host, port: b.port }];
    if (b.tls) out.push({ what: 'local broker TLS listener', host: b.tls.host ?? b.host, port: b.tls.port });
    if (b.websocket) out.push({ what: 'local broker WebSocket listener', host: b.websocket.host ?? b.host, port: b.websocket.port });
    // The simulator is built only when a configured device points at it.
    if (this.gateway.simulator) out.push({ what: 'simulator', host: c.simulator.host, port: c.simulator.port });
    out.push({ what: 'web server', host: c.web.host, port: c.web.port });
    return out;
  }

  /** The page's address(es): for 0.0.0.0 / :: the box's own LAN addresses, then localhost. */
  pageUrls(): string[] {
    const scheme = this.config.web.https ? 'https' : 'http';
    const port = this.web.port;
    const host = this.config.web.host;
    const wild = host === '0.0.0.0' || host === '::';
    const hosts = wild
      ? [
          ...Object.values(os.networkInterfaces())
            .flatMap((l) => l ?? [])
            .filter((a) => !a.internal && (a.family === 'IPv4' || (host === '::' && !a.address.startsWith('fe80'))))
            .map((a) => a.address),
          'localhost',
        ]
      : [host];
    return [...new Set(hosts)].map((h) => `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}/`);
  }

  private logSetupHint(setupCode: string): void {
    const url = this.pageUrls()[0];
    this.opts.log.info({ setupCode, url }, `no admin account yet: open ${url} from the site LAN, choose the admin password and enter the setup code ${setupCode}`);
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    this.sampler = null;
    await this.web.stop();
    this.offReadings?.();
    await this.gateway.stop();
    this.metrics.close();
    this.audit.close();
  }

  /** Live readings of whichever gateway is running, for the page's event stream. */
  onReading(fn: (r: Reading) => void): () => void {
    this.readingListeners.add(fn);
    return () => this.readingListeners.delete(fn);
  }

  /** `text` may carry the page's placeholders for secrets: they stand for the running ones. */
  validate(text: string, profiles = this.profileSet): { ok: true; config: SiteConfig; text: string } | { ok: false; errors: FieldError[] } {
    const restored = restoreSecrets(text, this.text);
    if (!restored.ok) return { ok: false, errors: restored.errors.map(fieldError) };
    const r = parseSiteConfig(restored.text, profiles, { serialPaths: 'error' });
    return r.ok ? { ...r, text: restored.text } : { ok: false, errors: r.errors.map(splitError) };
  }

  /** Validates, saves (`text` becomes a new kept version, the running one, with `note`) and
   * applies `text`. A text that fails validation is never written; a restart that fails puts
   * the previous config back, file and gateway. `rollbackOf`: the version being rolled back to
   * (named in the audit log and on the new version). */
  apply(text: string, who: Actor, note: string, action: 'config-apply' | 'config-rollback', rollbackOf?: number): Promise<ApplyResult> {
    return this.serial(() => this.applyNow(text, who, note, action, rollbackOf));
  }

  /** Runs `fn` after the config changes queued before it, and before any queued after. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.applying.then(fn);
    this.applying = run.catch(() => undefined);
    return run;
  }

  /** What the remote bundle handler needs: the same validation and apply path as the page. */
  private remoteHost(): RemoteHost {
    // Getters, not copies: the running config and text change with every apply.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      get config() {
        return self.config;
      },
      get configText() {
        return self.text;
      },
      runningVersion: () => this.configs.runningId(this.text),
      clockSynchronized: () => this.gateway.clockSync.synchronized,
      check: (text, profiles) => {
        const p = bundleProfiles(profiles, this.profileSet, this.siteProfileDir());
        if (!p.ok) return p;
        const v = this.validate(text, p.set);
        // The refusal goes to the audit log and the platform: no secret value quoted in it.
        if (!v.ok) return { ok: false, errors: v.errors.map(withoutSecret) };
        const fixed = fixedFieldChanges(this.gateway.config, v.config);
        return fixed.length ? { ok: false, errors: fixed.map(fieldError) } : { ok: true };
      },
      serial: (fn) => this.serial(fn),
      applyNow: (text, who, note, detail, profiles) => this.applyNow(text, who, note, 'config-remote', undefined, detail, profiles),
      // A refusal before the signature checked (user "platform") comes from whoever can publish
      // on the set topic: rate-limited like the page's refusals from outside, counts kept.
      audit: (e) => (e.user === 'platform' ? void this.audit.writeLimited('remote-unverified', e) : this.audit.write(e)),
      command: (name, version) => this.remoteCommand(name, version),
    };
  }

  /** A verified remote command (docs/UPLINK.md "Remote commands"): nothing here reads a
   * personal value; the diagnostic bundle is the page's, redacted as for its download. */
  private async remoteCommand(name: RemoteCommand, version: number): Promise<CommandOutcome> {
    const up = this.gateway.uplink;
    switch (name) {
      case 'inventory': {
        if (!this.gateway.resendInventory()) return { ok: false, detail: 'this gateway has no uplink outbox' };
        up?.publishStatus();
        return { ok: true, detail: 'inventory queued and a status sent' };
      }
      case 'status':
        up?.publishStatus();
        return { ok: true, detail: 'status sent' };
      case 'diagnostics': {
        if (!up || up.state !== 'connected') return { ok: false, detail: 'the uplink is not connected: the diagnostic bundle cannot be sent now' };
        const b = await diagnosticBundle(this);
        const site = this.config.site;
        const parts = diagnosticsParts(b, { gatewayId: site.gatewayId, communityCode: site.communityCode }, version, this.config.uplink.maxMessageBytes);
        if (!up.publishDiagnostics(parts)) return { ok: false, detail: 'the uplink is not connected: the diagnostic bundle cannot be sent now' };
        const first = parts[0]!;
        return { ok: true, detail: `diagnostic bundle ${b.name}: ${first.bytes} bytes in ${parts.length} part(s)${first.trimmed ? `, ${first.trimmed} oldest log records left out` : ''}` };
      }
      case 'restart': {
        const restart = this.restartHandler;
        if (!restart) return { ok: false, detail: 'this daemon was not started by the community-gateway command: it cannot restart itself' };
        // As the page's restart: the answer first, then the stop (exit 75, systemd starts it again).
        return { ok: true, detail: 'restarting', after: restart };
      }
    }
  }

  /** A bundle from config/set: handled, and answered on the uplink running afterwards (a
   * restart-apply replaces the gateway, and with it the uplink). */
  private onBundle(payload: Buffer): void {
    this.remote.receive(payload).then(
      ({ result, after }) => {
        const up = this.gateway.uplink;
        if (!after) return up?.publishResult(result);
        // A restart waits for the answer's PUBACK (at most a few seconds), so the platform
        // learns it was taken before the gateway goes offline.
        let done = false;
        const go = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          after();
        };
        const timer = setTimeout(go, RESULT_BEFORE_RESTART_MS);
        if (up) up.publishResult(result, go);
        else go();
      },
      (err: Error) => this.opts.log.error({ err: err.message }, 'remote config: the bundle could not be handled'),
    );
  }

  /** `profiles`: a remote bundle's site profiles (file name -> text), installed with the config
   * and taken back with it when it fails to start. */
  private async applyNow(sent: string, who: Actor, note: string, action: string, rollbackOf?: number, extra: Record<string, unknown> = {}, profiles: Readonly<Record<string, string>> = {}): Promise<ApplyResult> {
    const siteDir = this.siteProfileDir();
    const p = Object.keys(profiles).length ? bundleProfiles(profiles, this.profileSet, siteDir) : null;
    if (p && !p.ok) {
      this.audit.write({ user: who.user, ip: who.ip, action: 'config-rejected', detail: { errors: p.errors.slice(0, 20) } });
      return { ok: false, errors: p.errors.map(fieldError) };
    }
    const v = this.validate(sent, p ? p.set : this.profileSet);
    if (!v.ok) {
      this.audit.write({ user: who.user, ip: who.ip, action: 'config-rejected', detail: { errors: v.errors.slice(0, 20).map(withoutSecret), ...(rollbackOf !== undefined ? { rollbackOf } : {}) } });
      return v;
    }
    const text = v.text;
    const prev = this.gateway.config;
    const prevText = this.text;
    const fixed = fixedFieldChanges(prev, v.config);
    if (fixed.length) {
      this.audit.write({ user: who.user, ip: who.ip, action: 'config-rejected', detail: { errors: fixed } });
      return { ok: false, errors: fixed.map(fieldError) };
    }
    const changes = p ? p.changes : [];
    // Profiles are read when a gateway is built: a new or changed one needs a new gateway.
    const mode = changes.length ? 'restart' : applyMode(prev, v.config);
    // The running text is kept as a version even when it came from the embedded default.
    if (!fs.existsSync(this.configs.file)) this.configs.save(prevText, { user: 'system', note: 'configuration at start', kind: 'found' });
    // Audited before the file changes: an apply the audit log cannot record does not happen.
    this.audit.write({ user: who.user, ip: who.ip, action, detail: { mode, note, ...extra, ...(p ? { profiles: p.summary, profilesChanged: changes.map((c) => c.name) } : {}), ...(rollbackOf !== undefined ? { rollbackOf, from: this.configs.runningId(prevText) } : {}) } });
    // Profiles before the config that uses them: a crash between the two leaves the old config
    // with profiles it does not use, never a config without its profiles.
    const prevProfiles = this.profileSet;
    let undoProfiles: (() => void) | null = null;
    if (p && changes.length) {
      try {
        undoProfiles = installProfiles(siteDir!, changes);
      } catch (err) {
        // e.g. the disk is full: nothing of the bundle is in place (files are renamed in last).
        const message = `the site profiles could not be stored in ${siteDir}: ${(err as Error).message}`;
        this.audit.write({ user: 'system', ip: '', action: 'config-rejected', detail: { errors: [{ path: 'profiles', message }] } });
        return { ok: false, errors: [fieldError({ path: 'profiles', message })] };
      }
      this.profileSet = p.set;
    }
    const version = this.configs.save(text, { user: who.user, note, ...(rollbackOf !== undefined ? { kind: 'rollback' as const, rollbackOf } : {}) });
    this.text = text;
    // The page's own login settings hold at once (the web server itself is not rebuilt).
    this.auth.reconfigure(authSettings(v.config));
    // The platform hears of the change at once (remote turned off, other keys, a new hash): a
    // status now; after a restart the new uplink's first status carries it.
    if (mode === 'none') {
      this.gateway.uplink?.publishStatus();
      return { ok: true, applied: 'none', version };
    }
    let startError: string | null = null;
    if (mode === 'reload') {
      try {
        await this.gateway.reloadIo(v.config);
        this.gateway.uplink?.publishStatus();
        return { ok: true, applied: 'reload', version };
      } catch (err) {
        // e.g. the simulator's new port is taken: the io side is half built; start clean.
        startError = (err as Error).message;
      }
    } else {
      startError = await this.restart(v.config);
    }
    if (startError === null) {
      if (prev.web.host !== v.config.web.host || prev.web.port !== v.config.web.port || prev.web.https !== v.config.web.https || JSON.stringify(prev.web.tls) !== JSON.stringify(v.config.web.tls)) setTimeout(() => this.web.rebind(v.config.web).catch((err: Error) => this.opts.log.fatal({ err: err.message }, 'the web page is down: it could start neither on the new settings nor on the previous ones')), 200).unref();
      return { ok: true, applied: 'restart', version };
    }
    // The new config could not start: put back the previous one, file, profiles and gateway.
    this.auth.reconfigure(authSettings(prev));
    if (undoProfiles) {
      undoProfiles();
      this.profileSet = prevProfiles;
    }
    this.configs.save(prevText, { user: 'system', note: `restored: the applied config failed to start (${startError})`, kind: 'restored' });
    this.text = prevText;
    const back = await this.restart(prev);
    if (back !== null) this.opts.log.fatal({ err: back }, 'the previous configuration failed to start again');
    this.audit.write({ user: 'system', ip: '', action: 'config-restored', detail: { reason: startError } });
    return { ok: false, startError };
  }

  /** Stops the gateway and starts one on `config`; null on success, else why not. */
  private async restart(config: SiteConfig): Promise<string | null> {
    this.offReadings?.();
    await this.gateway.stop();
    this.gateway = this.build(config);
    try {
      await this.gateway.start();
      this.relayReadings();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private build(config: SiteConfig): Gateway {
    return new Gateway(config, this.profileSet, this.opts.log, {
      gpioBackend: this.opts.gpioBackend,
      stateDir: this.opts.stateDir,
      // Remote off: no onBundle, so the uplink does not subscribe at all.
      uplinkRemote: { config: () => this.remote.state(), ...(config.remote ? { onBundle: (p: Buffer) => this.onBundle(p) } : {}) },
      auditHead: () => {
        const h = this.audit.chainHead();
        return { seq: h.seq, head: h.hash };
      },
    });
  }

  private relayReadings(): void {
    this.offReadings = this.gateway.events.on('reading', (r) => {
      for (const fn of this.readingListeners) fn(r);
    });
  }

  private sample(): void {
    const g = this.gateway;
    if (!g.outbox || !g.uplink) return;
    this.drain.add({ t: Date.now(), acked: g.uplink.stats.acked, rows: g.outbox.stats().rows, connected: g.uplink.state === 'connected' });
  }
}

/** The login settings of the web section (auth.ts). */
function authSettings(c: SiteConfig): { idleMs: number; maxAgeMs: number; requireTotp: boolean } {
  return { idleMs: c.web.sessionIdleMinutes * 60_000, maxAgeMs: c.web.sessionMaxHours * 3_600_000, requireTotp: c.web.requireTotp };
}

/** A validation error about a secret field may quote the value ("got number 12345678"): the
 * audit log keeps the field, not what was typed there. */
/** A check error as the audit log keeps it: path, message and line (no message code: the
 * log is read as text), and for a secret field no word of what was typed. */
function withoutSecret(e: FieldError): { path: string; message: string; line?: number } {
  const message = isSecretPath(e.path) ? 'invalid (a secret field: the value is not recorded)' : e.message;
  return { path: e.path, message, ...(e.line !== undefined ? { line: e.line } : {}) };
}
