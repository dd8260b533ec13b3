// Text messages: status, attempts, last error, masked number; retry of a failed one.
import { api } from './api.js';
import { h } from './dom.js';
import { t, fmtDate } from './i18n.js';

export async function render(root) {
  const status = h('p', { role: 'status' });
  root.append(status);
  let page;
  try { page = await api('/admin/sms?limit=100'); } catch (e) {
    status.textContent = e.status === 404 || e.status === 405 ? t('smsUnavailable') : `${t('error')}: ${e.message}`;
    return null;
  }
  const items = page.items || [];
  if (!items.length) { status.textContent = t('noSms'); return null; }
  const body = h('tbody');
  for (const s of items) {
    const cell = h('td');
    if (s.status === 'failed' || s.retryable) {
      cell.append(h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('retry')} ${s.id}`, onclick: async () => {
        try { await api(`/admin/sms/${encodeURIComponent(s.id)}/retry`, { method: 'POST' }); status.textContent = t('done'); }
        catch (e) { status.textContent = `${t('error')}: ${e.message}`; }
      } }, t('retry')));
    }
    body.append(h('tr', {}, h('td', {}, fmtDate(s.created_at)), h('td', {}, s.phone_masked || s.phone || '–'),
      h('td', {}, s.status), h('td', {}, String(s.attempts ?? '–')), h('td', {}, s.last_error || ''),
      h('td', {}, s.capture_id || ''), cell));
  }
  root.append(h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, ...[t('created'), t('phone'), t('status'), t('attempts'), t('lastError'), t('capture'), ''].map((x) => h('th', { scope: 'col' }, x)))),
    body)));
  return null;
}
