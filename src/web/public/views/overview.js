// Overview: uplink and backlog strip, active alarms, then one card per facility with its devices.
// Replaced wholesale by `overview` events; single values patched in place by `reading` events.
import { label, t, tOr, serverText } from '../i18n.js';
import { api, errText } from '../api.js';
import { facilityName, setFacilityTypes } from '../facilities.js';
import { h, fmtTime, fmtValue, fmtEta, fmtNumber, stateBadge, liveBadge } from '../dom.js';

export const deviceHref = (id) => `#/device/${encodeURIComponent(id)}`;
export { facilityName };

/** The value cell content shared by the overview and the device page: `.value` and `.unit` spans. */
export function valueNodes(r) {
  return [h('span', { class: 'value', text: fmtValue(r) }), ' ', h('span', { class: 'unit', text: r && !r.withheld ? r.unit ?? '' : '' })];
}

/** Patch the value under `[data-device=D] [data-point=P]` inside root; false when not shown. */
export function patchReading(root, r) {
  const cell = root.querySelector(`[data-device="${CSS.escape(r.device)}"] [data-point="${CSS.escape(r.point)}"]`);
  if (!cell) return false;
  cell.querySelector('.value').textContent = fmtValue(r);
  cell.querySelector('.unit').textContent = r.withheld ? '' : r.unit ?? '';
  cell.classList.toggle('q-bad', !!r.quality && r.quality !== 'good');
  cell.title = `${fmtTime(r.ts)} · ${r.quality ?? ''}`;
  if (r.ts != null) cell.dataset.ts = String(r.ts);
  return cell;
}

function uplinkStrip(o) {
  const u = o.uplink ?? {};
  const b = o.backlog ?? {};
  const connected = u.state === 'connected';
  const stateText = connected ? t('uplink.connected') : t('uplink.disconnected') + (u.state && u.state !== 'disconnected' ? ` · ${tOr(`uplink.${u.state}`, u.state)}` : '');
  const parts = [
    h('div', { class: 'strip-item' },
      h('span', { class: 'strip-label', text: t('uplink.title') }),
      liveBadge(connected ? 'ok' : 'bad', stateText, { id: 'uplink-state', 'data-state': u.state ?? '' }),
      connected && u.connectedSince ? h('span', { class: 'muted', text: t('uplink.since', { time: fmtTime(u.connectedSince) }) }) : null,
      !connected && u.lastError ? h('span', { class: 'muted', text: t('uplink.lastError', { msg: serverText(u.lastError, u.lastErrorMsg) }) }) : null),
    h('div', { class: 'strip-item' },
      h('span', { class: 'strip-label', text: t('backlog.title') }),
      liveBadge(b.rows ? 'warn' : 'ok', b.rows ? t('backlog.rows', { n: b.rows }) : t('backlog.empty'), { id: 'backlog-rows' }),
      b.rows && b.oldestTs ? h('span', { class: 'muted', text: t('backlog.oldest', { time: fmtTime(b.oldestTs) }) }) : null),
  ];
  const c = o.clock;
  if (c) {
    const state = c.synchronized === true ? 'synced' : c.synchronized === false ? 'unsynced' : 'unknown';
    parts.push(h('div', { class: 'strip-item', id: 'clock', 'data-state': state },
      h('span', { class: 'strip-label', text: t('clock.title') }),
      liveBadge(state === 'synced' ? 'ok' : state === 'unsynced' ? 'warn' : '', t(`clock.${state}`)),
      h('span', { class: 'muted', text: t('clock.now', { time: fmtTime(c.now) }) }),
      c.lastStep ? h('span', { class: 'muted', text: t('clock.lastStep', { time: fmtTime(c.lastStep.ts), s: fmtNumber(c.lastStep.seconds) }) }) : null));
  }
  if (b.draining) {
    const pct = Math.round(Math.min(1, Math.max(0, b.progress ?? 0)) * 100);
    parts.push(h('div', { class: 'strip-item drain', id: 'drain' },
      h('span', { class: 'strip-label', text: t('backlog.draining') }),
      h('progress', { max: 100, value: pct, 'aria-label': t('backlog.draining') }, `${pct}%`),
      h('span', { text: `${pct}%` }),
      h('span', { id: 'drain-eta', text: fmtEta(b.etaSeconds) }),
      b.drainRatePerSec ? h('span', { class: 'muted', text: t('backlog.rate', { n: fmtNumber(b.drainRatePerSec) }) }) : null));
  }
  return h('section', { class: 'card strip', id: 'uplink' }, parts);
}

