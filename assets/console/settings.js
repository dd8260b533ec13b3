// Settings: a form built from /admin/config (the 422's message shown beside its field),
// the read-only facts, and the GDPR erasure form.
import { api } from './api.js';
import { h, field } from './dom.js';
import { t } from './i18n.js';

function facts(obj, prefix = '') {
  const out = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) out.push(...facts(v, `${prefix}${k}.`));
    else out.push([`${prefix}${k}`, Array.isArray(v) ? v.join(', ') : v]);
  }
  return out;
}

export async function render(root) {
  const cfg = await api('/admin/config');
  const inputs = {}; const errors = {};
  const status = h('p', { role: 'status' });
  const form = h('form', { class: 'card settings', novalidate: true });
  for (const [k, v] of Object.entries(cfg.settings)) {
    let attrs;
    if (typeof v === 'boolean') attrs = { type: 'checkbox' };
    else if (typeof v === 'number') attrs = { type: 'number', step: 'any', value: v };
    else if (k === 'sms_template') attrs = { tag: 'textarea', rows: 3 };
    else if (k === 'share_template') attrs = { tag: 'textarea', rows: 8 };
    else attrs = { type: 'text', value: v };
    const [wrap, input, err] = field(k, { ...attrs, name: k });
    if (typeof v === 'boolean') { input.checked = v; wrap.classList.add('check'); }
    if (attrs.tag === 'textarea') input.value = v;
    inputs[k] = input; errors[k] = err;
    form.append(wrap);
  }
  form.append(h('button', { type: 'submit' }, t('save')), status);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const err of Object.values(errors)) err.textContent = '';
    const change = {};
    for (const [k, v] of Object.entries(cfg.settings)) {
      const el = inputs[k];
      let nv;
      if (typeof v === 'boolean') nv = el.checked;
      else if (typeof v === 'number') nv = el.value.trim() === '' || Number.isNaN(Number(el.value)) ? el.value : Number(el.value);
      else nv = el.value;
      if (nv !== v) change[k] = nv;
    }
    try {
      const now = await api('/admin/config', { method: 'PUT', json: change });
      cfg.settings = now.settings;
      status.textContent = t('saved');
    } catch (ex) {
      if (ex.key && errors[ex.key]) { errors[ex.key].textContent = ex.message; inputs[ex.key].setAttribute('aria-invalid', 'true'); inputs[ex.key].focus(); }
      else status.textContent = `${t('error')}: ${ex.message}`;
    }
  });

  const dl = h('dl', { class: 'facts' });
  for (const [k, v] of facts(cfg.read_only)) dl.append(h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '–' : String(v)));

  const [pw, phone, perr] = field(t('erasePhone'), { type: 'tel', name: 'phone', autocomplete: 'off', required: true });
  const receipt = h('div', { role: 'status' });
  const erase = h('form', { class: 'card' }, h('h2', {}, t('erase')), pw, h('button', { type: 'submit', class: 'danger' }, t('eraseButton')), receipt);
  erase.addEventListener('submit', async (e) => {
    e.preventDefault(); perr.textContent = ''; receipt.replaceChildren();
    if (!confirm(t('confirmErase'))) return;
    try {
      const r = await api('/admin/gdpr/erase', { method: 'POST', json: { phone: phone.value } });
      const rd = h('dl');
      for (const [k, v] of facts(r)) rd.append(h('dt', {}, k), h('dd', {}, String(v ?? '–')));
      receipt.append(h('h3', {}, t('receipt')), rd);
    } catch (ex) { perr.textContent = ex.message; }
  });
  root.append(form, erase, h('section', { class: 'card' }, h('h2', {}, t('readOnly')), dl));
  return null;
}
