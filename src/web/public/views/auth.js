// First-start setup (setup code from the daemon log, password, optional TOTP enrolment with a
// QR code, recovery codes shown once) and the login form (password, and the one-time code
// when the admin has a second factor).
import { t } from '../i18n.js';
import { api, errText } from '../api.js';
import { h } from '../dom.js';

function busy(form, on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
}

const MIN_CHARS = 12;

export function mountLogin(root, { onSuccess, secondFactor = false }) {
  let message = '';
  function render() {
    const err = h('p', { id: 'login-error', class: 'form-error', role: 'alert', text: message, hidden: !message });
    const form = h('form', { id: 'login-form', class: 'card auth', novalidate: true },
      h('h1', { text: t('login.title') }),
      h('label', { for: 'login-password', text: t('login.password') }),
      h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      secondFactor && [
        h('label', { for: 'login-code', text: t('login.code') }),
        h('input', { id: 'login-code', name: 'code', type: 'text', inputmode: 'text', autocomplete: 'one-time-code', maxlength: 16, required: true }),
      ],
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'login', text: t('login.submit') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const password = form.elements.password.value;
      if (!password) return;
      const body = { password };
      if (secondFactor) body.code = form.elements.code.value.trim();
      busy(form, true);
      try {
        const r = await api('POST', '/api/login', body, { auth: false });
        message = '';
        if (typeof r?.recoveryCodesLeft === 'number') {
          // A recovery code was spent: say how many are left before going on.
          root.replaceChildren(h('div', { class: 'card auth' },
            h('p', { id: 'recovery-notice', class: 'banner warn', text: t('login.recoveryLeft', { n: r.recoveryCodesLeft }) }),
            h('button', { type: 'button', class: 'primary', 'data-action': 'continue', text: t('totp.recoveryDone'), onclick: onSuccess })));
          return;
        }
        onSuccess();
        return;
      } catch (e) {
        if (e.status === 401) message = t('login.wrong');
        else if (e.status === 429 && e.body.reason === 'throttled') message = t('login.throttled', { n: Math.max(1, e.retryAfterS ?? 1) });
        else if (e.status === 429) message = t('login.locked', { n: Math.max(1, Math.ceil((e.retryAfterS ?? 900) / 60)) });
        else message = errText(e);
      }
      busy(form, false);
      err.textContent = message;
      err.hidden = false;
      if (secondFactor) form.elements.code.value = '';
      form.elements.password.select();
    });
    root.replaceChildren(form);
    form.elements.password.focus();
  }
  render();
  return { render };
}

/** The QR code (an SVG data: URI, allowed by the page's CSP), the key as text, and the code field. */
export function enrolmentBlock(enrolment, idPrefix) {
  return h('div', { class: 'totp-enrol', id: `${idPrefix}-enrol` },
    h('img', { id: `${idPrefix}-qr`, class: 'totp-qr', src: enrolment.qr, alt: t('totp.qrAlt'), width: 200, height: 200 }),
    h('p', { class: 'muted', text: t('totp.secret') }),
    h('code', { id: `${idPrefix}-secret`, class: 'code totp-secret', 'data-uri': enrolment.uri, text: enrolment.secret.replace(/(.{4})/g, '$1 ').trim() }),
    h('label', { for: `${idPrefix}-code`, text: t('totp.code') }),
    h('input', { id: `${idPrefix}-code`, name: 'totpCode', type: 'text', inputmode: 'numeric', pattern: '[0-9]{6}', maxlength: 6, autocomplete: 'one-time-code', required: true }));
}

/** The recovery codes, shown once, with a button to go on. */
export function recoveryBlock(codes, onDone) {
  return h('div', { id: 'recovery-codes', class: 'card auth' },
    h('h1', { text: t('totp.recoveryTitle') }),
    h('p', { class: 'banner warn', text: t('totp.recoveryIntro') }),
    h('ol', { class: 'code recovery-list' }, codes.map((c) => h('li', { text: c }))),
    h('button', { type: 'button', class: 'primary', 'data-action': 'recovery-done', text: t('totp.recoveryDone'), onclick: onDone }));
}

