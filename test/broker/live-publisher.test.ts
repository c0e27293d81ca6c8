// Live publishing sheds new readings while the broker's own queue is too long (aedes has no
// back-pressure), counts them, and never sheds retained availability.
import { describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events.js';
import { silentLogger } from '../../src/log.js';
import { LivePublisher, MAX_PENDING_LIVE } from '../../src/broker/live-publisher.js';
import type { LocalBroker } from '../../src/broker/local-broker.js';
import type { Reading } from '../../src/types.js';

/** Records publishes; `pending` stands for the messages aedes still has to deliver. */
function recordingBroker() {
  const sent: { topic: string; retain: boolean }[] = [];
  const broker = {
    pending: 0,
    publish: (topic: string, _p: unknown, opts: { retain?: boolean } = {}) => void sent.push({ topic, retain: opts.retain ?? false }),
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
    expect(sent.filter((s) => s.topic.endsWith('/availability'))).toEqual([{ topic: 'community/gw/canteen/m1/availability', retain: true }]);
  });
});
