// Overview: status tiles from /health, refreshed every few seconds, and the actions.
import { api, download } from './api.js';
import { h, clear, bytes } from './dom.js';
import { t, fmtDate } from './i18n.js';

function tile(title, status, ...lines) {
  return h('div', { class: `tile st-${status || 'ok'}` }, h('h2', {}, title),
    h('p', { class: 'badge' }, t(status) || status), ...lines.filter(Boolean).map((l) => h('p', {}, l)));
}

function remote(c) {
  if (!c) return null;
  return c.configured === false ? t('notConfigured') : (c.message || '');
}

function draw(grid, r) {
  clear(grid);
  const c = r.checks || {};
  const disk = c.disk || {};
  const ob = c.outbox || {};
  const db = c.local_db || {};
  const sms = c.sms || {};
  const workers = (c.workers && c.workers.workers) || {};
  const failed = (c.workers && c.workers.failed) || [];
  grid.append(
    tile(t('status'), r.status, `${r.kiosk_id} · v${r.version}`, `${t('updated')}: ${fmtDate(r.generated_at)}`),
    tile(t('disk'), disk.status, `${bytes(disk.free_bytes)} ${t('free')} (${disk.free_percent ?? '–'} %)`, disk.message),
    tile(t('backlog'), ob.status, `${ob.pending ?? 0} · ${t('oldest')}: ${ob.oldest_pending_since ? fmtDate(ob.oldest_pending_since) : t('none')}`),
    tile(t('captures'), db.status, `${db.captures ?? 0} · ${db.unsynced ?? 0} ${t('notSynced')}`, db.sync),
    tile(t('remoteDb'), c.remote_db?.status, remote(c.remote_db)),
    tile(t('remoteStorage'), c.remote_storage?.status, remote(c.remote_storage)),
    tile(t('smsCredits'), sms.status, sms.configured === false ? t('notConfigured') : String(sms.credits_left ?? '–'), sms.message),
    tile(t('clock'), c.clock?.status, fmtDate(c.clock?.system_time), c.clock?.state),
    tile(t('workers'), c.workers?.status, `${Object.keys(workers).length}`, failed.length ? failed.join(', ') : null),
  );
}

export async function render(root) {
  const out = h('p', { class: 'notice', role: 'status' });
  const act = (label, fn) => h('button', { type: 'button', onclick: async () => {
    out.textContent = '';
    try { await fn(); out.textContent = t('done'); } catch (e) { out.textContent = `${t('error')}: ${e.message}`; }
  } }, label);
  root.append(h('div', { class: 'actions' },
    act(t('syncNow'), () => api('/admin/sync', { method: 'POST' })),
    act(t('cleanNow'), () => api('/admin/cleanup', { method: 'POST' })),
    act(t('diag'), () => download('/admin/diag', 'kiosk-diagnostics.json'))), out);
  const grid = h('div', { class: 'tiles' });
  root.append(grid);
  const refresh = async () => { try { draw(grid, await api('/health')); } catch { /* shown next time */ } };
  await refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
