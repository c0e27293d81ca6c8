#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --heap-growing-percent=20
// community-gateway CLI: run the daemon, or check a config file without starting anything.
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG, packageVersion } from './config/paths.js';
import { loadProfileSet } from './config/profiles.js';
import { ConfigError, loadSiteConfig } from './config/site-config.js';
import { resolveStateDir } from './config/state-dir.js';
import { createLogger, logFormat, type LogFormat } from './log.js';
import fs from 'node:fs';
import path from 'node:path';
import { App } from './app.js';
import { SystemdNotifier } from './service/systemd-notify.js';
import { uplinkJsonSchema } from './uplink/contract.js';
import { hashPassword } from './broker/access.js';
import { privacyReport, readLedgerSummary, renderPrivacyReport } from './privacy/privacy-report.js';
import { PlatformConsumer, type ConsumerOptions } from './platform/consumer.js';
import { readPoint, renderRead } from './cli/read-point.js';
import { outboxReport, renderOutbox } from './cli/outbox-report.js';
import { scanCommand } from './cli/scan-bus.js';
import { checkProfile } from './cli/check-profile.js';
import { AuditLog } from './web/audit-log.js';
import { renderVerify, verifyAudit, verifyExitCode } from './web/audit-verify.js';
import { readSecret } from './cli/read-secret.js';
import { resetAdmin } from './cli/reset-admin.js';
import { checkPassword, policyMessage } from './security/password-policy.js';
import { keygenCommand } from './cli/keygen.js';
import { signConfigCommand } from './cli/sign-config.js';
import { signCommandCommand } from './cli/sign-command.js';
import { platformPushCommand } from './cli/platform-push.js';
import { platformMigrateCommand } from './cli/platform-migrate.js';
import { platformReportCommand } from './cli/platform-report.js';

/** `platform migrate`, a sub-command of `platform`. */
const PLATFORM_MIGRATE = `platform migrate --db postgres://USER@HOST:PORT/DB|FILE
      Create or upgrade the consumer's tables (consumers also do it when they start, under a
      lock) and list the schema steps applied. Exit 0 done, 1 the database refused, 2 bad arguments.`;

/** `platform report`, a sub-command of `platform`. */
const PLATFORM_REPORT = `platform report --db postgres://USER@HOST:PORT/DB|FILE --from DATE|TIME --to DATE|TIME
           [--community CODE] [--period day|week] [--format json|csv|html] [--utc-offset +08:00]
           [--rules FILE] [--out FILE]
      The operation evaluation per community, facility and day or week: availability, meals,
      health-station figures as released (suppressed cells stay suppressed), cold-chain
      compliance, alarms and time to clear, data completeness (docs/EVALUATION.md). Dates are
      midnight in --utc-offset (default China time); --to is exclusive. Reads the database
      without changing it. Exit 0 written, 1 the database or rules failed, 2 bad arguments.`;

/** `platform push`, a sub-command of `platform` (its usage is also part of platform's). */
const PLATFORM_PUSH = `platform push --url URL --community CODE [--timeout S] [--ca FILE --cert FILE --key FILE]
           [--username U --password-file FILE] [--client-id ID] [--out FILE] BUNDLE.json
      Publish a signed bundle (sign-config) or command (sign-command) to
      fc/v1/CODE/<gatewayId>/config/set (QoS 1, not retained, expiring with the bundle) and
      wait for the gateway's config/result for its version (default 120 s). Prints the
      result; a diagnostics command also waits for the diagnostic bundle and prints it after
      the result, or writes it to --out FILE (mode 0600). Exit 0 applied, 1 refused or
      rolled back (reason on stderr), 2 bad arguments or bundle, 3 no answer in time.`;

