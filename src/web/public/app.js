// The technician page: session check, setup/login, hash routing, language switch and the one
// EventSource that feeds the current view.
import { STRINGS, t, getLang, setLang, hasSavedLang, setMessages } from './i18n.js';
import { MESSAGES } from './messages.js';
import { api, setCsrf, setUnauthorizedHandler, errText } from './api.js';
import { h, markStale, isStale } from './dom.js';
import { mountLogin, mountSetup } from './views/auth.js';
import { mountOverview } from './views/overview.js';
import { mountDevice } from './views/device.js';
import { mountConfig } from './views/config.js';
import { mountAudit } from './views/audit.js';
import { mountAccount } from './views/account.js';
import { mountDiagnostics } from './views/diagnostics.js';
import { mountTools } from './views/tools.js';

setMessages(MESSAGES);
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const logoutBtn = document.querySelector('[data-action="logout"]');
const connBanner = document.getElementById('conn-banner');
let view = null;
let events = null;
let authed = false;

/** Both languages must have the same keys. */
function checkStrings() {
  const all = new Set(Object.values(STRINGS).flatMap((s) => Object.keys(s)));
  for (const [lang, s] of Object.entries(STRINGS)) {
    const missing = [...all].filter((k) => !(k in s));
    if (missing.length) console.error(`i18n: "${lang}" lacks ${missing.length} key(s):`, missing);
  }
}