function alarmList(alarms) {
  if (!alarms?.length) return h('p', { id: 'alarms', class: 'muted no-alarms', text: t('alarms.none') });
  return h('section', { id: 'alarms', class: 'card alarms', role: 'alert' },
    h('h2', { text: `${t('alarms.title')} (${alarms.length})` }),
    h('ul', null, alarms.map((a) => h('li', { class: `alarm sev-${a.severity}`, 'data-alarm': a.id ?? '' },
      liveBadge(a.severity === 'critical' ? 'bad' : 'warn', tOr(`sev.${a.severity}`, a.severity)),
      h('a', { href: deviceHref(a.device), text: a.device }),
      h('span', { text: a.point ?? '' }),
      h('span', { class: 'muted', text: t('alarms.since', { time: fmtTime(a.since) }) })))));
}

/** "5 分钟前": how long ago `ts` was, by the box's own clock `now` (the phone's may differ). */
export function fmtAgo(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  if (s < 60) return t('ago.s', { n: s });
  if (s < 3600) return t('ago.min', { n: Math.floor(s / 60) });
  if (s < 86400) return t('ago.h', { n: Math.floor(s / 3600) });
  return t('ago.d', { n: Math.floor(s / 86400) });
}

/** Offline devices first on the page: how many, and each one's reason and last answer. The
 * reason is the server's text as it comes (its translation is a later item). */
function offlineList(o) {
  const off = o.offline;
  if (!off) return null;
  if (!off.count) return h('p', { id: 'offline', class: 'muted no-offline', 'data-count': '0', text: t('offline.none', { n: off.of }) });
  const now = o.clock?.now ?? Date.now();
  return h('section', { id: 'offline', class: 'card offline', 'data-count': String(off.count), role: 'status' },
    h('h2', null, liveBadge('bad', t('state.offline')), ' ', t('offline.title', { n: off.count, of: off.of })),
    h('ul', { class: 'offline-list' }, off.devices.map((d) => h('li', { class: 'offline-device', 'data-offline': d.id },
      h('div', { class: 'offline-head' },
        h('a', { href: deviceHref(d.id), text: d.name ? `${d.name} (${d.id})` : d.id }),
        h('span', { class: 'muted', text: facilityName(d.facility) })),
      h('div', { class: 'offline-reason', text: d.reason ? serverText(d.reason, d.reasonMsg) : t('offline.noReason') }),
      h('div', { class: 'muted offline-since', text: d.since ? t('offline.since', { ago: fmtAgo(d.since, now), time: fmtTime(d.since) }) : t('offline.never') })))));
}

/** "12:03:04": when the device's newest value was read (the date on hover), so a value seen
 * on a phone, and one left greyed after the stream dropped, says how old it is. */
function deviceTime(ts) {
  const s = ts ? fmtTime(ts) : '';
  return h('span', { class: 'muted device-ts', 'data-ts': ts || null, title: s || null, text: s ? t('dev.updated', { time: s.slice(s.indexOf(' ') + 1) }) : '' });
}
/** A reading the device answered (a failed poll is stamped too, but holds no value). */
const answered = (r) => typeof r?.ts === 'number' && (r.quality === 'good' || r.quality === 'out_of_range');
const newest = (points) => points.reduce((m, [, r]) => (answered(r) && r.ts > m ? r.ts : m), 0);