export function mountSetup(root, { onSuccess, onAlreadySet, totpRequired = false }) {
  let message = '';
  let enrolment = null;
  let wantTotp = totpRequired;
  let recovery = null;
  let values = {};
  function render() {
    if (recovery) {
      root.replaceChildren(recoveryBlock(recovery, onSuccess));
      return;
    }
    const err = h('p', { id: 'setup-error', class: 'form-error', role: 'alert', text: message, hidden: !message });
    const field = (name, key, attrs = {}) => [
      h('label', { for: `setup-${name}`, text: t(key) }),
      h('input', { id: `setup-${name}`, name, type: 'password', autocomplete: 'new-password', minlength: MIN_CHARS, required: true, value: values[name] ?? '', ...attrs }),
    ];
    const totpBox = h('input', { id: 'setup-totp', name: 'totp', type: 'checkbox', checked: wantTotp, disabled: totpRequired });
    const form = h('form', { id: 'setup-form', class: 'card auth', novalidate: true },
      h('h1', { text: t('setup.title') }),
      h('p', { class: 'muted', text: t('setup.intro') }),
      field('setupCode', 'setup.code', { type: 'text', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false', minlength: null, maxlength: 16 }),
      field('password', 'setup.password'),
      field('password2', 'setup.password2'),
      h('p', { class: 'muted small', id: 'setup-policy', text: t('setup.policy') }),
      h('label', { class: 'check', for: 'setup-totp' }, totpBox, ' ', t(totpRequired ? 'setup.totpRequired' : 'setup.totp')),
      wantTotp && enrolment ? enrolmentBlock(enrolment, 'setup-totp') : null,
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'setup', text: t('setup.submit') }));
    const show = (m) => { message = m; err.textContent = m; err.hidden = !m; };
    const keep = () => { for (const n of ['setupCode', 'password', 'password2']) values[n] = form.elements[n].value; };
    totpBox.addEventListener('change', async () => {
      keep();
      wantTotp = totpBox.checked;
      if (wantTotp && !enrolment) await loadEnrolment();
      render();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      keep();
      const p1 = form.elements.password.value;
      const p2 = form.elements.password2.value;
      if ([...p1].length < MIN_CHARS) return show(t('setup.tooShort'));
      if (p1 !== p2) return show(t('setup.mismatch'));
      const body = { password: p1, setupCode: form.elements.setupCode.value.trim() };
      if (wantTotp && enrolment) body.totp = { secret: enrolment.secret, code: form.elements.totpCode.value.trim() };
      busy(form, true);
      try {
        const r = await api('POST', '/api/setup', body, { auth: false });
        message = '';
        values = {};
        if (Array.isArray(r?.recoveryCodes)) {
          recovery = r.recoveryCodes;
          render();
        } else onSuccess();
        return;
      } catch (e) {
        if (e.status === 403 && e.body.reason === 'setup-code') show(t('setup.wrongCode'));
        else if (e.status === 403 && e.body.error !== 'csrf') show(t('setup.notLan'));
        else if (e.status === 429) show(t('login.locked', { n: Math.max(1, Math.ceil((e.retryAfterS ?? 900) / 60)) }));
        else if (e.status === 409) {
          show(t('setup.alreadySet'));
          setTimeout(onAlreadySet, 1500);
        } else show(errText(e));
      }
      busy(form, false);
    });
    root.replaceChildren(form);
    form.elements.setupCode.focus();
  }
  async function loadEnrolment() {
    try {
      enrolment = await api('POST', '/api/setup/totp', {}, { auth: false });
    } catch (e) {
      message = errText(e);
      wantTotp = totpRequired;
    }
  }
  if (totpRequired) loadEnrolment().then(render);
  else render();
  return { render };
}
