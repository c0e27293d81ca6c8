// The page's diagnostic bundle (src/web/diagnostics.ts: secrets redacted, no personal or
// identifier value) cut into DiagnosticsMessage parts for fc/v1/<cc>/<gw>/diagnostics, the
// answer to a `diagnostics` command (docs/UPLINK.md "Remote commands"). Each part fits the
// uplink's maxMessageBytes (what the platform broker takes); the whole is capped at 4 MiB and
// 256 parts, the oldest log records left out first when it is larger (a 4G link pays for it).
import { CONTRACT_VERSION, DiagnosticsMessage } from '../uplink/contract.js';

export const DIAGNOSTICS_MAX_BYTES = 4 * 1024 * 1024;
export const DIAGNOSTICS_MAX_PARTS = 256;
/** Room for the envelope around `data` in each part. */
const ENVELOPE_BYTES = 600;

export interface DiagnosticsTarget {
  gatewayId: string;
  communityCode: string;
}

/** The parts, validated against the contract. Throws when even without log records the bundle
 * does not fit (a config file near its 512 KiB limit with small messages). */
export function diagnosticsParts(bundle: { name: string; body: string }, id: DiagnosticsTarget, version: number, maxMessageBytes: number, now = Date.now()): DiagnosticsMessage[] {
  const room = Math.max(256, maxMessageBytes - ENVELOPE_BYTES - Buffer.byteLength(bundle.name) - id.gatewayId.length);
  let body = bundle.body;
  let trimmed = 0;
  let doc: { logs?: unknown[] } | null = null;
  for (;;) {
    const bytes = Buffer.byteLength(body, 'utf8');
    const chunks = bytes <= DIAGNOSTICS_MAX_BYTES ? split(body, room) : null;
    if (chunks && chunks.length <= DIAGNOSTICS_MAX_PARTS) {
      return chunks.map((data, i) =>
        DiagnosticsMessage.parse({ v: CONTRACT_VERSION, gatewayId: id.gatewayId, communityCode: id.communityCode, kind: 'diagnostics', ts: now, version, name: bundle.name, part: i + 1, parts: chunks.length, bytes, trimmed, data }),
      );
    }
    // Too large: leave out the oldest tenth of the log records (at least one) and measure again.
    doc ??= JSON.parse(bundle.body) as { logs?: unknown[] };
    const logs = doc.logs ?? [];
    if (logs.length === 0) throw new Error(`the diagnostic bundle is ${bytes} bytes even without log records: more than ${DIAGNOSTICS_MAX_BYTES} bytes or ${DIAGNOSTICS_MAX_PARTS} parts of ${maxMessageBytes} bytes (uplink.maxMessageBytes)`);
    const drop = Math.max(1, Math.ceil(logs.length / 10));
    doc.logs = logs.slice(drop);
    trimmed += drop;
    body = JSON.stringify(doc, null, 1);
  }
}

/** `text` in pieces whose JSON string form is at most `room` bytes, never between the two
 * halves of a surrogate pair. */
function split(text: string, room: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    let n = Math.min(text.length - i, room);
    for (;;) {
      if (n > 1 && n < text.length - i && isHigh(text.charCodeAt(i + n - 1))) n--;
      const size = Buffer.byteLength(JSON.stringify(text.slice(i, i + n)), 'utf8');
      if (size <= room || n <= 1) break;
      n = Math.max(1, Math.floor((n * room) / size) - 1);
    }
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;