function translateShell() {
  document.documentElement.lang = getLang();
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const b of document.querySelectorAll('#lang-switch [data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === getLang()));
}

function show(mountFn) {
  view?.destroy?.();
  main.replaceChildren();
  view = mountFn(main);
}

function setShell(on, user) {
  nav.hidden = !on;
  logoutBtn.hidden = !on;
  document.getElementById('user-name').textContent = on && user ? user : '';
  if (!on) document.getElementById('site-name').textContent = '';
}

/** web.requireTotp with no second factor enrolled: only the account page (server.ts). */
let mustEnrol = false;

function route() {
  if (!authed) return;
  const hash = mustEnrol ? '#/account' : location.hash || '#/';
  const m = /^#\/device\/(.+)$/.exec(hash);
  let name = 'overview';
  if (m) {
    name = 'device';
    let id = m[1];
    try { id = decodeURIComponent(id); } catch { /* keep it raw */ }
    show((root) => mountDevice(root, id));
  } else if (hash === '#/config') {
    name = 'config';
    show(mountConfig);
  } else if (hash === '#/tools') {
    name = 'tools';
    show(mountTools);
  } else if (hash === '#/audit') {
    name = 'audit';
    show(mountAudit);
  } else if (hash === '#/diagnostics') {
    name = 'diagnostics';
    show(mountDiagnostics);
  } else if (hash === '#/account') {
    name = 'account';
    show(mountAccount);
  } else show(mountOverview);
  for (const a of nav.querySelectorAll('a[data-route]')) {
    if (a.dataset.route === name) {
      a.setAttribute('aria-current', 'page');
      // On a phone the nav is one row that scrolls sideways: keep the current page in it.
      if (nav.scrollWidth > nav.clientWidth) nav.scrollLeft = Math.max(0, a.offsetLeft - nav.offsetLeft - (nav.clientWidth - a.offsetWidth) / 2);
    } else a.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
}

let secondFactor = false;

function showLogin() {
  authed = false;
  closeEvents();
  setShell(false);
  show((root) => mountLogin(root, { onSuccess: boot, secondFactor }));
}

async function boot() {
  let s;
  try {
    s = await api('GET', '/api/session', undefined, { auth: false });
  } catch (e) {
    authed = false;
    closeEvents();
    setShell(false);
    show((root) => {
      const render = () => root.replaceChildren(h('div', { class: 'card auth' },
        h('p', { class: 'banner error', text: errText(e) }),
        h('button', { type: 'button', class: 'primary', text: t('app.retry'), onclick: boot })));
      render();
      return { render };
    });
    return;
  }
  s ??= {};
  setCsrf(s.csrf);
  secondFactor = s.secondFactor === true;
  if (!hasSavedLang() && STRINGS[s.lang] && s.lang !== getLang()) {
    setLang(s.lang, false);
    translateShell();
  }
  if (s.setupRequired) {
    authed = false;
    closeEvents();
    setShell(false);
    show((root) => mountSetup(root, { onSuccess: boot, onAlreadySet: boot, totpRequired: s.totpRequired === true }));
  } else if (!s.authenticated) {
    showLogin();
  } else {
    authed = true;
    mustEnrol = s.mustEnrol === true;
    setShell(true, s.user);
    if (!mustEnrol) openEvents();
    route();
  }
}

function parse(ev) {
  try { return JSON.parse(ev.data); } catch { return null; }
}

// Live state goes stale when the stream drops: an error (daemon stopped, connection refused)
// or silence (network gone without a reset: the server sends the overview every 2 s). Values
// and badges stay greyed, saying they are not current, until the stream is back and a fresh
// overview came through it.
const SILENCE_MS = 7000;
let lastEvent = 0;
let lastGood = 0;

function setStale(on) {
  if (on === isStale()) return;
  markStale(on, on ? lastGood || null : null);
  bannerText();
}

function bannerText() {
  connBanner.textContent = isStale() ? `${t('events.lost')} ${t('stale.note')}` : t('events.lost');
}

function lost() {
  connBanner.hidden = false;
  setStale(true);
}

setInterval(() => {
  if (!events || performance.now() - lastEvent < SILENCE_MS) return;
  lost();
  // An open stream that went silent is dead without knowing it: start a new one. One that is
  // still connecting keeps its own retries.
  if (events.readyState === EventSource.OPEN) openEvents(true);
  lastEvent = performance.now();
}, 1000);

function openEvents(keepStale = false) {
  closeEvents(keepStale);
  const es = new EventSource('/api/events');
  events = es;
  lastEvent = performance.now();
  const heard = () => { if (events === es) lastEvent = performance.now(); };
  es.addEventListener('open', () => { heard(); if (!isStale()) connBanner.hidden = true; });
  es.addEventListener('overview', (ev) => {
    heard();
    const d = parse(ev);
    if (d) view?.onOverview?.(d);
    if (d && events === es) {
      lastGood = Date.now();
      connBanner.hidden = true;
      setStale(false);
    }
  });
  es.addEventListener('reading', (ev) => {
    heard();
    for (const r of [].concat(parse(ev) ?? [])) if (r?.device && r.point) view?.onReading?.(r);
  });
  es.addEventListener('session', () => {
    if (events !== es) return;
    es.close();
    events = null;
    recheck();
  });
  es.addEventListener('error', () => {
    if (events !== es) return;
    lost();
    if (es.readyState === EventSource.CLOSED) {
      events = null;
      setTimeout(recheck, 3000);
    }
  });
}

function closeEvents(keepStale = false) {
  events?.close();
  events = null;
  if (keepStale) return;
  connBanner.hidden = true;
  setStale(false);
}

/** The event stream closed for good (a 401, a restart): ask the session before reopening. */
async function recheck() {
  if (!authed || events) return;
  try {
    const s = await api('GET', '/api/session', undefined, { auth: false });
    if (!s?.authenticated) { if (authed) showLogin(); return; }
    setCsrf(s.csrf);
    openEvents(true); // still stale until the new stream's first overview
  } catch {
    setTimeout(recheck, 5000);
  }
}

setUnauthorizedHandler(() => { if (authed) showLogin(); });

document.getElementById('lang-switch').addEventListener('click', (ev) => {
  const b = ev.target.closest('[data-lang]');
  if (!b || b.dataset.lang === getLang()) return;
  setLang(b.dataset.lang);
  translateShell();
  bannerText();
  view?.render?.();
});

logoutBtn.addEventListener('click', async () => {
  try { await api('POST', '/api/logout', {}, { auth: false }); } catch { /* logged out anyway */ }
  authed = false;
  boot();
});

window.addEventListener('hashchange', route);
window.addEventListener('cgw:second-factor', () => { if (mustEnrol) { mustEnrol = false; openEvents(); } });

checkStrings();
translateShell();
boot();
