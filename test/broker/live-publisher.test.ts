// Live publishing sheds new readings while the broker's own queue is too long (aedes has no
// back-pressure), counts them, and never sheds retained availability.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventBus } from '../../src/events.js';
import { silentLogger } from '../../src/log.js';
import { LivePublisher, MAX_PENDING_LIVE, readingPayload } from '../../src/broker/live-publisher.js';
import type { LocalBroker } from '../../src/broker/local-broker.js';
import type { Reading } from '../../src/types.js';

/** Records publishes; `pending` stands for the messages aedes still has to deliver. */
function recordingBroker() {
  const sent: { topic: string; retain: boolean; payload: string }[] = [];
  const broker = {
    pending: 0,
    publish: (topic: string, payload: string, opts: { retain?: boolean } = {}) => void sent.push({ topic, retain: opts.retain ?? false, payload }),
    publishAsync: async () => {},
  };
  return { broker, sent };
}

const reading = (i: number): Reading => ({ device: 'm1', facility: 'canteen', point: 'voltage', ts: i, value: 230, quality: 'good', unit: 'V', privacy: 'public', kind: 'gauge' });

describe('live publisher back-pressure', () => {
  it('publishes while the queue is short, sheds and counts while it is long, and resumes', () => {
    const { broker, sent } = recordingBroker();
    const events = new EventBus(silentLogger());
    const p = new LivePublisher('gw', broker as unknown as LocalBroker, events);
    p.start();
    events.emit('reading', reading(1));
    broker.pending = MAX_PENDING_LIVE;
    for (let i = 0; i < 10; i++) events.emit('reading', reading(2 + i));
    events.emit('deviceStatus', { device: 'm1', facility: 'canteen', online: false });
    broker.pending = MAX_PENDING_LIVE - 1;
    events.emit('reading', reading(20));
    const live = sent.filter((s) => s.topic === 'community/gw/canteen/m1/voltage');
    expect(live).toHaveLength(2);
    expect(p.shed).toBe(10);
    expect(p.published).toBe(2);
    // Availability is retained state, not a live value: never shed.
    expect(sent.filter((s) => s.topic.endsWith('/availability')).map(({ topic, retain }) => ({ topic, retain }))).toEqual([{ topic: 'community/gw/canteen/m1/availability', retain: true }]);
  });
});

describe('live payloads', () => {
  it('builds the same text as JSON.stringify of {ts, value, unit, quality[, detail]}', () => {
    const value = fc.oneof(fc.double(), fc.integer(), fc.boolean(), fc.string(), fc.constant(null), fc.constantFrom(-0, NaN, Infinity, 1e21, 5e-324));
    const quality = fc.constantFrom('good', 'out_of_range', 'exception', 'timeout', 'comm_error' as const);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), value, fc.string(), quality, fc.option(fc.string(), { nil: undefined }), (ts, v, unit, q, detail) => {
        const r: Reading = { ...reading(ts), value: v, unit, quality: q, ...(detail === undefined ? {} : { detail }) };
        const expected = detail === undefined ? JSON.stringify({ ts, value: v, unit, quality: q }) : JSON.stringify({ ts, value: v, unit, quality: q, detail });
        expect(readingPayload(r)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('live scan messages', () => {
  it('collects a scan per device, ends it at the scan or when the device goes offline, and publishes per point only if asked', () => {
    const { broker, sent } = recordingBroker();
    const events = new EventBus(silentLogger());
    const p = new LivePublisher('gw', broker as unknown as LocalBroker, events, { perPoint: false, perScan: true });
    p.start();
    const r = (device: string, point: string, value: number | null, quality: Reading['quality'] = 'good'): Reading => ({ ...reading(5), device, point, value, quality });
    events.emit('reading', r('m1', 'voltage', 230));
    events.emit('reading', r('m2', 'voltage', 231));
    events.emit('reading', r('m1', 'current', 1.5));
    events.emit('reading', { ...r('m1', 'card', null), privacy: 'identifier' });
    events.emit('scan', { device: 'm1', facility: 'canteen', ts: 9 });
    events.emit('reading', r('m2', 'current', null, 'timeout'));
    events.emit('deviceStatus', { device: 'm2', facility: 'canteen', online: false });
    const scans = sent.filter((s) => s.topic.endsWith('/scan'));
    expect(scans.map((s) => s.topic)).toEqual(['community/gw/canteen/m1/scan', 'community/gw/canteen/m2/scan']);
    expect(JSON.parse(scans[0]!.payload)).toEqual({
      ts: 9,
      points: { voltage: JSON.parse(readingPayload(r('m1', 'voltage', 230))), current: JSON.parse(readingPayload(r('m1', 'current', 1.5))) },
    });
    expect(Object.keys(JSON.parse(scans[1]!.payload).points)).toEqual(['voltage', 'current']);
    expect(sent.filter((s) => !s.topic.endsWith('/scan') && !s.topic.endsWith('/availability') && !s.topic.endsWith('/state'))).toEqual([]);
    expect(p.published).toBe(4);
    expect(p.withheld).toBe(1);
  });
});