/** Each command's usage; `community-gateway CMD --help` prints its entry. */
const COMMANDS: Record<string, string> = {
  run: `run [--config FILE] [--state-dir DIR] [--log-format auto|json|pretty]
      Run the gateway and its web page. Default config: ./data/site.yaml if the web page has
      saved one, else the embedded demo config (simulated devices, no hardware needed).
      The state folder (admin account, audit log, site secret, the page's TLS key) is
      DIR, else $STATE_DIRECTORY (systemd), else ./data; the config cannot move it.
      Every port is checked before any is opened: a busy one stops the start, named.
      Logs are human lines on a terminal, JSON otherwise (journald, pipes); --log-format
      json|pretty|auto (or LOG_FORMAT) chooses. Stops cleanly on SIGTERM/SIGINT within 5 s.`,
  'check-config': `check-config FILE
      Validate FILE against the schema and the device profiles: the shipped ones and the
      site's own in drivers/ beside FILE. Exit 0 with a summary, or 1 listing every error
      with its path and line.`,
  'check-profile': `check-profile FILE
      Validate one device profile as the daemon loads a site profile (drivers/ beside the
      config file): schema, invariants, file name = id, no clash with a shipped id. Exit 0
      with a one-line summary (id, points, registers), or 1 listing every error.`,
  read: `read --config FILE --device ID (--point P | --register holding|input|coil|discrete --address N [--count N]) [--json]
      Read one point (decoded, scaled, range-checked) or a raw range of a configured device,
      over its own link, once. For bench work on site. A serial port held by the running
      service is locked: use the web page's try-read then. Personal values are withheld.`,
  scan: `scan --config FILE --bus ID [--units 1-247] [--timeout MS] [--json]
      Which unit ids answer on a configured bus, which device profiles (shipped and site) fit
      each, and what Read Device Identification says. Read-only. Units as 1-247 or 1,3,10-20;
      probe timeout default 100 ms (RTU: plus the frame's time on the wire). 247 units at
      9600 baud take about a minute; Ctrl-C prints what was found so far. Progress on
      stderr. A serial port held by the running service is locked: scan from the page then.`,
  outbox: `outbox --config FILE [--json]
      What waits for the platform in the SQLite outbox: items per kind, bytes, the oldest, the
      last seq, and what the cap shed or a full disk dropped. Safe while the daemon runs.`,
  'privacy-report': `privacy-report --config FILE [--json] [--state-dir DIR]
      Every point's privacy class and what leaves the site in which form (for the
      data-protection officer).`,
  platform: `platform --url URL --db postgres://USER@HOST:PORT/DB|FILE [--group G|none] [--client-id ID]
           [--ca FILE --cert FILE --key FILE] [--username U --password P]
      The reference platform consumer: subscribes to $share/<group>/fc/v1/# (or fc/v1/#
      with --group none), validates, de-duplicates on (gatewayId, seq), stores in PostgreSQL
      (several consumers, one database) or a SQLite file (one laptop); keeps every status,
      every config/result and the facility register (each gateway's newest inventory).
      A message is acknowledged once committed; while the database is away it waits.
    ${PLATFORM_MIGRATE}
    ${PLATFORM_REPORT}
    ${PLATFORM_PUSH}`,
  keygen: `keygen --out FILE [--force]
      Make an Ed25519 key pair for signing remote-configuration bundles: the private key
      goes to FILE (PKCS#8 PEM, mode 0600; an existing FILE is kept unless --force), and
      the line for the site config is printed: remote: { trustedKeys: [...] } # keyId.`,
  'sign-config': `sign-config --key KEYFILE --gateway ID --version N (--base-file RUNNING.yaml | --base sha256:... | --override)
           [--expires 24h|ISO] [--note TEXT] [--out FILE] CONFIG.yaml [PROFILE.yaml...]
      Make a signed bundle of a site config and site profiles for one gateway (docs/UPLINK.md).
      CONFIG is checked as check-config checks it and not signed if it would not load.
      The base is the config it replaces (the running file, or status.config.hash);
      --override applies it whatever runs there. Version: higher than any applied on that
      gateway. Prints the bundle JSON (or writes FILE, mode 0600), a summary on stderr.`,
  'sign-command': `sign-command --key KEYFILE --gateway ID --version N [--expires 1h|ISO] [--note TEXT] [--out FILE]
           inventory|status|diagnostics|restart
      Make a signed remote command for one gateway (docs/UPLINK.md "Remote commands"): send a
      fresh inventory and status, a status, the page's diagnostic bundle (redacted) on
      .../diagnostics, or restart. Same keys and version counter as sign-config: the version
      must be higher than any bundle or command that gateway took. Default expiry 1 h.
      Prints the command JSON (or writes FILE), a summary on stderr; push it with platform push.`,
  audit: `audit verify [--state-dir DIR | FILE] [--json]
      Walk the audit log's hash chain over every file (rotated ones oldest first): OK with the
      count and date range, or each file:line where it breaks (edited, deleted, reordered
      lines). Exit 0 intact, 1 broken, 3 intact apart from lines torn by a power cut.
      DIR holds audit.log (default: the state folder, as for run: $STATE_DIRECTORY, else ./data).
    audit list [--state-dir DIR | FILE] [--limit N] [--json]
      The latest entries, newest first (default 50).`,
  schema: `schema
      Print the uplink contract as JSON Schema.`,
  'hash-password': `hash-password [--username U]
      Read a password (without echo on a terminal, asked twice; or stdin when piped), check
      it against the password policy (docs/WEB.md), print its argon2id hash for
      localBroker.accounts[].passwordHash. With --username the password must not contain it.`,
  'reset-admin': `reset-admin [--state-dir DIR] [--delete]
      On the box, as the service user or root: set a new web admin password (read without
      echo, policy applied; the second factor is removed), or with --delete remove
      web-admin.json so the page asks for setup again (new setup code in the daemon log).
      The state folder is found as run finds it ($STATE_DIRECTORY, which the installed
      command sets, else ./data). A running daemon takes the change up on its next request and ends every session;
      no restart needed. Written to the audit log.`,
};

