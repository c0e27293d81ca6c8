// Prometheus metrics (prom-client) for /metrics on the web port. Every value is read from the
// running gateway's own counters when scraped, so the hot path (a reading) costs one Map
// increment and nothing else. Series are documented in docs/METRICS.md.
import client from 'prom-client';
import type { WebApp } from './web-app.js';
import { collectDefaultMetricsExceptGc } from './default-metrics.js';

type Labels = Record<string, string>;

export class Metrics {
  readonly registry = new client.Registry();
  private readonly readings = new Map<string, number>();
  private readonly off: () => void;

  constructor(private readonly app: WebApp) {
    // Lag sampled every second, not every 10 ms (prom-client's default): each sample is a timer
    // that wakes the process, and a wake-up from idle is most of what a poll costs on this kind
    // of machine (docs/METRICS.md, docs/PERFORMANCE.md).
    // Without the GC-duration histogram: its observer promoted ~3.5 KB per scavenge (default-metrics.ts).
    collectDefaultMetricsExceptGc({ register: this.registry, prefix: 'cgw_', eventLoopMonitoringPrecision: 1000 });
    this.off = app.onReading((r) => this.readings.set(r.device, (this.readings.get(r.device) ?? 0) + 1));
    const g = () => this.app.gateway;
    const reg = [this.registry];

    counter(reg, 'cgw_readings_total', 'Readings produced, per device (Modbus points and GPIO inputs).', ['device'], () =>
      [...this.readings].map(([device, n]) => [{ device }, n]),
    );
    const busEvents = ['requests', 'responses', 'timeouts', 'crcErrors', 'shortFrames', 'exceptions', 'badFrames', 'staleFrames'] as const;
    counter(reg, 'cgw_bus_events_total', 'Modbus link events per bus, counting every attempt (event: requests, responses, timeouts, crc_errors, short_frames, exceptions, bad_frames, stale_frames).', ['bus', 'event'], () =>
      [...g().buses.values()].flatMap((b) => busEvents.map((e) => [{ bus: b.opts.id, event: snake(e) }, b.transport.stats[e]] as [Labels, number])),
    );
    counter(reg, 'cgw_bus_bytes_total', 'Bytes on the Modbus link per bus and direction (rx_discarded: received bytes dropped to get back in step, part of rx).', ['bus', 'direction'], () =>
      [...g().buses.values()].flatMap((b) => [
        [{ bus: b.opts.id, direction: 'tx' }, b.transport.stats.txBytes],
        [{ bus: b.opts.id, direction: 'rx' }, b.transport.stats.rxBytes],
        [{ bus: b.opts.id, direction: 'rx_discarded' }, b.transport.stats.discardedBytes],
      ]),
    );
    gauge(reg, 'cgw_bus_up', '1 while the bus link is up.', ['bus'], () => [...g().buses.values()].map((b) => [{ bus: b.opts.id }, b.status === 'up' ? 1 : 0]));
    gauge(reg, 'cgw_bus_queue_length', 'Requests waiting in the bus queue.', ['bus'], () => [...g().buses.values()].map((b) => [{ bus: b.opts.id }, b.queueLength]));

    const devBus = (id: string) => g().config.devices.find((d) => d.id === id)?.bus ?? '';
    counter(reg, 'cgw_device_scans_total', 'Scans (one read of every block) per device.', ['bus', 'device'], () =>
      g().pollers.map((p) => [{ bus: devBus(p.device.id), device: p.device.id }, p.stats.polls]),
    );
    counter(reg, 'cgw_device_poll_errors_total', 'Failed requests per device after retries, by cause (timeout, exception, line, link).', ['bus', 'device', 'cause'], () =>
      g().pollers.flatMap((p) => {
        const e = p.stats.errors;
        const l = { bus: devBus(p.device.id), device: p.device.id };
        return [
          [{ ...l, cause: 'timeout' }, e.timeouts],
          [{ ...l, cause: 'exception' }, e.exceptions],
          [{ ...l, cause: 'line' }, e.lineErrors],
          [{ ...l, cause: 'link' }, e.linkErrors],
        ] as [Labels, number][];
      }),
    );
    counter(reg, 'cgw_device_scan_seconds_total', 'Time spent scanning per device; divided by cgw_device_scans_total it is the mean scan latency.', ['bus', 'device'], () =>
      g().pollers.map((p) => [{ bus: devBus(p.device.id), device: p.device.id }, p.stats.scanMsTotal / 1000]),
    );
    gauge(reg, 'cgw_device_last_scan_seconds', 'Duration of the last scan per device.', ['bus', 'device'], () =>
      g().pollers.filter((p) => p.stats.lastScanMs !== null).map((p) => [{ bus: devBus(p.device.id), device: p.device.id }, p.stats.lastScanMs! / 1000]),
    );
    gauge(reg, 'cgw_device_online', '1 while the device answers, 0 when offline (absent before its first scan).', ['device'], () => [
      ...g().pollers.filter((p) => p.stats.online !== null).map((p) => [{ device: p.device.id }, p.stats.online ? 1 : 0] as [Labels, number]),
      ...g().gpio.map((x) => [{ device: x.cfg.id }, x.input.stats.mode === 'interrupt' || x.input.stats.mode === 'polling' ? 1 : 0] as [Labels, number]),
    ]);
    gauge(reg, 'cgw_gpio_interrupt_mode', '1 when the GPIO input uses edge interrupts, 0 when it polls or is unavailable.', ['input'], () =>
      g().gpio.map((x) => [{ input: x.cfg.id }, x.input.stats.mode === 'interrupt' ? 1 : 0]),
    );
    counter(reg, 'cgw_gpio_edges_total', 'Level changes seen per GPIO input (before debounce).', ['input'], () => g().gpio.map((x) => [{ input: x.cfg.id }, x.input.stats.edges]));

    const outbox = () => g().outbox?.stats();
    gauge(reg, 'cgw_outbox_rows', 'Items waiting in the outbox.', [], () => scalar(outbox()?.rows));
    gauge(reg, 'cgw_outbox_bytes', 'Bytes waiting in the outbox.', [], () => scalar(outbox()?.bytes));
    gauge(reg, 'cgw_outbox_oldest_age_seconds', 'Age of the oldest waiting item (0 when empty).', [], () => {
      const o = outbox();
      return scalar(o ? (o.oldestTs ? (Date.now() - o.oldestTs) / 1000 : 0) : undefined);
    });
    counter(reg, 'cgw_outbox_shed_rows_total', 'Items shed by the outbox cap (oldest non-alarm first); persisted across restarts.', [], () => scalar(outbox()?.shedRows));
    counter(reg, 'cgw_outbox_dropped_rows_total', 'Items that could not be written (disk full); persisted across restarts.', [], () => scalar(outbox()?.droppedRows));
    gauge(reg, 'cgw_outbox_last_seq', 'Highest seq committed.', [], () => scalar(outbox()?.lastSeq));

    counter(reg, 'cgw_clock_steps_total', 'Steps of the wall clock seen (against the monotonic clock, threshold 1 s): NTP syncing a box without RTC.', [], () => scalar(g().clockWatch.steps));
    gauge(reg, 'cgw_clock_synchronized', '1 when the time daemon says the clock is synchronised, 0 when not (absent when unknown).', ['source'], () => {
      const c = g().clockSync;
      return c.synchronized === null ? [] : [[{ source: c.source }, c.synchronized ? 1 : 0]];
    });
    counter(reg, 'cgw_aggregate_late_readings_total', 'Readings not aggregated: stamped before the open window (late, or the clock stepped back past windows already sent).', [], () => scalar(g().aggregator?.late));
    counter(reg, 'cgw_aggregate_skipped_windows_total', 'Aggregation windows not sent because a forward clock step jumped over them (never observed).', [], () => scalar(g().aggregator?.windowsSkipped));
    counter(reg, 'cgw_raw_dropped_total', 'Raw readings (local diagnostics, never uplinked) that could not be written.', [], () => scalar(g().raw?.dropped));
    counter(reg, 'cgw_raw_evicted_total', 'Oldest raw readings given up to make room on a full disk, before any outbox item is dropped.', [], () => scalar(g().raw?.evicted));
    gauge(reg, 'cgw_uplink_connected', '1 while connected to the platform broker.', [], () => scalar(g().uplink ? (g().uplink!.state === 'connected' ? 1 : 0) : undefined));
    counter(reg, 'cgw_uplink_connects_total', 'Successful connections to the platform broker.', [], () => scalar(g().uplink?.stats.connects));
    counter(reg, 'cgw_uplink_failed_connects_total', 'Failed connection attempts.', [], () => scalar(g().uplink?.stats.failedConnects));
    counter(reg, 'cgw_uplink_acked_items_total', 'Items acknowledged by the platform broker (PUBACK).', [], () => scalar(g().uplink?.stats.acked));
    gauge(reg, 'cgw_uplink_inflight', 'Messages sent and not yet acknowledged.', [], () => scalar(g().uplink?.inFlight));

    counter(reg, 'cgw_privacy_suppressed_total', 'Personal figures suppressed (fewer than k residents, or complementary suppression).', [], () => scalar(g().personal?.suppressedTotal));
    counter(reg, 'cgw_privacy_events_total', 'Health-kiosk sessions seen by the personal aggregator.', [], () => scalar(g().personal?.events));
    gauge(reg, 'cgw_alarms_active', 'Alarms currently raised.', [], () => scalar(g().alarms?.active().length));
    counter(reg, 'cgw_alarms_raised_total', 'Alarms raised since start.', [], () => scalar(g().alarms?.raisedCount));

    gauge(reg, 'cgw_local_broker_clients', 'Clients connected to the local MQTT broker.', [], () => scalar(g().broker.clients));
    counter(reg, 'cgw_local_broker_live_shed_total', 'Live readings not published on the local broker because its subscribers could not keep up (over 5,000 queued).', [], () => scalar(g().publisher.shed));
    gauge(reg, 'cgw_local_broker_connections', 'Open connections to the local broker over all listeners.', [], () => scalar(g().broker.stats.connections));
    const audit = () => this.app.audit;
    counter(reg, 'cgw_audit_over_budget_total', 'Rotations after which the audit files exceeded web.audit.budgetBytes with files still inside the retention (kept, not deleted).', [], () => scalar(audit().stats.overBudget));
    counter(reg, 'cgw_audit_deleted_files_total', 'Rotated audit files deleted by the retention (older than web.audit.retentionDays and over budget).', [], () => scalar(audit().stats.deletedFiles));
    counter(reg, 'cgw_audit_suppressed_total', 'Repeated refusals not written as lines of their own by the audit rate limit (each counted in a later line).', [], () => scalar(audit().stats.suppressed));
    gauge(reg, 'cgw_audit_bytes', 'Bytes in the audit files (current and rotated).', [], () => scalar(audit().usage().bytes));
    gauge(reg, 'cgw_audit_seq', 'Sequence number of the newest audit line written since start (the hash-chain head).', [], () => scalar(audit().headSeq));
    counter(reg, 'cgw_local_broker_refused_total', 'Refusals by the local broker (reason: login, subscribe, publish, connection_cap, address_cap, oversized_packet, malformed_packet, tls_handshake, retained_cap, inflight_cap).', ['reason'], () => {
      const b = g().broker.stats;
      return [
        [{ reason: 'login' }, b.refusedLogins],
        [{ reason: 'subscribe' }, b.refusedSubscriptions],
        [{ reason: 'publish' }, b.refusedPublishes],
        [{ reason: 'connection_cap' }, b.refusedConnections - b.refusedPerAddress],
        [{ reason: 'address_cap' }, b.refusedPerAddress],
        [{ reason: 'oversized_packet' }, b.oversizedPackets],
        [{ reason: 'malformed_packet' }, b.malformedPackets],
        [{ reason: 'tls_handshake' }, b.tlsHandshakeFailures],
        [{ reason: 'retained_cap' }, b.refusedRetained],
        [{ reason: 'inflight_cap' }, b.refusedInflight],
      ];
    });
    counter(reg, 'cgw_local_broker_login_refusals_total', 'CONNECTs refused by the local broker, by reason (bad_credentials, anonymous, backed_off, busy, client_id_taken, client_id_invalid).', ['reason'], () =>
      Object.entries(g().broker.stats.loginRefusals).map(([reason, n]) => [{ reason }, n] as [Labels, number]),
    );
    counter(reg, 'cgw_local_broker_closed_total', 'Connections the local broker closed to protect itself (reason: pending_evicted, idle_timeout, slow_subscriber).', ['reason'], () => {
      const b = g().broker.stats;
      return [
        [{ reason: 'pending_evicted' }, b.evictedPending],
        [{ reason: 'idle_timeout' }, b.idleTimeouts],
        [{ reason: 'slow_subscriber' }, b.slowSubscribersClosed],
      ];
    });
    counter(reg, 'cgw_local_broker_live_dropped_total', "The gateway's live messages not written to a subscriber with more than 256 KiB waiting in its connection (not reading).", [], () => scalar(g().broker.stats.droppedLive));
    counter(reg, 'cgw_local_broker_queue_dropped_total', 'Messages not queued for a client whose queue (or the total) was at its cap.', [], () => scalar(g().broker.stats.droppedQueued));
    gauge(reg, 'cgw_local_broker_sessions', 'Persistent sessions (CleanSession 0) on the local broker, online or offline.', [], () => scalar(g().broker.stats.persistentSessions));
    counter(reg, 'cgw_local_broker_expired_sessions_total', 'Persistent sessions expired after staying offline for sessionExpirySeconds.', [], () => scalar(g().broker.stats.expiredSessions));
    gauge(reg, 'cgw_local_broker_stored_messages', 'Messages the local broker holds (kind: inflight, inbound QoS 2 awaiting PUBREL; queued, for sessions; retained, from accounts).', ['kind'], () => {
      const b = g().broker.stats;
      return [
        [{ kind: 'inflight' }, b.inflightMessages],
        [{ kind: 'queued' }, b.queuedMessages],
        [{ kind: 'retained' }, b.retainedMessages],
      ];
    });
    gauge(reg, 'cgw_local_broker_stored_bytes', 'Topic and payload bytes of those messages, by kind.', ['kind'], () => {
      const b = g().broker.stats;
      return [
        [{ kind: 'inflight' }, b.inflightBytes],
        [{ kind: 'queued' }, b.queuedBytes],
        [{ kind: 'retained' }, b.retainedBytes],
      ];
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  close(): void {
    this.off();
    this.registry.clear();
  }
}

type Sample = [Labels, number][];

function scalar(v: number | undefined | null): Sample {
  return v === undefined || v === null ? [] : [[{}, v]];
}

function snake(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** A counter whose value is read at scrape time from a counter the gateway keeps anyway. */
function counter(registers: client.Registry[], name: string, help: string, labelNames: string[], read: () => Sample): void {
  new client.Counter({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      // inc(0) still creates the series, so rate() has a starting point.
      for (const [labels, v] of read()) this.inc(labels, v);
    },
  });
}

function gauge(registers: client.Registry[], name: string, help: string, labelNames: string[], read: () => Sample): void {
  new client.Gauge({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.set(labels, v);
    },
  });
}
