// Secrets inside a site config (the uplink password, the local broker's password hashes) never
// leave the box through the web page and are never kept in config versions (issue 12, finding
// 11). The page sees a placeholder; a text sent back with the placeholder keeps the value the
// running config has, and a kept version (stored redacted) restores with today's secrets.
// Values are replaced at their exact source range, so comments and layout stay as written.
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';

export const REDACTED = '(secret kept on the box)';

/** Config paths that hold secrets ("uplink.password", "localBroker.accounts[2].passwordHash"). */
export function isSecretPath(path: string): boolean {
  return path === 'uplink.password' || /^localBroker\.accounts\[\d+\]\.passwordHash$/.test(path);
}

interface SecretNode {
  /** Config path, for error messages. */
  path: string;
  /** What identifies the secret across texts: accounts by user name, not by position. */
  key: string;
  node: Node;
}

function secretNodes(doc: Document): SecretNode[] {
  const out: SecretNode[] = [];
  const uplink = doc.get('uplink', true);
  if (isMap(uplink)) {
    const pw = uplink.get('password', true);
    if (isScalar(pw)) out.push({ path: 'uplink.password', key: 'uplink.password', node: pw });
  }
  const broker = doc.get('localBroker', true);
  const accounts = isMap(broker) ? broker.get('accounts', true) : undefined;
  if (isSeq(accounts)) {
    accounts.items.forEach((a, i) => {
      if (!isMap(a)) return;
      const hash = a.get('passwordHash', true);
      if (isScalar(hash)) out.push({ path: `localBroker.accounts[${i}].passwordHash`, key: `account:${String(a.get('username'))}`, node: hash });
    });
  }
  return out;
}

/** `text` with `values` put at the nodes' source ranges (JSON strings are valid YAML scalars). */
function replaceAt(text: string, edits: { node: Node; value: string }[]): string {
  let out = text;
  const ordered = edits.filter((e) => e.node.range).sort((a, b) => b.node.range![0] - a.node.range![0]);
  for (const e of ordered) {
    const [start, end] = e.node.range!;
    out = out.slice(0, start) + JSON.stringify(e.value) + out.slice(end);
  }
  return out;
}

function parse(text: string): Document | null {
  const doc = parseDocument(text, { uniqueKeys: false });
  return doc.errors.length ? null : doc;
}

/** The text with every secret replaced by REDACTED. A text YAML cannot parse is withheld
 * whole: its secrets cannot be found in it. */
export function redactSecrets(text: string): string {
  const doc = parse(text);
  if (!doc) return '# (this text is not valid YAML; it is not shown because it may hold secrets)\n';
  return replaceAt(
    text,
    secretNodes(doc)
      .filter((s) => isScalar(s.node) && s.node.value !== REDACTED)
      .map((s) => ({ node: s.node, value: REDACTED })),
  );
}

/** `text` with each REDACTED placeholder replaced by the same secret of `current` (the running
 * config's text). A placeholder with nothing to restore is an error naming its path. */
export function restoreSecrets(text: string, current: string): { ok: true; text: string } | { ok: false; errors: { path: string; message: string }[] } {
  const doc = parse(text);
  if (!doc) return { ok: true, text }; // validation reports the YAML error itself
  const placeholders = secretNodes(doc).filter((s) => isScalar(s.node) && s.node.value === REDACTED);
  if (!placeholders.length) return { ok: true, text };
  const cur = parse(current);
  const known = new Map((cur ? secretNodes(cur) : []).map((s) => [s.key, isScalar(s.node) ? s.node.value : undefined]));
  const errors: { path: string; message: string }[] = [];
  const edits: { node: Node; value: string }[] = [];
  for (const p of placeholders) {
    const v = known.get(p.key);
    if (typeof v === 'string' && v !== REDACTED) edits.push({ node: p.node, value: v });
    else errors.push({ path: p.path, message: `is "${REDACTED}" but the running config has no such secret to keep: enter the value` });
  }
  return errors.length ? { ok: false, errors } : { ok: true, text: replaceAt(text, edits) };
}