const HELP = `community-gateway ${packageVersion()}

Usage: community-gateway COMMAND [options]     (COMMAND --help for one command)

${Object.values(COMMANDS)
  .map((c) => `  community-gateway ${c}`)
  .join('\n\n')}

  community-gateway --help | --version

Environment: LOG_LEVEL (fatal..trace) overrides the config's log.level; LOG_FORMAT
(auto|json|pretty, default auto: pretty on a terminal, JSON otherwise) as --log-format.
`;

/** Longest a clean stop may take before the process exits anyway (issue: within 5 s). */
const STOP_DEADLINE_MS = 4500;
/** Exit code of a restart asked from the page: not 0, so that a unit with Restart=on-failure
 * restarts too (ours has Restart=always); EX_TEMPFAIL from sysexits.h. */
const RESTART_EXIT_CODE = 75;

async function main(argv: string[]): Promise<number> {
  // These parse their own options: sign-config's --version N is not the global --version.
  if (argv[0] === 'keygen') return keygenCommand(argv.slice(1), COMMANDS.keygen!);
  if (argv[0] === 'sign-config') return signConfigCommand(argv.slice(1), COMMANDS['sign-config']!);
  if (argv[0] === 'sign-command') return signCommandCommand(argv.slice(1), COMMANDS['sign-command']!);
  if (argv[0] === 'platform' && argv[1] === 'push') return platformPushCommand(argv.slice(2), PLATFORM_PUSH);
  if (argv[0] === 'platform' && argv[1] === 'migrate') return platformMigrateCommand(argv.slice(2), PLATFORM_MIGRATE);
  if (argv[0] === 'platform' && argv[1] === 'report') return platformReportCommand(argv.slice(2), PLATFORM_REPORT);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
      url: { type: 'string' },
      db: { type: 'string' },
      group: { type: 'string' },
      'client-id': { type: 'string' },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      username: { type: 'string' },
      password: { type: 'string' },
      json: { type: 'boolean' },
      device: { type: 'string' },
      point: { type: 'string' },
      register: { type: 'string' },
      address: { type: 'string' },
      count: { type: 'string' },
      'state-dir': { type: 'string' },
      limit: { type: 'string' },
      delete: { type: 'boolean' },
      bus: { type: 'string' },
      units: { type: 'string' },
      timeout: { type: 'string' },
      'log-format': { type: 'string' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (values.help && cmd && COMMANDS[cmd]) {
    process.stdout.write(`Usage: community-gateway ${COMMANDS[cmd]}\n`);
    return 0;
  }
  if (values.help || !cmd) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  // The log format of the long-running commands (run, platform); a bad one stops them at once.
  let format: LogFormat = 'json';
  if (cmd === 'run' || cmd === 'platform') {
    try {
      format = logFormat(values['log-format']);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
  }
  switch (cmd) {
    case 'check-config':
      return checkConfig(rest[0] ?? values.config);
    case 'check-profile': {
      const file = rest[0];
      if (!file) {
        process.stderr.write(`check-profile needs a FILE\n\nUsage: community-gateway ${COMMANDS['check-profile']}\n`);
        return 2;
      }
      const r = checkProfile(file);
      (r.code === 0 ? process.stdout : process.stderr).write(r.text);
      return r.code;
    }
    case 'run': {
      const { file, editable } = daemonConfigFile(values.config ?? rest[0]);
      return run(file, editable, resolveStateDir(values['state-dir']), format);
    }
    case 'reset-admin':
      return resetAdminCommand(values['state-dir'], values.delete === true);
    case 'privacy-report': {
      const file = values.config ?? rest[0];
      if (!file) {
        process.stderr.write('privacy-report needs --config FILE\n');
        return 2;
      }
      try {
        const profiles = loadProfileSet({ configFile: file });
        const config = loadSiteConfig(file, profiles);
        const report = privacyReport(config, profiles, readLedgerSummary(config, resolveStateDir(values['state-dir'])));
        process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderPrivacyReport(report));
        return 0;
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'hash-password': {
      let pw: string;
      try {
        pw = await readSecret('Password', true);
      } catch (err) {
        process.stderr.write(`hash-password: ${(err as Error).message}\n`);
        return 1;
      }
      const problems = checkPassword(pw, { user: values.username });
      if (problems.length) {
        process.stderr.write(`hash-password: ${policyMessage(problems)}\n`);
        return 1;
      }
      process.stdout.write(`${await hashPassword(pw)}\n`);
      return 0;
    }
    case 'read':
      return read(values);
    case 'scan':
      return scanCommand(values, COMMANDS.scan!);
    case 'outbox': {
      const file = values.config ?? rest[0];
      if (!file) {
        process.stderr.write(`outbox needs --config FILE\n\nUsage: community-gateway ${COMMANDS.outbox}\n`);
        return 2;
      }
      try {
        const profiles = loadProfileSet({ configFile: file });
        const r = outboxReport(loadSiteConfig(file, profiles).storage.path);
        process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : renderOutbox(r));
        return 0;
      } catch (err) {
        process.stderr.write(`${(err as Error).message}\n`);
        return 1;
      }
    }
    case 'audit':
      return audit(rest, values);
    case 'schema':
      process.stdout.write(`${JSON.stringify(uplinkJsonSchema(), null, 2)}\n`);
      return 0;
    case 'platform':
      if (!values.url || !values.db) {
        process.stderr.write('platform needs --url mqtt://host:port and --db postgres://... or FILE\n');
        return 2;
      }
      return platform(format, {
        url: values.url,
        db: values.db,
        group: values.group,
        clientId: values['client-id'],
        caFile: values.ca,
        certFile: values.cert,
        keyFile: values.key,
        username: values.username,
        password: values.password,
      });
    default:
      process.stderr.write(`unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

function audit(rest: string[], v: { config?: string; 'state-dir'?: string; limit?: string; json?: boolean }): number {
  const [sub, target] = rest;
  if (sub !== 'verify' && sub !== 'list') {
    process.stderr.write(`audit needs verify or list\n\nUsage: community-gateway ${COMMANDS.audit}\n`);
    return 2;
  }
  try {
    // The state folder, resolved as `run` resolves it (the installed command sets
    // STATE_DIRECTORY as systemd does for the service).
    const where = target ?? resolveStateDir(v['state-dir']);
    if (sub === 'verify') {
      const r = verifyAudit(where);
      process.stdout.write(v.json ? `${JSON.stringify(r, null, 2)}\n` : renderVerify(r));
      return verifyExitCode(r);
    }
    const limit = v.limit === undefined ? 50 : Number(v.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new Error('--limit must be a whole number >= 1');
    const file = fs.existsSync(where) && fs.statSync(where).isDirectory() ? path.join(where, 'audit.log') : where;
    const entries = new AuditLog(file).recent(limit);
    if (v.json) process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
    else for (const e of entries) process.stdout.write(`${new Date(e.ts).toISOString()}  ${e.user || '-'}  ${e.ip || '-'}  ${e.action}${e.detail ? `  ${JSON.stringify(e.detail)}` : ''}${e.suppressed ? `  (+${e.suppressed.count} suppressed)` : ''}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`audit ${sub}: ${(err as Error).message}\n`);
    return 2;
  }
}

/** The config file `run` uses: the one given, else ./data/site.yaml if the web page has saved one, else the embedded default. */
export function daemonConfigFile(explicit: string | undefined): { file: string; editable: string } {
  if (explicit) return { file: explicit, editable: explicit };
  // The embedded default is part of the package (read-only once installed): a config the
  // technician applies from the web page goes to ./data/site.yaml and wins from then on.
  const saved = path.resolve('data', 'site.yaml');
  return fs.existsSync(saved) ? { file: saved, editable: saved } : { file: DEFAULT_CONFIG, editable: saved };
}

async function resetAdminCommand(stateDirOpt: string | undefined, del: boolean): Promise<number> {
  // The state folder as `run` resolves it: the config cannot move it (src/config/state-dir.ts).
  const stateDir = resolveStateDir(stateDirOpt);
  try {
    const password = del ? undefined : await readSecret('New web admin password', true);
    const r = await resetAdmin(stateDir, { delete: del, password });
    process.stdout.write(
      r.mode === 'delete'
        ? `${r.file}: removed. The page asks for setup again; the setup code is in the daemon log (journalctl -u community-gateway).\n`
        : `${r.file}: new admin password set${r.hadSecondFactor ? ' (the second factor was removed: enrol it again from the page)' : ''}.\n`,
    );
    process.stdout.write('A running daemon takes this up on its next request and ends every session; no restart needed.\n');
    return 0;
  } catch (err) {
    process.stderr.write(`reset-admin: ${(err as Error).message}\n`);
    return 1;
  }
}

async function read(v: { config?: string; device?: string; point?: string; register?: string; address?: string; count?: string; json?: boolean }): Promise<number> {
  if (!v.config || !v.device) {
    process.stderr.write(`read needs --config FILE and --device ID\n\nUsage: community-gateway ${COMMANDS.read}\n`);
    return 2;
  }
  const registers = ['holding', 'input', 'coil', 'discrete'] as const;
  if (v.register !== undefined && !registers.includes(v.register as never)) {
    process.stderr.write(`--register must be one of ${registers.join(', ')}\n`);
    return 2;
  }
  const int = (name: string, s: string | undefined, lo: number, hi: number): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name} must be a whole number ${lo}..${hi}`);
    return n;
  };
  try {
    const profiles = loadProfileSet({ configFile: v.config });
    const config = loadSiteConfig(v.config, profiles);
    const out = await readPoint(
      config,
      profiles,
      { device: v.device, point: v.point, register: v.register as (typeof registers)[number] | undefined, address: int('address', v.address, 0, 65535), count: int('count', v.count, 1, 125) },
      createLogger('warn'),
    );
    process.stdout.write(v.json ? `${JSON.stringify(out)}\n` : renderRead(out));
    return 0;
  } catch (err) {
    process.stderr.write(`read: ${(err as Error).message}\n`);
    return 1;
  }
}

function checkConfig(file: string | undefined): number {
  if (!file) {
    process.stderr.write('check-config needs a FILE\n');
    return 2;
  }
  try {
    const profiles = loadProfileSet({ configFile: file });
    // A serial path missing here is a warning: the file may be checked on another machine.
    const c = loadSiteConfig(file, profiles, (w) => process.stderr.write(`${file}: warning: ${w}\n`));
    const sim = c.simulator.enabled ? ', simulator on' : '';
    process.stdout.write(`${file}: OK: gateway ${c.site.gatewayId} (community ${c.site.communityCode}), ${c.buses.length} bus(es), ${c.devices.length} device(s)${c.gpio.length ? `, ${c.gpio.length} GPIO input(s)` : ''}${sim}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `error: ${(err as Error).message}`}\n`);
    return 1;
  }
}

async function run(file: string, editableFile: string, stateDir: string, format: LogFormat): Promise<number> {
  // Every file the daemon creates (database, audit log, config versions, keys) is its own
  // alone, also when started by hand under umask 022 (issue 12, finding 10).
  process.umask(0o077);
  let gateway: App;
  let log = createLogger(undefined, { format });
  try {
    // Site profiles sit beside the file the daemon keeps its config in: for the embedded
    // default that is ./data/ (where the page saves), so they still apply after a save.
    const profiles = loadProfileSet({ configFile: editableFile });
    const warnings: string[] = [];
    const config = loadSiteConfig(file, profiles, (w) => warnings.push(w));
    log = createLogger(config.log?.level, { format });
    // A serial adapter missing at start is logged, not fatal: its bus reports it and connects once it is plugged in.
    for (const w of warnings) log.warn({ config: file }, w);
    log.info({ config: file, version: packageVersion(), siteProfileDir: profiles.siteDir, siteProfiles: profiles.ids('site') }, 'starting');
    gateway = new App(config, fs.readFileSync(file, 'utf8'), { configFile: file, editableFile, profiles, log, stateDir });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  // Signals are taken from the first moment: a SIGTERM during start-up stops cleanly once the
  // start has finished (or failed), instead of killing a half-started daemon.
  let signalled: string | null = null;
  let onSignal: (signal: string) => void = (signal) => {
    signalled = signal;
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  // Under systemd (Type=notify): READY once everything listens, then watchdog pings only
  // while the gateway's loops make progress, so a stuck daemon is restarted.
  const notifier = new SystemdNotifier(process.env, log);
  try {
    await gateway.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'start-up failed');
    process.stderr.write(`start-up failed: ${(err as Error).message}\n`);
    notifier.close();
    return 1;
  }
  const c = gateway.config;
  notifier.ready(`gateway ${c.site.gatewayId}: ${c.devices.length} devices, ${c.gpio.length} GPIO inputs, web on port ${gateway.web.port}`);
  notifier.startWatchdog(() => gateway.gateway.liveness());
  return new Promise<number>((resolve) => {
    let stopping = false;
    // `code`: RESTART_EXIT_CODE for a restart asked from the page (systemd's Restart= starts
    // the daemon again; under npm start it just stops).
    const stop = (signal: string, code = 0) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping');
      notifier.stopping();
      const deadline = setTimeout(() => {
        log.error('clean stop took too long, exiting');
        resolve(1);
      }, STOP_DEADLINE_MS);
      gateway.stop().then(
        () => {
          clearTimeout(deadline);
          notifier.close();
          resolve(code);
        },
        (err: Error) => {
          clearTimeout(deadline);
          log.error({ err: err.message }, 'stop failed');
          resolve(1);
        },
      );
    };
    onSignal = stop;
    gateway.restartHandler = () => stop('restart', RESTART_EXIT_CODE);
    if (signalled) stop(signalled);
  });
}

async function platform(format: LogFormat, opts: ConsumerOptions): Promise<number> {
  const log = createLogger(undefined, { format });
  const consumer = new PlatformConsumer(opts, log);
  try {
    await consumer.start();
  } catch (err) {
    process.stderr.write(`platform consumer failed: ${(err as Error).message}\n`);
    return 1;
  }
  const timer = setInterval(() => log.info(consumer.stats, 'platform consumer'), 60_000);
  return new Promise<number>((resolve) => {
    const stop = () => {
      clearInterval(timer);
      log.info(consumer.stats, 'platform consumer stopping');
      void consumer.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Flush stdout (logs) and leave; lingering handles must not hold a stopped daemon.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  },
);
