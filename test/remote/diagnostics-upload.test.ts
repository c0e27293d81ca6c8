// The diagnostic bundle in parts for the uplink: the parts join to the bundle, each fits the
// message size, and a bundle too large loses its oldest log records, not its end.
import { describe, expect, it } from 'vitest';
import { DIAGNOSTICS_MAX_BYTES, diagnosticsParts } from '../../src/remote/diagnostics-upload.js';
import { DiagnosticsMessage } from '../../src/uplink/contract.js';

const ID = { gatewayId: 'gw-t', communityCode: '330106001001' };

function body(logs: number, extra = ''): string {
  return JSON.stringify({ kind: 'community-gateway-diagnostics', config: { text: `site: {}\n# 冷藏柜 °C 🧊 "quoted" \\ ${extra}` }, logs: Array.from({ length: logs }, (_, i) => ({ i, msg: `record ${i} 日志 🧊 "x"\n` })) }, null, 1);
}

describe('diagnostics parts', () => {
  it('join to the bundle text in order; every message within maxMessageBytes; no surrogate pair split', () => {
    const text = body(2000);
    const parts = diagnosticsParts({ name: 'diagnostics-gw-t.json', body: text }, ID, 7, 4096, 1);
    expect(parts.length).toBeGreaterThan(10);
    for (const [i, p] of parts.entries()) {
      expect(DiagnosticsMessage.parse(p)).toMatchObject({ kind: 'diagnostics', version: 7, part: i + 1, parts: parts.length, trimmed: 0, name: 'diagnostics-gw-t.json' });
      expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThanOrEqual(4096);
      // A lone surrogate would come back as U+FFFD through UTF-8.
      expect(Buffer.from(p.data, 'utf8').toString('utf8')).toBe(p.data);
    }
    const joined = parts.map((p) => p.data).join('');
    expect(joined).toBe(text);
    expect(parts[0]!.bytes).toBe(Buffer.byteLength(text));
  });

  it('a small bundle is one part', () => {
    const parts = diagnosticsParts({ name: 'd.json', body: body(3) }, ID, 1, 64 * 1024);
    expect(parts).toHaveLength(1);
    expect(JSON.parse(parts[0]!.data)).toMatchObject({ kind: 'community-gateway-diagnostics' });
  });

  it('over 4 MiB: the oldest log records are left out, counted, and the rest is valid JSON ending with the newest', () => {
    const big = body(70_000);
    expect(Buffer.byteLength(big)).toBeGreaterThan(DIAGNOSTICS_MAX_BYTES);
    const parts = diagnosticsParts({ name: 'd.json', body: big }, ID, 1, 256 * 1024);
    const joined = parts.map((p) => p.data).join('');
    expect(Buffer.byteLength(joined)).toBeLessThanOrEqual(DIAGNOSTICS_MAX_BYTES);
    const doc = JSON.parse(joined) as { logs: { i: number }[] };
    expect(parts[0]!.trimmed).toBeGreaterThan(0);
    expect(doc.logs.length + parts[0]!.trimmed).toBe(70_000);
    expect(doc.logs.at(-1)!.i).toBe(69_999);
    expect(doc.logs[0]!.i).toBe(parts[0]!.trimmed);
  });

  it('more than 256 parts of a small message size: trimmed too; impossible without logs: an error', () => {
    const parts = diagnosticsParts({ name: 'd.json', body: body(3000) }, ID, 1, 1024);
    expect(parts.length).toBeLessThanOrEqual(256);
    expect(parts[0]!.trimmed).toBeGreaterThan(0);
    expect(() => diagnosticsParts({ name: 'd.json', body: body(0, 'x'.repeat(400_000)) }, ID, 1, 1024)).toThrow(/even without log records/);
  });
});
