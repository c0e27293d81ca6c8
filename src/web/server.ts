// The technician's web server (docs/WEB.md): static page assets served by the box, and the
// JSON API behind the admin login. Every body is validated at the edge (api-schemas.ts);
// every change needs the session's CSRF token and is written to the audit log.
import { MESSAGES } from '../messages/catalog.js';
import { identify } from '../messages/identify.js';
import { withCodes } from './message-codes.js';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Logger } from '../log.js';
import type { WebApp } from './web-app.js';
import { PACKAGE_ROOT } from '../config/paths.js';
import { ModbusError } from '../io/modbus/errors.js';
import { DeviceCommandError } from '../main.js';
import { decodeAll } from '../io/modbus/device-commands.js';
import { privacyReport } from '../privacy/privacy-report.js';
import { rawReadRefusal } from '../privacy/policy.js';
import { AccountError, clearedCookie, isLanAddress, parseCookies, sessionCookie, SetupError, type Refusal } from './auth.js';
import { HostCheck } from './host-check.js';
import { newEnrolment } from './second-factor.js';
import { BASE_HEADERS, clientIp, HttpError, readBody, sendJson } from './http.js';
import { ReplayGuard } from './replay-guard.js';
import { ConfigBody, DeviceImportBody, DiffBody, LoginBody, PasswordChangeBody, ProfileUploadBody, ReadBody, ReadNowBody, RollbackBody, ScanBody, SetupBody, TotpDisableBody, TotpEnableBody, WriteBody, type ConfigEditT } from './api-schemas.js';
import { ScanRefused } from '../scan/scan-runner.js';
import { EditError, entriesOf, formOf, mergeEdit, mergeForm } from './config-edit.js';
import { listSerialPorts } from '../io/serial-ports.js';
import { configDiff } from './config-diff.js';
import { redactSecrets } from '../config/secrets.js';
import { deviceDetail, overview } from './views.js';
import { diagnosticBundle, LogsQuery, recentLogs, SystemCommandBody } from './diagnostics.js';
import { publicReading } from './public-reading.js';
import { loadOrCreateTls, type TlsMaterial } from './tls-cert.js';
import { csvRows, planImport, type ImportRow } from './device-import.js';
import { uploadProfile } from './profile-upload.js';
import { BUCKETS, bucketMs, HistoryQuery, historyPoints, historyQueryInput, seriesOf } from './history.js';
import { defaultChartPoint } from '../config/profile-schema.js';
import { profileOrigin } from '../config/profiles.js';

const PUBLIC_DIR = path.join(PACKAGE_ROOT, 'src', 'web', 'public');
const UPLOT_DIR = path.dirname(createRequire(import.meta.url).resolve('uplot'));
const STATIC: Record<string, string> = {
  '/vendor/uplot.iife.min.js': path.join(UPLOT_DIR, 'uPlot.iife.min.js'),
  '/vendor/uplot.min.css': path.join(UPLOT_DIR, 'uPlot.min.css'),
};
/** The message catalogue as a module for the page (src/messages/catalog.ts is its one source). */
const MESSAGES_JS = `export const MESSAGES = ${JSON.stringify(MESSAGES)};\n`;
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const MAX_EVENT_CLIENTS = 20;
/** Live streams one login may hold (a phone and a laptop, a few tabs): one session must not
 * take every slot and keep the other technicians' pages dark. */
const MAX_EVENT_CLIENTS_PER_SESSION = 4;

interface Session {
  user: string;
  csrf: string;
  token: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, params: string[], s: Session | null) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  auth: boolean;
  handler: Handler;
  /** A command (device write, config apply or rollback): needs a fresh X-Request-Nonce. */
  command: boolean;
  /** Open to a session that must enrol a second factor first (web.requireTotp). */
  enrolment: boolean;
}

/** What a session may do while web.requireTotp waits for a second factor to be enrolled. */
const ENROLMENT_ROUTES = new Set(['GET /api/account', 'POST /api/account/totp/new', 'POST /api/account/totp', 'POST /api/logout']);

/** web.* as the server needs it; `stateDir` holds the self-signed certificate. */
export interface WebServerOptions {
  host: string;
  port: number;
  https?: boolean;
  tls?: { certFile: string; keyFile: string };
  stateDir?: string;
}

export class WebServer {
  private server: http.Server | https.Server | null = null;
  private tlsInfo: TlsMaterial | null = null;
  private readonly routes: Route[] = [];
  private readonly eventClients = new Set<http.ServerResponse>();
  private readonly replay = new ReplayGuard((token) => this.app.auth.alive(token));
  /** Open live streams per session token. */
  private readonly eventsPerSession = new Map<string, number>();
  private readonly hosts: HostCheck;

  constructor(
    private opts: WebServerOptions,
    private readonly app: WebApp,
    private readonly log: Logger,
  ) {
    this.hosts = new HostCheck(
      () => this.opts.host,
      () => this.app.config.web.allowedHosts,
    );
    this.defineRoutes();
  }

  get port(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.opts.port;
  }

  /** The served certificate while on HTTPS (its fingerprint is shown on the page), else null. */
  get tls(): { fingerprint256: string; source: TlsMaterial['source']; validTo: string } | null {
    const t = this.tlsInfo;
    return t ? { fingerprint256: t.fingerprint256, source: t.source, validTo: t.validTo } : null;
  }

