// Test PKI generated with the `openssl` CLI (OpenSSL 3): a CA, a server cert for 127.0.0.1/localhost,
// a client cert (CN gw-test) for mutual TLS, and a rogue CA + client cert the broker must refuse.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './peers.js';

export interface Certs {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  rogueCaCert: string;
  rogueClientCert: string;
  rogueClientKey: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr?.toString() ?? err.message}`);
  }
}

/** EC P-256 key in PKCS#8 PEM, mode 0600. */
function genKey(file: string, cwd: string): void {
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], cwd);
  fs.chmodSync(path.join(cwd, file), 0o600);
}

function makeCa(name: string, cn: string, cwd: string): { cert: string; key: string } {
  const key = `${name}.key`;
  const cert = `${name}.crt`;
  genKey(key, cwd);
  openssl(
    [
      'req', '-x509', '-new', '-key', key, '-out', cert, '-days', '1', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    cwd,
  );
  fs.chmodSync(path.join(cwd, cert), 0o644);
  return { cert, key };
}

function issue(name: string, cn: string, ext: string, ca: { cert: string; key: string }, cwd: string): { cert: string; key: string } {
  const key = `${name}.key`;
  const csr = `${name}.csr`;
  const cert = `${name}.crt`;
  const extFile = `${name}.ext`;
  genKey(key, cwd);
  openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${cn}`], cwd);
  fs.writeFileSync(path.join(cwd, extFile), ext);
  openssl(
    ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', cert, '-days', '1', '-sha256', '-extfile', extFile],
    cwd,
  );
  fs.chmodSync(path.join(cwd, cert), 0o644);
  return { cert, key };
}

const SERVER_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth',
  'subjectAltName=DNS:localhost,IP:127.0.0.1',
  '',
].join('\n');

const CLIENT_EXT = [
  'basicConstraints=critical,CA:FALSE',
  'keyUsage=critical,digitalSignature',
  'extendedKeyUsage=clientAuth',
  '',
].join('\n');

/** Generate a fresh test PKI in `dir` (default: a new temp dir). All paths returned are absolute. */
export function makeCerts(dir: string = tmpDir('cgw-certs-')): Certs {
  fs.mkdirSync(dir, { recursive: true });
  const d = path.resolve(dir);
  const ca = makeCa('ca', 'cgw test CA', d);
  const server = issue('server', 'localhost', SERVER_EXT, ca, d);
  const client = issue('client', 'gw-test', CLIENT_EXT, ca, d);
  const rogueCa = makeCa('rogue-ca', 'cgw rogue CA', d);
  const rogueClient = issue('rogue-client', 'gw-test', CLIENT_EXT, rogueCa, d);
  const abs = (f: string) => path.join(d, f);
  return {
    dir: d,
    caCert: abs(ca.cert),
    caKey: abs(ca.key),
    serverCert: abs(server.cert),
    serverKey: abs(server.key),
    clientCert: abs(client.cert),
    clientKey: abs(client.key),
    rogueCaCert: abs(rogueCa.cert),
    rogueClientCert: abs(rogueClient.cert),
    rogueClientKey: abs(rogueClient.key),
  };
}

const asn1 = (d: Date) => d.toISOString().replace(/[-:T]/g, '').replace(/\.\d{3}Z$/, 'Z');

/** A server cert for 127.0.0.1/localhost from `certs`' CA valid only from `start` to `end`
 * (a broker's cert as a box with a wrong clock sees it). OpenSSL 3.0's x509 cannot set
 * notBefore, so this uses `openssl ca -startdate -enddate` with a throwaway CA database. */
export function datedServerCert(certs: Certs, name: string, start: Date, end: Date): { cert: string; key: string } {
  const d = certs.dir;
  const db = path.join(d, `${name}-db`);
  fs.mkdirSync(db, { recursive: true });
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'serial'), '1000\n');
  const cnf = `${name}-ca.cnf`;
  fs.writeFileSync(
    path.join(d, cnf),
    ['[ca]', 'default_ca = c', '[c]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`, 'default_md = sha256', 'policy = p', 'unique_subject = no', '[p]', 'commonName = supplied', ''].join('\n'),
  );
  const key = `${name}.key`;
  const csr = `${name}.csr`;
  const cert = `${name}.crt`;
  fs.writeFileSync(path.join(d, `${name}.ext`), SERVER_EXT);
  genKey(key, d);
  openssl(['req', '-new', '-key', key, '-out', csr, '-subj', '/CN=localhost'], d);
  openssl(['ca', '-batch', '-notext', '-config', cnf, '-cert', certs.caCert, '-keyfile', certs.caKey, '-in', csr, '-out', cert, '-startdate', asn1(start), '-enddate', asn1(end), '-extfile', `${name}.ext`], d);
  fs.chmodSync(path.join(d, cert), 0o644);
  return { cert: path.join(d, cert), key: path.join(d, key) };
}
