// First-start password setup and the login form.
import { t } from '../i18n.js';
import { api, errText } from '../api.js';
import { h } from '../dom.js';

function busy(form, on) {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
}

export function mountLogin(root, { onSuccess }) {
  let message = '';
  function render() {
    const err = h('p', { id: 'login-error', class: 'form-error', role: 'alert', text: message, hidden: !message });
    const form = h('form', { id: 'login-form', class: 'card auth', novalidate: true },
      h('h1', { text: t('login.title') }),
      h('label', { for: 'login-password', text: t('login.password') }),
      h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'login', text: t('login.submit') }));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const password = form.elements.password.value;
      if (!password) return;
      busy(form, true);
      try {
        await api('POST', '/api/login', { password }, { auth: false });
        message = '';
        onSuccess();
        return;
      } catch (e) {
        if (e.status === 401) message = t('login.wrong');
        else if (e.status === 429) message = t('login.locked', { n: Math.max(1, Math.ceil((e.retryAfterS ?? 900) / 60)) });
        else message = errText(e);
      }
      busy(form, false);
      err.textContent = message;
      err.hidden = false;
      form.elements.password.select();
    });
    root.replaceChildren(form);
    form.elements.password.focus();
  }
  render();
  return { render };
}

export function mountSetup(root, { onSuccess, onAlreadySet }) {
  let message = '';
  function render() {
    const err = h('p', { id: 'setup-error', class: 'form-error', role: 'alert', text: message, hidden: !message });
    const field = (name, key) => [
      h('label', { for: `setup-${name}`, text: t(key) }),
      h('input', { id: `setup-${name}`, name, type: 'password', autocomplete: 'new-password', minlength: 10, required: true }),
    ];
    const form = h('form', { id: 'setup-form', class: 'card auth', novalidate: true },
      h('h1', { text: t('setup.title') }),
      h('p', { class: 'muted', text: t('setup.intro') }),
      field('password', 'setup.password'),
      field('password2', 'setup.password2'),
      err,
      h('button', { type: 'submit', class: 'primary', 'data-action': 'setup', text: t('setup.submit') }));
    const show = (m) => { message = m; err.textContent = m; err.hidden = !m; };
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const p1 = form.elements.password.value;
      const p2 = form.elements.password2.value;
      if ([...p1].length < 10) return show(t('setup.tooShort'));
      if (p1 !== p2) return show(t('setup.mismatch'));
      busy(form, true);
      try {
        await api('POST', '/api/setup', { password: p1 }, { auth: false });
        message = '';
        onSuccess();
        return;
      } catch (e) {
        if (e.status === 403 && e.body.error !== 'csrf') show(t('setup.notLan'));
        else if (e.status === 409) {
          show(t('setup.alreadySet'));
          setTimeout(onAlreadySet, 1500);
        } else show(errText(e));
      }
      busy(form, false);
    });
    root.replaceChildren(form);
    form.elements.password.focus();
  }
  render();
  return { render };
}
