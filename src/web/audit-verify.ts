// `community-gateway audit verify`: walks the audit log's hash chain over every file (rotated
// ones oldest first, then the current one) and says either that it is intact, with the count
// and date range, or at which file:line it breaks and how (docs/WEB.md "Audit log").
//
// What counts as what:
// - break (exit 1): a line whose `prev` is not the hash of the line before it (that line was
//   edited, or lines were removed or reordered), a gap or step back in `seq` (deleted or
//   reordered lines), a chain that starts after seq 1 with no retention note for the missing
//   files, a line without chain fields after the chain began.
// - torn (exit 3 if nothing else is wrong): a line that is not JSON, e.g. the half line a
//   power cut leaves. It is told apart from tampering by the line after it: that one must
//   chain to the line before the torn one (the daemon, on its next start, chains to the last
//   complete line). A torn final line without a newline is the "torn tail (power cut?)". A
//   tampered last line is only found against a chain head kept elsewhere (the printed head).
import fs from 'node:fs';
import path from 'node:path';
import { GENESIS, lineHash, parseChained, parseEntry, rotatedFiles } from './audit-log.js';

export interface AuditIssue {
  file: string;
  line: number;
  kind: 'edited-or-reordered' | 'deleted' | 'out-of-order' | 'unchained' | 'missing-start' | 'torn' | 'torn-tail';
  message: string;
}

export interface AuditVerifyResult {
  ok: boolean;
  files: string[];
  entries: number;
  /** Lines from before the chain existed (no seq/prev): shown, not verifiable. */
  legacy: number;
  firstSeq: number | null;
  firstTs: number | null;
  lastTs: number | null;
  head: { seq: number; hash: string } | null;
  /** The chain starts after seq 1 because older files were deleted by the retention. */
  startNote: string | null;
  breaks: AuditIssue[];
  torn: AuditIssue[];
}

const MAX_ISSUES = 50;

/** `target`: the state directory (holds audit.log) or the current log file itself. */
export function verifyAudit(target: string): AuditVerifyResult {
  const file = fs.existsSync(target) && fs.statSync(target).isDirectory() ? path.join(target, 'audit.log') : target;
  const files = [...rotatedFiles(file), ...(fs.existsSync(file) ? [file] : [])];
  const r: AuditVerifyResult = { ok: true, files, entries: 0, legacy: 0, firstSeq: null, firstTs: null, lastTs: null, head: null, startNote: null, breaks: [], torn: [] };
  if (!files.length) throw new Error(`no audit log at ${file}`);
  let prev: { seq: number; hash: string; where: string } | null = null;
  let legacyHash: string | null = null;
  let start: { seq: number; file: string; line: number } | null = null;
  const deletedUpTo = new Map<number, string>(); // lastSeq of a file the retention deleted -> where noted
  const brk = (i: AuditIssue) => r.breaks.length < MAX_ISSUES && r.breaks.push(i);

  for (const f of files) {
    const name = path.basename(f);
    const buf = fs.readFileSync(f);
    let pos = 0;
    let lineNo = 0;
    while (pos < buf.length) {
      lineNo++;
      const nl = buf.indexOf(0x0a, pos);
      const raw = buf.subarray(pos, nl < 0 ? buf.length : nl);
      pos = nl < 0 ? buf.length : nl + 1;
      const text = raw.toString('utf8');
      const where = `${name}:${lineNo}`;
      if (nl < 0) {
        r.torn.push({ file: name, line: lineNo, kind: 'torn-tail', message: `${where}: torn tail (power cut?): ${raw.length} bytes without a newline, not a complete entry${seqHint(text)}` });
        continue;
      }
      const entry = parseEntry(text);
      if (!entry) {
        // Not an entry: torn by a power cut if the next line chains over it (checked there).
        r.torn.push({ file: name, line: lineNo, kind: 'torn', message: `${where}: not a complete entry (torn by a power cut?)${seqHint(text)}; the next line must chain to the line before it` });
        continue;
      }
      const c = parseChained(text);
      const hash = lineHash(raw);
      if (!c) {
        if (prev || start) brk({ file: name, line: lineNo, kind: 'unchained', message: `${where}: a line without seq/prev inside the chain (inserted by hand?)` });
        else {
          r.legacy++;
          legacyHash = hash;
        }
        continue;
      }
      if (!prev) {
        start = { seq: c.seq, file: name, line: lineNo };
        r.firstSeq = c.seq;
        const expected = legacyHash ?? GENESIS;
        if (c.seq === 1 && c.prev !== expected) brk({ file: name, line: lineNo, kind: 'edited-or-reordered', message: `${where}: the first line does not chain to ${legacyHash ? 'the last line before the chain' : 'the genesis value'}` });
      } else if (c.seq !== prev.seq + 1) {
        if (c.seq > prev.seq + 1) brk({ file: name, line: lineNo, kind: 'deleted', message: `${where}: seq ${c.seq} follows ${prev.seq} (${prev.where}): ${c.seq - prev.seq - 1} line(s) deleted before this one` });
        else brk({ file: name, line: lineNo, kind: 'out-of-order', message: `${where}: seq ${c.seq} follows ${prev.seq} (${prev.where}): lines reordered or repeated` });
      } else if (c.prev !== prev.hash) {
        brk({ file: name, line: lineNo, kind: 'edited-or-reordered', message: `${where}: prev does not match the hash of ${prev.where}: that line was altered (or replaced)` });
      }
      if (c.action === 'audit-retention-delete' && typeof c.detail?.['lastSeq'] === 'number') deletedUpTo.set(c.detail['lastSeq'], where);
      prev = { seq: c.seq, hash, where };
      r.entries++;
      r.firstTs ??= c.ts;
      r.lastTs = c.ts;
    }
  }
  if (start && start.seq !== 1) {
    const note = deletedUpTo.get(start.seq - 1);
    if (note) r.startNote = `the chain starts at seq ${start.seq}: older files were deleted by the retention (noted at ${note})`;
    else brk({ file: start.file, line: start.line, kind: 'missing-start', message: `${start.file}:${start.line}: the chain starts at seq ${start.seq}: lines 1..${start.seq - 1} are missing and no retention note accounts for them` });
  }
  if (prev) r.head = { seq: prev.seq, hash: prev.hash };
  r.ok = r.breaks.length === 0;
  return r;
}

function seqHint(text: string): string {
  const m = /^\{"seq":(\d+)/.exec(text);
  return m ? ` (it was seq ${m[1]})` : '';
}

/** 0 intact, 1 broken, 3 intact apart from torn lines (power cut). */
export function verifyExitCode(r: AuditVerifyResult): number {
  if (!r.ok) return 1;
  return r.torn.length ? 3 : 0;
}

export function renderVerify(r: AuditVerifyResult): string {
  const iso = (t: number | null) => (t === null ? '-' : new Date(t).toISOString());
  const out: string[] = [];
  out.push(`${r.ok ? 'OK' : 'BROKEN'}: ${r.entries} chained entries in ${r.files.length} file(s), ${iso(r.firstTs)} .. ${iso(r.lastTs)}`);
  if (r.legacy) out.push(`  ${r.legacy} line(s) from before the chain (not verifiable)`);
  if (r.startNote) out.push(`  ${r.startNote}`);
  for (const b of r.breaks) out.push(`  BREAK ${b.message}`);
  for (const t of r.torn) out.push(`  TORN  ${t.message}`);
  if (r.head) out.push(`  head: seq ${r.head.seq} sha256 ${r.head.hash} (compare with a copy kept off the box: a chain proves order, not that the newest lines are all there)`);
  return `${out.join('\n')}\n`;
}
