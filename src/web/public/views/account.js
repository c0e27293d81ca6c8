// The admin's account: change the password (current one + new, policy applied by the server;
// every other session ends) and switch the second factor (TOTP) on or off.
import { t } from '../i18n.js';
import { api, errText } from '../api.js';
import { h } from '../dom.js';
import { enrolmentBlock, recoveryBlock } from './auth.js';

export function mountAccount(root) {
  let info = null;
  let enrolment = null;
  let recovery = null;
  let notice = '';
  let error = '';
  let gone = false;

  async function load() {
    try {
      info = await api('GET', '/api/account');
    } catch (e) {
      error = errText(e);
    }
    if (!gone) render();
  }

  const wrongText = (e) => (e.status === 403 && e.body.error !== 'csrf' ? t('account.wrong')
    : e.status === 429 ? t('login.throttled', { n: Math.max(1, e.retryAfterS ?? 1) }) : errText(e));

  function passwordForm() {
    const err = h('p', { id: 'password-error', class: 'form-error', role: 'alert' });
    const input = (name, key, type = 'password', ac = 'new-password') => [
      h('label', { for: `pw-${name}`, text: t(key) }),
      h('input', { id: `pw-${name}`, name, type, autocomplete: ac, required: true }),
    ];
    const form = h('form', { id: 'password-form', class: 'card auth', novalidate: true },
      h('h2', { text: t('account.password') }),
      input('current', 'account.current', 'password', 'current-password'),
      input('password', 'account.new'),
      input('password2', 'account.new2'),
      h('p', { class: 'muted small', text: t('setup.policy') }),
      info.secondFactor && input('code', 'account.codeIfOn', 'text', 'one-time-code'),
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'change-password', text: t('account.change') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const f = form.elements;
      if ([...f.password.value].length < 12) { err.textContent = t('setup.tooShort'); return; }
      if (f.password.value !== f.password2.value) { err.textContent = t('setup.mismatch'); return; }
      const body = { current: f.current.value, password: f.password.value };
      if (info.secondFactor) body.code = f.code.value.trim();
      try {
        await api('POST', '/api/account/password', body);
        notice = t('account.changed');
        render();
      } catch (e) {
        err.textContent = wrongText(e);
      }
    });
    return form;
  }

  function totpSection() {
    const err = h('p', { id: 'totp-error', class: 'form-error', role: 'alert' });
    const pw = [h('label', { for: 'totp-password', text: t('account.current') }), h('input', { id: 'totp-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true })];
    if (info.secondFactor) {
      const form = h('form', { id: 'totp-disable-form', class: 'card auth', novalidate: true },
        h('h2', { text: t('account.totpTitle') }),
        h('p', { id: 'totp-state', 'data-state': 'on', text: t('account.totpOn', { n: info.recoveryCodesLeft }) }),
        info.totpRequired ? h('p', { class: 'muted', text: t('account.totpRequired') }) : [
          pw,
          h('label', { for: 'totp-off-code', text: t('login.code') }),
          h('input', { id: 'totp-off-code', name: 'code', type: 'text', autocomplete: 'one-time-code', required: true }),
          err,
          h('button', { type: 'submit', class: 'danger', 'data-action': 'totp-disable', text: t('account.totpDisable') }),
        ]);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        try {
          await api('POST', '/api/account/totp/disable', { password: form.elements.password.value, code: form.elements.code.value.trim() });
          notice = t('account.disabled');
          await load();
        } catch (e) {
          err.textContent = wrongText(e);
        }
      });
      return form;
    }
    if (!enrolment) {
      return h('div', { class: 'card auth' },
        h('h2', { text: t('account.totpTitle') }),
        h('p', { id: 'totp-state', 'data-state': 'off', text: t('account.totpOff') }),
        err,
        h('button', { type: 'button', 'data-action': 'totp-start', text: t('account.totpStart'), onclick: async () => {
          try {
            enrolment = await api('POST', '/api/account/totp/new', {});
            render();
          } catch (e) {
            err.textContent = errText(e);
          }
        } }));
    }
    const form = h('form', { id: 'totp-enable-form', class: 'card auth', novalidate: true },
      h('h2', { text: t('account.totpTitle') }),
      enrolmentBlock(enrolment, 'account-totp'),
      pw,
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'totp-enable', text: t('account.totpEnable') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        const r = await api('POST', '/api/account/totp', { password: form.elements.password.value, secret: enrolment.secret, code: form.elements.totpCode.value.trim() });
        enrolment = null;
        recovery = r.recoveryCodes;
        render();
        // The rest of the page opens once a required second factor is enrolled (app.js).
        window.dispatchEvent(new Event('cgw:second-factor'));
      } catch (e) {
        err.textContent = wrongText(e);
      }
    });
    return form;
  }

  function render() {
    if (recovery) {
      root.replaceChildren(recoveryBlock(recovery, () => { recovery = null; load(); }));
      return;
    }
    if (!info) {
      root.replaceChildren(h('p', { class: error ? 'banner error' : 'muted', text: error || t('app.loading') }));
      return;
    }
    root.replaceChildren(h('section', { id: 'account' },
      h('h1', { text: t('account.title') }),
      info.totpRequired && !info.secondFactor && h('p', { id: 'account-must-enrol', class: 'banner error', role: 'alert', text: t('account.mustEnrol') }),
      notice && h('p', { id: 'account-notice', class: 'banner ok', role: 'status', text: notice }),
      passwordForm(),
      totpSection()));
  }

  render();
  load();
  return { render, destroy: () => { gone = true; } };
}