  /** On HTTPS the session cookie is Secure. */
  private get secure(): boolean {
    return this.tlsInfo !== null;
  }

  async start(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    let server: http.Server | https.Server;
    if (this.opts.https === false) {
      this.tlsInfo = null;
      server = http.createServer(handler);
      this.log.warn({ host: this.opts.host }, 'web page on plain HTTP (web.https: false): the admin password and the session cookie cross the LAN in clear');
    } else {
      // No Strict-Transport-Security: on a self-signed certificate it would take away the
      // browser's "proceed anyway" the day the certificate changes (state folder lost, box
      // replaced), locking the technician out; browsers ignore it for IP addresses anyway.
      const t = await loadOrCreateTls(this.opts.stateDir ?? '.', this.opts.tls);
      this.tlsInfo = t;
      server = https.createServer({ key: t.key, cert: t.cert, minVersion: 'TLSv1.2' }, handler);
      this.log.info(
        { fingerprint256: t.fingerprint256, source: t.source, certFile: t.certFile, validTo: t.validTo, created: t.created, ...(t.replaced ? { replaced: t.replaced } : {}) },
        t.created ? 'web page certificate created: check this SHA-256 fingerprint in the browser' : 'web page certificate: check this SHA-256 fingerprint in the browser',
      );
    }
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new Error(`web server cannot listen on ${this.opts.host}:${this.opts.port}: ${err.code ?? err.message}`)));
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    this.log.info({ host: this.opts.host, port: this.port, scheme: this.secure ? 'https' : 'http' }, 'web server listening');
  }

  async stop(): Promise<void> {
    for (const c of this.eventClients) c.end();
    this.eventClients.clear();
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** After a config changed web.host/port: listen on the new address. */
  /** After a config changed web.host/port/https/tls: listen on the new address. If that
   * fails (port taken, a certificate that does not load), the page comes back on the previous
   * one: the box must never be left without its page. */
  async rebind(opts: WebServerOptions): Promise<void> {
    const prev = this.opts;
    await this.stop();
    // Replaced whole (not merged): removing web.tls must drop the site's certificate.
    this.opts = { ...opts, stateDir: opts.stateDir ?? prev.stateDir };
    try {
      await this.start();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'the web page could not start on the new settings: back on the previous ones');
      this.opts = prev;
      await this.start();
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway');
    try {
      if (url.pathname === '/healthz') return this.healthz(res);
      if (url.pathname.startsWith('/api/') || url.pathname === '/metrics') this.checkHost(req);
      if (url.pathname === '/metrics') {
        // No login (Prometheus scrapes without one), but only from the site LAN: the series
        // name devices, never residents.
        if (!isLanAddress(clientIp(req))) throw new HttpError(403, 'metrics are served to the site LAN only');
        const body = await this.app.metrics.render();
        res.writeHead(200, { ...BASE_HEADERS, 'content-type': this.app.metrics.contentType }).end(body);
        return;
      }
      if (!url.pathname.startsWith('/api/')) return this.serveStatic(req, res, url.pathname);
      const matches = this.routes.map((r) => ({ r, m: r.pattern.exec(url.pathname) })).filter((x) => x.m);
      if (!matches.length) throw new HttpError(404, 'not found');
      const hit = matches.find((x) => x.r.method === req.method);
      if (!hit) throw new HttpError(405, 'method not allowed', {}, { allow: [...new Set(matches.map((x) => x.r.method))].join(', ') });
      const session = this.sessionOf(req);
      if (hit.r.auth && !session) throw new HttpError(401, 'login required');
      if (req.method !== 'GET') this.checkCsrf(req, session, hit.r.auth);
      if (hit.r.command && session) this.checkNonce(req, session, url.pathname);
      if (hit.r.auth && !hit.r.enrolment && this.app.auth.enrolmentRequired) {
        throw new HttpError(403, 'this site requires a second factor (web.requireTotp): enrol one on the account page first', { reason: 'enrol-totp' });
      }
      await hit.r.handler(req, res, hit.m!.slice(1).map(decodeParam), session);
    } catch (err) {
      if (res.headersSent) {
        res.end();
        return;
      }
      if (err instanceof HttpError) {
        // `msg`: the catalogue code and parameters, so the page shows it in its language.
        const detail = err.extra.detail;
        sendJson(res, err.status, { error: err.message, ...(typeof detail === 'string' ? { msg: identify(detail) } : {}), ...err.extra }, err.headers);
      } else {
        this.log.error({ err: (err as Error).message, url: url.pathname }, 'web request failed');
        sendJson(res, 500, { error: 'internal error' });
      }
    }
  }

  /** Liveness: 200 while every loop makes progress, 503 with the reason otherwise. */
  private healthz(res: http.ServerResponse): void {
    const live = this.app.gateway.liveness();
    if (live === true) res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'text/plain' }).end('ok\n');
    else res.writeHead(503, { ...BASE_HEADERS, 'content-type': 'text/plain' }).end(`stalled: ${live}\n`);
  }

  /** DNS rebinding: the Host header must name this box and the port the request came in on. */
  private checkHost(req: http.IncomingMessage): void {
    const sock = req.socket as http.IncomingMessage['socket'] & { encrypted?: boolean };
    const port = sock.localPort ?? this.port;
    if (!this.hosts.allows(req.headers.host, port, sock.encrypted ? 443 : 80)) {
      throw new HttpError(403, 'host', { detail: 'the Host header does not name this box: open the page by its address (or add the name to web.allowedHosts)' });
    }
  }

  private sessionOf(req: http.IncomingMessage): Session | null {
    const token = parseCookies(req.headers.cookie).cgw_session;
    const s = token ? this.app.auth.session(token) : null;
    return s && token ? { user: s.user, csrf: s.csrf, token } : null;
  }

  /** A change must come from our own page: Origin (when sent) names this host, and a
   * logged-in request carries the session's CSRF token. */
  private checkCsrf(req: http.IncomingMessage, s: Session | null, needsSession: boolean): void {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let host = '';
      try {
        host = new URL(origin).host;
      } catch {
        /* not a URL: refused below */
      }
      if (host !== req.headers.host) throw new HttpError(403, 'csrf', { detail: 'Origin does not match Host' });
    }
    if (!needsSession) return;
    const presented = req.headers['x-csrf-token'];
    if (!s || !this.app.auth.checkCsrf(s.token, typeof presented === 'string' ? presented : undefined)) throw new HttpError(403, 'csrf', { detail: 'missing or wrong X-CSRF-Token' });
  }

  private serveStatic(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'method not allowed', {}, { allow: 'GET, HEAD' });
    if (pathname === '/messages.js') {
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': TYPES['.js']!, 'content-security-policy': CSP, 'cache-control': 'no-cache' }).end(req.method === 'HEAD' ? undefined : MESSAGES_JS);
      return;
    }
    let file = STATIC[pathname];
    if (!file) {
      const rel = pathname === '/' ? 'index.html' : pathname.slice(1);
      file = path.resolve(PUBLIC_DIR, rel);
      // No way out of the public folder ("/../", encoded dots, absolute paths).
      if (!file.startsWith(PUBLIC_DIR + path.sep) || rel.includes('\0')) throw new HttpError(404, 'not found');
    }
    let body: Buffer;
    try {
      body = fs.readFileSync(file);
    } catch {
      throw new HttpError(404, 'not found');
    }
    res
      .writeHead(200, {
        ...BASE_HEADERS,
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'content-security-policy': CSP,
        'cache-control': 'no-cache',
      })
      .end(req.method === 'HEAD' ? undefined : body);
  }

  private route(method: string, pattern: string, auth: boolean, handler: Handler, opts: { command?: boolean } = {}): void {
    this.routes.push({ method, pattern: new RegExp(`^${pattern.replace(/:\w+/g, '([^/]+)')}$`), auth, handler, command: opts.command ?? false, enrolment: ENROLMENT_ROUTES.has(`${method} ${pattern}`) });
  }

  /** Replay protection for commands (replay-guard.ts); refusals are audited. */
  private checkNonce(req: http.IncomingMessage, s: Session, url: string): void {
    const verdict = this.replay.take(s.token, req.headers['x-request-nonce']);
    if (verdict === 'ok') return;
    if (verdict === 'replayed') {
      this.app.audit.write({ user: s.user, ip: clientIp(req), action: 'replay-refused', detail: { url } });
      throw new HttpError(409, 'this request was already received once (replayed): nothing was done');
    }
    if (verdict === 'exhausted') throw new HttpError(429, 'too many commands in this session: log in again');
    throw new HttpError(400, `X-Request-Nonce: ${verdict === 'missing' ? 'required on this command' : 'must be 16..128 characters of A-Z a-z 0-9 _ -'}`);
  }

  private defineRoutes(): void {
    const app = this.app;
    const who = (req: http.IncomingMessage, s: Session | null) => ({ user: s?.user ?? 'anonymous', ip: clientIp(req) });

    this.route('GET', '/api/session', false, (_req, res, _p, s) => {
      const setupRequired = app.auth.setupRequired;
      sendJson(res, 200, {
        setupRequired,
        authenticated: s !== null,
        secondFactor: app.auth.secondFactor,
        totpRequired: app.auth.totpRequired,
        ...(s ? { user: s.user, csrf: s.csrf, mustEnrol: app.auth.enrolmentRequired } : {}),
      });
    });

    /** Answers a refused credential check: 429 while locked or delayed (not audited each time:
     * no disk write per request for an attacker), else audits the failure and any lock it
     * started. */
    const refuse = (req: http.IncomingMessage, r: Refusal, action: string, status: number): never => {
      const ip = clientIp(req);
      if (r.reason === 'locked' || r.reason === 'throttled') {
        const msg = r.reason === 'locked' ? 'too many failed attempts from this address: locked for a while' : 'too many failed attempts on the account: wait before the next try';
        throw new HttpError(429, msg, { reason: r.reason, retryAfterS: r.retryAfterS }, { 'retry-after': String(r.retryAfterS ?? 900) });
      }
      app.audit.write({ user: 'admin', ip, action, detail: { reason: r.reason } });
      if (r.lockout) app.audit.write({ user: 'admin', ip, action: 'lockout', detail: { scope: r.lockout, retryAfterS: r.retryAfterS } });
      throw new HttpError(status, r.reason === 'no-password' ? 'no admin password is set yet' : 'wrong password or code', { reason: r.reason });
    };
    const lanOnly = (req: http.IncomingMessage) => {
      const ip = clientIp(req);
      if (!isLanAddress(ip)) {
        // Rate-limited: an outsider can repeat this at will (counted in the next line written).
        app.audit.writeLimited(ip, { user: 'anonymous', ip, action: 'setup-refused', detail: { reason: 'not from the LAN' } });
        throw new HttpError(403, 'the first password can only be set from the site LAN');
      }
      return ip;
    };

    // While setup is required: a fresh TOTP secret to enrol (nothing is stored until setup).
    this.route('POST', '/api/setup/totp', false, (req, res) => {
      lanOnly(req);
      if (!app.auth.setupRequired) throw new HttpError(409, 'the admin password is already set; log in instead');
      sendJson(res, 200, newEnrolment());
    });

    this.route('POST', '/api/setup', false, async (req, res) => {
      const ip = lanOnly(req);
      const body = await readBody(req, SetupBody);
      try {
        const s = await app.auth.setup(body, ip);
        app.audit.write({ user: 'admin', ip, action: 'setup', detail: { secondFactor: body.totp !== undefined } });
        sendJson(res, 200, { ok: true, csrf: s.csrf, ...(s.recoveryCodes ? { recoveryCodes: s.recoveryCodes } : {}) }, { 'set-cookie': sessionCookie(s.token, this.secure) });
      } catch (err) {
        if (!(err instanceof SetupError)) throw err;
        if (err.code === 'locked') throw new HttpError(429, err.message, { reason: 'locked', retryAfterS: err.retryAfterS }, { 'retry-after': String(err.retryAfterS ?? 900) });
        if (err.code === 'setup-code') {
          // Rate-limited like the refusals from outside the LAN: a host cycling addresses must
          // not be able to fill the audit log while setup is open (counts are kept).
          app.audit.writeLimited(ip, { user: 'anonymous', ip, action: 'setup-refused', detail: { reason: 'wrong setup code' } });
          throw new HttpError(403, err.message, { reason: 'setup-code' });
        }
        throw new HttpError(err.code === 'exists' ? 409 : 400, err.message, { reason: err.code });
      }
    });

    this.route('POST', '/api/login', false, async (req, res) => {
      const ip = clientIp(req);
      const { password, code } = await readBody(req, LoginBody);
      const r = await app.auth.login(password, ip, code);
      if (!r.ok) return refuse(req, r, 'login-failed', 401);
      app.audit.write({ user: 'admin', ip, action: 'login', ...(r.via ? { detail: { via: r.via, ...(r.via === 'recovery' ? { recoveryCodesLeft: app.auth.recoveryCodesLeft } : {}) } } : {}) });
      sendJson(res, 200, { ok: true, csrf: r.csrf, ...(r.via === 'recovery' ? { recoveryCodesLeft: app.auth.recoveryCodesLeft } : {}) }, { 'set-cookie': sessionCookie(r.token, this.secure) });
    });

    this.route('POST', '/api/logout', true, (req, res, _p, s) => {
      app.auth.logout(s!.token);
      this.replay.forget(s!.token);
      app.audit.write({ ...who(req, s), action: 'logout' });
      sendJson(res, 200, { ok: true }, { 'set-cookie': clearedCookie(this.secure) });
    });

    this.route('GET', '/api/account', true, (_req, res, _p, s) => {
      sendJson(res, 200, { user: s!.user, secondFactor: app.auth.secondFactor, totpRequired: app.auth.totpRequired, recoveryCodesLeft: app.auth.recoveryCodesLeft });
    });

    const accountError = (err: unknown): never => {
      if (err instanceof AccountError) throw new HttpError(err.code === 'state' ? 409 : 400, err.message, { reason: err.code });
      throw err;
    };

    this.route('POST', '/api/account/password', true, async (req, res, _p, s) => {
      const body = await readBody(req, PasswordChangeBody);
      const r = await app.auth.changePassword(s!.token, body.current, body.password, clientIp(req), body.code).catch(accountError);
      if (!r.ok) return refuse(req, r, 'password-change-failed', 403);
      app.audit.write({ ...who(req, s), action: 'password-change', detail: { otherSessionsEnded: true } });
      sendJson(res, 200, { ok: true });
    });

    this.route('POST', '/api/account/totp/new', true, (_req, res) => {
      if (app.auth.secondFactor) throw new HttpError(409, 'a second factor is already enrolled: switch it off first');
      sendJson(res, 200, newEnrolment());
    });

    this.route('POST', '/api/account/totp', true, async (req, res, _p, s) => {
      const body = await readBody(req, TotpEnableBody);
      const r = await app.auth.enableTotp(s!.token, body.password, body.secret, body.code, clientIp(req)).catch(accountError);
      if (!r.ok) return refuse(req, r, 'totp-enable-failed', 403);
      app.audit.write({ ...who(req, s), action: 'totp-enable' });
      sendJson(res, 200, { ok: true, recoveryCodes: r.recoveryCodes });
    });

    this.route('POST', '/api/account/totp/disable', true, async (req, res, _p, s) => {
      const body = await readBody(req, TotpDisableBody);
      const r = await app.auth.disableTotp(s!.token, body.password, body.code, clientIp(req)).catch(accountError);
      if (!r.ok) return refuse(req, r, 'totp-disable-failed', 403);
      app.audit.write({ ...who(req, s), action: 'totp-disable' });
      sendJson(res, 200, { ok: true });
    });

    this.route('GET', '/api/status', true, (_req, res) => sendJson(res, 200, app.gateway.snapshot()));
    this.route('GET', '/api/privacy', true, (_req, res) => sendJson(res, 200, privacyReport(app.config, app.profiles, app.gateway.ledger?.summary(app.config.privacy.k) ?? null)));
    this.route('GET', '/api/overview', true, (_req, res) => sendJson(res, 200, overview(app.gateway, app.drain.state())));

    this.route('GET', '/api/devices/:id', true, (_req, res, [id]) => {
      const d = deviceDetail(app.gateway, id!);
      if (!d) throw new HttpError(404, `no device ${id}`);
      sendJson(res, 200, d);
    });

    this.route('GET', '/api/devices/:id/history', true, (req, res, [id]) => {
      const parsed = HistoryQuery.safeParse(historyQueryInput(new URL(req.url ?? '', 'http://gateway').searchParams));
      if (!parsed.success) throw new HttpError(400, `${parsed.error.issues[0]!.path[0]?.toString() ?? 'query'}: ${parsed.error.issues[0]!.message}`);
      const { hours } = parsed.data;
      const profile = app.gateway.profileOf(id!);
      if (!profile) throw new HttpError(404, `no device ${id}`);
      // Every point is checked before any is read: one non-public point refuses the request.
      const pts = historyPoints(profile, parsed.data.point).map((point) => {
        const p = profile.points.find((x) => x.id === point);
        if (!p) throw new HttpError(404, `no point "${point}" on device ${id}`);
        if (p.privacy !== 'public') throw new HttpError(403, `point ${point} is ${p.privacy} data: it is not shown`);
        return p;
      });
      const to = Date.now();
      const from = to - hours * 3_600_000;
      sendJson(res, 200, {
        hours,
        from,
        to,
        bucketMs: bucketMs(hours),
        // The retention in force: what the running raw store was started with (a change restarts it).
        retentionHours: app.gateway.config.storage.rawRetentionHours,
        mainPoint: defaultChartPoint(profile) ?? null,
        series: pts.map((p) => seriesOf(p, app.gateway.raw?.bucketed(id!, p.id, from, to, BUCKETS) ?? [])),
      });
    });

    this.route('POST', '/api/devices/:id/read', true, async (req, res, [id], s) => {
      const body = await readBody(req, ReadBody);
      // WEB.md: personal and identifier values never reach the page, raw registers included.
      // The CLI `read` (root on the box itself) keeps its own rule.
      const profile = app.gateway.profileOf(id!);
      const refusal = profile ? rawReadRefusal(profile, body.register, body.start, body.count) : null;
      if (refusal) {
        app.audit.write({ ...who(req, s), action: 'device-read-refused', detail: { device: id, ...body, reason: refusal } });
        throw new HttpError(403, refusal);
      }
      app.audit.write({ ...who(req, s), action: 'device-read', detail: { device: id, ...body } });
      try {
        const words = await app.gateway.tryRead(id!, body);
        if (body.register === 'coil' || body.register === 'discrete') sendJson(res, 200, { bits: words });
        else sendJson(res, 200, { words, hex: words.map((w) => w.toString(16).padStart(4, '0')), decoded: decodeAll(words) });
      } catch (err) {
        if (err instanceof DeviceCommandError) throw new HttpError(404, err.message);
        if (err instanceof ModbusError) return sendJson(res, 200, withCodes({ error: err.message, quality: err.quality }));
        throw err;
      }
    });

    this.route('POST', '/api/devices/:id/write', true, async (req, res, [id], s) => {
      const body = await readBody(req, WriteBody);
      const point = app.gateway.profileOf(id!)?.points.find((p) => p.id === body.point);
      const detail = { device: id, point: body.point, value: body.value };
      if (point && point.privacy !== 'public') {
        app.audit.write({ ...who(req, s), action: 'device-write-refused', detail: { ...detail, error: `point is ${point.privacy} data` } });
        throw new HttpError(403, `point ${body.point} is ${point.privacy} data`);
      }
      try {
        await app.gateway.writePoint(id!, body.point, body.value);
      } catch (err) {
        app.audit.write({ ...who(req, s), action: 'device-write-refused', detail: { ...detail, error: (err as Error).message } });
        if (err instanceof DeviceCommandError) throw new HttpError(422, err.message);
        if (err instanceof ModbusError) throw new HttpError(502, `the device did not take the write: ${err.message}`);
        throw err;
      }
      // Outside the catch: a write that happened is never recorded as refused.
      app.audit.write({ ...who(req, s), action: 'device-write', detail });
      sendJson(res, 200, { ok: true });
    }, { command: true });

    // Bus scan (docs/WEB.md): read-only, through the bus' queue at low priority; one per bus.
    this.route('POST', '/api/buses/:id/scan', true, async (req, res, [id], s) => {
      const body = await readBody(req, ScanBody);
      let scan;
      try {
        scan = app.gateway.startScan(id!, body);
      } catch (err) {
        if (err instanceof ScanRefused) throw new HttpError(err.reason === 'unknown-bus' ? 404 : err.reason === 'busy' ? 409 : 503, err.message, { reason: err.reason });
        throw err;
      }
      app.audit.write({ ...who(req, s), action: 'bus-scan', detail: { bus: id, units: scan.units, timeoutMs: scan.timeoutMs } });
      sendJson(res, 202, { started: true, scan });
    });

    this.route('GET', '/api/buses/:id/scan', true, (_req, res, [id]) => {
      if (!app.gateway.buses.has(id!)) throw new HttpError(404, `no bus ${id}`);
      const scan = app.gateway.scanState(id!);
      if (!scan) throw new HttpError(404, `no scan of bus ${id} since the gateway started`);
      sendJson(res, 200, withCodes(scan));
    });

    this.route('DELETE', '/api/buses/:id/scan', true, async (req, res, [id], s) => {
      if (!app.gateway.buses.has(id!)) throw new HttpError(404, `no bus ${id}`);
      if (!(await app.gateway.cancelScan(id!))) throw new HttpError(409, `no scan of bus ${id} is running`);
      app.audit.write({ ...who(req, s), action: 'bus-scan-cancel', detail: { bus: id } });
      sendJson(res, 200, withCodes({ cancelled: true, scan: app.gateway.scanState(id!) }));
    });

    // Site tools (docs/WEB.md "Site tools"): devices added from a CSV file or a scan, and
    // site profiles uploaded. Both go through the checks the daemon runs at start.
    this.route('POST', '/api/devices/import', true, async (req, res, _p, s) => {
      const body = await readBody(req, DeviceImportBody, 1024 * 1024);
      let rows: ImportRow[];
      if (body.csv !== undefined) {
        const r = csvRows(body.csv);
        if (!r.ok) return sendJson(res, 422, { ok: false, errors: r.errors });
        rows = r.rows;
      } else {
        rows = body.devices!.map((d, i) => ({ row: i + 1, cells: Object.fromEntries(Object.entries(d).map(([k, v]) => [k, String(v).trim()])) }));
      }
      const plan = planImport(rows, app.configText, (text) => app.validate(text));
      const source = body.csv !== undefined ? 'csv' : 'list';
      if (!plan.ok) {
        if (!body.dryRun) app.audit.write({ ...who(req, s), action: 'device-import-refused', detail: { source, rows: rows.length, errors: plan.errors.length } });
        return sendJson(res, 422, { ok: false, errors: plan.errors });
      }
      if (body.dryRun) return sendJson(res, 200, { ok: true, dryRun: true, devices: plan.ids, from: { running: app.configs.runningId(app.configText) }, to: { version: null }, ...configDiff(app.configText, plan.text) });
      app.audit.write({ ...who(req, s), action: 'device-import', detail: { source, devices: plan.ids.slice(0, 50), count: plan.ids.length } });
      const note = body.note?.trim() || (source === 'csv' ? `CSV import: ${plan.ids.length} devices` : `added ${plan.ids.join(', ')}`);
      const r = await app.apply(plan.text, who(req, s), note, 'config-apply');
      if (r.ok) return sendJson(res, 200, { ok: true, devices: plan.ids, applied: r.applied, version: r.version.id });
      if ('errors' in r) return sendJson(res, 422, { ok: false, errors: r.errors.map((e) => ({ row: null, column: null, message: e.path ? `${e.path}: ${e.message}` : e.message })) });
      sendJson(res, 500, { ok: false, error: `the new configuration failed to start, the previous one is running again: ${r.startError}` });
    }, { command: true });

    const siteDir = (): string | null => app.siteProfileDir();

    // Every loaded Modbus profile, shipped and site (the device form's picker, the tools view),
    // and the site files stored since the start, not loaded until a restart.
    this.route('GET', '/api/profiles', true, (_req, res) => {
      const dir = siteDir();
      const profiles = [...app.profiles.values()]
        .filter((p) => !p.id.startsWith('gpio-'))
        .map((p) => ({
          id: p.id,
          source: profileOrigin(app.profiles, p.id)?.source ?? 'shipped',
          manufacturer: p.manufacturer,
          model: p.model,
          name: p.name,
          transports: p.transports,
          facilities: p.facilities,
          points: p.points.map((x) => ({ id: x.id, name: x.name, unit: x.unit, privacy: x.privacy, type: x.type })),
        }))
        .sort((a, b) => a.id.localeCompare(b.id));
      // Files stored since the start (an upload) are not loaded until the daemon restarts.
      let files: string[] = [];
      try {
        files = dir ? fs.readdirSync(dir).filter((n) => n.endsWith('.yaml') && !n.startsWith('.')) : [];
      } catch {
        /* no folder yet: no site profiles */
      }
      const waiting = files.map((n) => n.replace(/\.yaml$/, '')).filter((id) => !app.profiles.has(id));
      // The device forms' facility choices: the running config's facilities and every type.
      const f = app.gateway.facilities();
      sendJson(res, 200, {
        siteDir: dir,
        profiles,
        notLoaded: waiting,
        facilityTypes: f.types.map((t) => ({ id: t.id, code: t.code, name: t.name })),
        facilities: f.list.map((x) => ({ id: x.facilityId, type: x.type, name: x.name ?? null, houseCode: x.houseCode ?? null, listed: x.listed })),
      });
    });

    this.route('POST', '/api/profiles', true, async (req, res, _p, s) => {
      const body = await readBody(req, ProfileUploadBody, 1024 * 1024);
      const dir = siteDir();
      if (dir === null) throw new HttpError(409, 'this config file lies in the package folder: there is no site profile folder to store into', { reason: 'no-site-dir' });
      const r = uploadProfile(body.yaml, { siteDir: dir, replace: body.replace === true });
      if (!r.ok) {
        app.audit.write({ ...who(req, s), action: 'profile-upload-refused', detail: { reason: r.reason, ...(r.file ? { file: r.file } : {}), errors: r.errors.slice(0, 20) } });
        return sendJson(res, r.reason === 'exists' ? 409 : 422, { ok: false, reason: r.reason, file: r.file ?? null, errors: r.errors });
      }
      app.audit.write({ ...who(req, s), action: 'profile-upload', detail: { id: r.id, file: r.file, replaced: r.replaced, sha256: r.sha256 } });
      sendJson(res, 200, { ok: true, id: r.id, file: r.file, replaced: r.replaced, restartRequired: true });
    }, { command: true });

    this.route('GET', '/api/events', true, (req, res, _p, s) => this.events(req, res, s!));

    this.route('GET', '/api/config', true, (_req, res) => {
      // Notes the system wrote (kind found, restored, rollback; recovered has no user) get their
      // code for the page's language; a note the technician typed is shown as typed.
      const versions = app.configs.versions(app.configText).map((v) => (v.kind || !v.user ? { ...v, noteMsg: identify(v.note) } : v));
      sendJson(res, 200, { file: app.configs.file, text: redactSecrets(app.configText), form: formOf(app.config), entries: entriesOf(app.config), versions, running: versions.find((v) => v.running)?.id ?? null });
    });

    const keptVersion = (id: string): number => {
      const n = Number(id);
      if (!Number.isInteger(n) || !app.configs.versions().some((v) => v.id === n)) throw new HttpError(404, `no kept version ${id}`);
      return n;
    };

    this.route('GET', '/api/config/versions/:id', true, (_req, res, [id]) => {
      const n = keptVersion(id!);
      sendJson(res, 200, { id: n, text: redactSecrets(app.configs.version(n)), running: app.configs.runningId(app.configText) === n });
    });

    // What a rollback to :id would change: the running config against the version.
    this.route('GET', '/api/config/versions/:id/diff', true, (_req, res, [id]) => {
      const n = keptVersion(id!);
      sendJson(res, 200, { from: { running: app.configs.runningId(app.configText) }, to: { version: n }, ...configDiff(app.configText, app.configs.version(n)) });
    });

    const textOf = (b: { text?: string; form?: Record<string, string | number | null>; edit?: ConfigEditT }) => {
      if (b.text !== undefined) return b.text;
      if (b.form !== undefined) return mergeForm(app.configText, b.form);
      try {
        return mergeEdit(app.configText, b.edit!);
      } catch (err) {
        if (err instanceof EditError) throw new HttpError(409, err.message);
        throw err;
      }
    };

    // The bus form's port picker (directory listing only: no port is opened).
    this.route('GET', '/api/serial-ports', true, (_req, res) => sendJson(res, 200, { ports: listSerialPorts() }));

    // "Read now" in the device form, before the device is saved: admin only (every route
    // here is), through the running bus' queue, public values only, audited like try-read.
    this.route('POST', '/api/devices/read-now', true, async (req, res, _p, s) => {
      const body = await readBody(req, ReadNowBody);
      app.audit.write({ ...who(req, s), action: 'device-read-now', detail: body });
      try {
        sendJson(res, 200, withCodes({ points: await app.gateway.readUnsaved(body.bus, body.unitId, body.profile) }));
      } catch (err) {
        if (err instanceof DeviceCommandError) throw new HttpError(409, err.message);
        if (err instanceof ModbusError) return sendJson(res, 200, withCodes({ error: err.message, quality: err.quality }));
        throw err;
      }
    });

    // What an apply would change (a read: no nonce, not audited).
    this.route('POST', '/api/config/diff', true, async (req, res) => {
      const body = await readBody(req, DiffBody, 600 * 1024);
      sendJson(res, 200, { from: { running: app.configs.runningId(app.configText) }, to: { version: null }, ...configDiff(app.configText, textOf(body)) });
    });

    this.route('POST', '/api/config/validate', true, async (req, res) => {
      const v = app.validate(textOf(await readBody(req, ConfigBody, 600 * 1024)));
      sendJson(res, 200, v.ok ? { ok: true, errors: [] } : v);
    });

    this.route('POST', '/api/config', true, async (req, res, _p, s) => {
      const body = await readBody(req, ConfigBody, 600 * 1024);
      const r = await app.apply(textOf(body), who(req, s), body.note ?? '', 'config-apply');
      if (r.ok) return sendJson(res, 200, { ok: true, applied: r.applied, version: r.version.id });
      if ('errors' in r) return sendJson(res, 422, { ok: false, errors: r.errors });
      sendJson(res, 500, { ok: false, error: `the new configuration failed to start, the previous one is running again: ${r.startError}` });
    }, { command: true });

    this.route('POST', '/api/config/rollback', true, async (req, res, _p, s) => {
      const { version, note } = await readBody(req, RollbackBody);
      keptVersion(String(version));
      if (app.configs.runningId(app.configText) === version) throw new HttpError(409, `version ${version} is the running configuration: nothing to roll back`);
      const text = `rollback to version ${version}${note?.trim() ? `: ${note.trim()}` : ''}`;
      const r = await app.apply(app.configs.version(version), who(req, s), text, 'config-rollback', version);
      if (r.ok) return sendJson(res, 200, { ok: true, applied: r.applied, version: r.version.id, rollbackOf: version });
      if ('errors' in r) return sendJson(res, 422, { ok: false, errors: r.errors });
      sendJson(res, 500, { ok: false, error: r.startError });
    }, { command: true });

    // No login: the fingerprint is what any client sees in the handshake anyway.
    this.route('GET', '/api/tls', false, (_req, res) => sendJson(res, 200, { https: this.tls !== null, ...(this.tls ?? {}) }));

    this.diagnosticRoutes(who);

    this.route('GET', '/api/audit', true, (req, res) => {
      const limit = Number(new URL(req.url ?? '', 'http://gateway').searchParams.get('limit') ?? 100);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, 'limit: must be a whole number 1..1000');
      sendJson(res, 200, { entries: app.audit.recent(limit) });
    });
  }

  /** Diagnostics (docs/WEB.md): recent logs, the bundle, restart and "reconnect uplink now". */
  private diagnosticRoutes(who: (req: http.IncomingMessage, s: Session | null) => { user: string; ip: string }): void {
    const app = this.app;
    this.route('GET', '/api/logs', true, (req, res) => {
      const q = Object.fromEntries(new URL(req.url ?? '', 'http://gateway').searchParams);
      const parsed = LogsQuery.safeParse(q);
      if (!parsed.success) throw new HttpError(400, `${parsed.error.issues[0]!.path.join('.') || 'query'}: ${parsed.error.issues[0]!.message}`);
      sendJson(res, 200, recentLogs(app, parsed.data.level));
    });

    this.route('GET', '/api/diagnostics/bundle', true, async (req, res, _p, s) => {
      const b = await diagnosticBundle(app);
      app.audit.write({ ...who(req, s), action: 'diagnostics-bundle', detail: { file: b.name, bytes: Buffer.byteLength(b.body) } });
      res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-disposition': `attachment; filename="${b.name}"`, 'cache-control': 'no-store' }).end(b.body);
    });

    this.route('POST', '/api/system/restart', true, async (req, res, _p, s) => {
      const { note } = await readBody(req, SystemCommandBody);
      const restart = app.restartHandler;
      if (!restart) throw new HttpError(503, 'this daemon was not started by the community-gateway command: it cannot restart itself');
      app.audit.write({ ...who(req, s), action: 'restart', detail: { note: note ?? '' } });
      // The answer first, then the stop: the page learns the restart was taken.
      res.once('finish', () => setImmediate(restart));
      sendJson(res, 202, { ok: true, restarting: true });
    }, { command: true });

    this.route('POST', '/api/uplink/reconnect', true, async (req, res, _p, s) => {
      const { note } = await readBody(req, SystemCommandBody);
      const before = app.gateway.uplink?.state ?? null;
      const r = app.gateway.reconnectUplink();
      if (r === null) throw new HttpError(409, 'this gateway has no uplink');
      app.audit.write({ ...who(req, s), action: 'uplink-reconnect', detail: { before, note: note ?? '' } });
      sendJson(res, 200, { ok: true, before, state: r });
    }, { command: true });
  }

  /** Server-sent events: the latest public reading per point every half second, the
   * overview every two seconds; the stream ends when the session does. */
  private events(req: http.IncomingMessage, res: http.ServerResponse, s: Session): void {
    const mine = this.eventsPerSession.get(s.token) ?? 0;
    if (mine >= MAX_EVENT_CLIENTS_PER_SESSION) throw new HttpError(429, `this login already has ${mine} live pages open: close one`);
    if (this.eventClients.size >= MAX_EVENT_CLIENTS) throw new HttpError(503, 'too many live pages open');
    this.eventsPerSession.set(s.token, mine + 1);
    res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    this.eventClients.add(res);
    const pending = new Map<string, unknown>();
    const off = this.app.onReading((r) => {
      if (r.privacy === 'identifier') return;
      pending.set(`${r.device}/${r.point}`, { device: r.device, point: r.point, ...publicReading(r) });
    });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    let ticks = 0;
    const timer = setInterval(() => {
      if (!this.app.auth.alive(s.token)) {
        send('session', { ended: true });
        return res.end();
      }
      for (const v of pending.values()) send('reading', v);
      pending.clear();
      if (ticks++ % 4 === 0) send('overview', overview(this.app.gateway, this.app.drain.state()));
    }, 500);
    let closed = false;
    const done = () => {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      off();
      this.eventClients.delete(res);
      const n = (this.eventsPerSession.get(s.token) ?? 1) - 1;
      if (n > 0) this.eventsPerSession.set(s.token, n);
      else this.eventsPerSession.delete(s.token);
    };
    req.on('close', done);
    res.on('close', done);
  }
}

/** A path parameter, percent-decoded; a malformed escape is the client's error (400). */
function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new HttpError(400, `malformed percent-escape in the path: ${s.slice(0, 64)}`);
  }
}
