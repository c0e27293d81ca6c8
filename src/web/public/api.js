// JSON API client: CSRF header on every changing request, 401 sends the page back to login,
// one silent retry with a fresh token when the server answers 403 {"error":"csrf"}.
import { t, serverText } from './i18n.js';

export class ApiError extends Error {
  constructor(status, body, retryAfterS = null) {
    // In the page's language with its code when the server named it (body.msg).
    super((body && typeof body.error === 'string' && body.error && serverText(body.error, body.msg)) || (status ? `HTTP ${status}` : t('err.network')));
    this.status = status;
    this.body = body ?? {};
    this.retryAfterS = retryAfterS;
  }
}

let csrf = null;
let onUnauthorized = () => {};
export const setCsrf = (token) => { csrf = token ?? null; };
export const setUnauthorizedHandler = (fn) => { onUnauthorized = fn; };

function retryAfter(res, body) {
  const h = res.headers.get('Retry-After');
  if (h && /^\d+$/.test(h.trim())) return Number(h);
  if (h && !Number.isNaN(Date.parse(h))) return Math.max(0, Math.round((Date.parse(h) - Date.now()) / 1000));
  return body && typeof body.retryAfterS === 'number' ? body.retryAfterS : null;
}

function nonce() {
  const b = crypto.getRandomValues(new Uint8Array(18));
  return btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_');
}

/** api('GET', '/api/overview') or api('POST', '/api/login', {password}, {auth: false}). */
export async function api(method, path, body, { auth = true, retried = false } = {}) {
  const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    if (csrf) opts.headers['X-CSRF-Token'] = csrf;
    // Commands are taken once per nonce (replay protection, docs/WEB.md). getRandomValues works
    // on plain http too, where crypto.randomUUID does not.
    opts.headers['X-Request-Nonce'] = nonce();
    opts.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new ApiError(0, null);
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { error: text.slice(0, 200) }; }
  if (res.status === 401 && auth) {
    onUnauthorized();
    throw new ApiError(401, data);
  }
  if (res.status === 403 && data?.error === 'csrf' && !retried && method !== 'GET') {
    try {
      const s = await api('GET', '/api/session', undefined, { auth: false });
      setCsrf(s?.csrf);
      if (s?.authenticated) return api(method, path, body, { auth, retried: true });
      if (auth) onUnauthorized();
    } catch { /* fall through to the original error */ }
  }
  if (!res.ok) throw new ApiError(res.status, data, retryAfter(res, data));
  return data;
}

/** A short message for any error, in the page language. */
export const errText = (e) => (e instanceof ApiError && e.status === 0 ? t('err.network') : t('err.generic', { msg: e?.message ?? String(e) }));