function deviceItem(d) {
  const points = Array.isArray(d.points) ? d.points.map((p) => [p.id ?? p.point, p]) : Object.entries(d.points ?? {});
  return h('li', { class: d.online === false ? 'device is-offline' : 'device', 'data-device': d.id },
    h('div', { class: 'device-head' },
      h('a', { class: 'device-name', href: deviceHref(d.id), text: d.name ? `${d.name} (${d.id})` : d.id }),
      stateBadge(d.online),
      deviceTime(newest(points)),
      h('span', { class: 'muted device-profile', text: `${t('dev.profile')}: ${d.profile ?? d.kind ?? '—'}` })),
    points.length
      ? h('dl', { class: 'readings' }, points.map(([pid, r]) => h('div', { class: 'reading' },
        h('dt', { text: label(d.pointNames?.[pid], pid), title: pid }),
        h('dd', { 'data-point': pid, 'data-ts': r?.ts, class: r?.quality && r.quality !== 'good' ? 'q-bad' : null, title: `${fmtTime(r?.ts)} · ${r?.quality ?? ''}` }, valueNodes(r)))))
      : h('p', { class: 'muted', text: t('dev.noReadings') }),
    h('a', { class: 'button small', href: deviceHref(d.id), text: t('dev.open') }));
}

/** The page certificate's fingerprint, to compare with the browser's certificate viewer and the
 * label or log of the box (a check against a fake box on the LAN). */
function tlsLine(tls) {
  if (!tls) return null;
  return h('p', { id: 'tls-fingerprint', class: 'muted' },
    tls.https ? t('tls.fingerprint', { fp: tls.fingerprint256 }) : t('tls.plain'));
}

export function mountOverview(root) {
  let data = null;
  let tls = null;
  let error = '';
  function render() {
    if (!data) {
      root.replaceChildren(h('p', { class: error ? 'banner error' : 'muted', text: error || t('app.loading') }));
      return;
    }
    setFacilityTypes(data.facilityTypes);
    root.replaceChildren(h('div', { class: 'overview' },
      uplinkStrip(data),
      offlineList(data),
      alarmList(data.alarms),
      h('div', { class: 'facilities' }, (data.facilities ?? []).map((f) => h('section', { class: 'card facility', 'data-facility': f.id, 'data-type': f.type },
        h('h2', { text: f.name ? `${f.name} · ${facilityName(f.type)}` : facilityName(f.type) }),
        f.houseCode ? h('p', { class: 'muted house-code', text: `${t('fac.houseCode')}: ${f.houseCode}` }) : null,
        f.devices?.length ? h('ul', { class: 'devices' }, f.devices.map(deviceItem)) : h('p', { class: 'muted', text: t('dev.noDevices') })))),
      tlsLine(tls)));
    const name = data.site?.name ?? data.site?.gatewayId;
    document.getElementById('site-name').textContent = name ? String(name) : '';
  }
  api('GET', '/api/overview').then((d) => { data = d; render(); }, (e) => { if (e.status !== 401) { error = errText(e); render(); } });
  api('GET', '/api/tls', undefined, { auth: false }).then((x) => { tls = x; render(); }, () => {});
  render();
  return {
    render,
    onOverview(o) { data = o; error = ''; render(); },
    onReading(r) {
      const dev = data?.facilities?.flatMap((f) => f.devices ?? []).find((d) => d.id === r.device);
      if (dev && !Array.isArray(dev.points)) (dev.points ??= {})[r.point] = { ts: r.ts, value: r.value, unit: r.unit, quality: r.quality, ...(r.withheld ? { withheld: r.withheld } : {}) };
      const cell = patchReading(root, r);
      const ts = cell && answered(r) ? cell.closest('[data-device]')?.querySelector('.device-ts') : null;
      if (ts && !(Number(ts.dataset.ts) >= r.ts)) ts.replaceWith(deviceTime(r.ts));
    },
  };
}
