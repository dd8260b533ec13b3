// Text messages: status, attempts, last error, masked number and capture, filters and
// cursor paging; a failed one is retried with the guest's number typed again (the kiosk
// forgets numbers once an SMS is final, and the server checks it is the same number).
import { api, ApiError } from './api.js';
import { h, clear, field, modal } from './dom.js';
import { t, fmtDate } from './i18n.js';

const PAGE = 50;
const STATUSES = ['waiting_for_sync', 'queued', 'sending', 'sent', 'failed', 'expired', 'cancelled'];

function retryDialog(s, onQueued) {
  const dlg = modal(`${t('retryTitle')} ${s.phone}`, 'retry');
  const [pw, phone, err] = field(t('guestPhone'), { type: 'tel', name: 'phone', autocomplete: 'off', required: true, inputmode: 'tel' }, t('retryHelp'));
  const form = h('form', {}, pw, h('div', { class: 'actions' },
    h('button', { type: 'submit' }, t('retry')),
    h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('cancel'))));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    phone.removeAttribute('aria-invalid');
    try {
      const a = await api(`/admin/sms/${encodeURIComponent(s.id)}/retry`, { method: 'POST', json: { phone: phone.value } });
      dlg.close();
      onQueued(a);
    } catch (ex) {
      err.textContent = ex instanceof ApiError ? ex.message : `${t('error')}: ${ex.message}`;
      phone.setAttribute('aria-invalid', 'true');
      phone.focus();
    }
  });
  dlg.append(form);
  dlg.showModal();
  phone.focus();
}

export async function render(root) {
  const [stw, st] = field(t('status'), { tag: 'select', name: 'status' });
  st.append(h('option', { value: '' }, t('any')), ...STATUSES.map((v) => h('option', { value: v }, t(`st_${v}`))));
  const [fw, from] = field(t('from'), { type: 'date', name: 'from' });
  const [tw, to] = field(t('to'), { type: 'date', name: 'to' });
  const form = h('form', { class: 'filters' }, stw, fw, tw, h('button', { type: 'submit' }, t('apply')));
  const status = h('p', { role: 'status' });
  const body = h('tbody');
  const table = h('div', { class: 'scroll' }, h('table', { class: 'cards' },
    h('thead', {}, h('tr', {}, ...[t('created'), t('phone'), t('status'), t('attempts'), t('lastError'), t('capture'), t('actions')]
      .map((x) => h('th', { scope: 'col' }, x)))), body));
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('more'));
  root.append(form, status, table, h('div', { class: 'sentinel' }, more));
  let cursor = null;

  const row = (s) => {
    const cells = {
      status: h('td', { 'data-label': t('status') }, t(`st_${s.status}`)),
      attempts: h('td', { 'data-label': t('attempts') }, String(s.attempts ?? '–')),
      action: h('td', { 'data-label': t('actions') }),
    };
    const tr = h('tr', { 'data-id': s.id }, h('td', { 'data-label': t('created') }, fmtDate(s.created_at)),
      h('td', { 'data-label': t('phone') }, s.phone || '–'), cells.status, cells.attempts,
      h('td', { 'data-label': t('lastError') }, s.last_error || ''),
      h('td', { 'data-label': t('capture') }, h('a', { href: `#gallery/${encodeURIComponent(s.capture_id)}` }, s.capture_id)),
      cells.action);
    if (s.retryable) {
      cells.action.append(h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('retry')} ${s.id}`,
        onclick: () => retryDialog(s, (a) => {
          cells.status.textContent = t(`st_${a.status}`);
          cells.attempts.textContent = String(a.attempts);
          clear(cells.action);
          status.textContent = `${a.phone} · ${t('requeued')}`;
        }) }, t('retry')));
    }
    return tr;
  };
  const load = async () => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, el] of [['status', st], ['from', from], ['to', to]]) if (el.value) q.set(k, el.value);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api(`/admin/sms?${q}`);
      for (const s of page.items || []) body.append(row(s));
      cursor = page.next_cursor; more.hidden = !cursor;
      table.hidden = !body.children.length;
      if (!body.children.length) status.textContent = t('noSms');
    } catch (e) {
      status.textContent = e.status === 404 || e.status === 405 ? t('smsUnavailable') : `${t('error')}: ${e.message}`;
    }
  };
  more.addEventListener('click', load);
  form.addEventListener('submit', (e) => { e.preventDefault(); clear(body); status.textContent = ''; cursor = null; load(); });
  await load();
  return null;
}
