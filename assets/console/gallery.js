// Gallery: captures newest first as thumbnails, paged by cursor as one scrolls, filters,
// a detail view and deletion with confirmation.
import { api, blobUrl } from './api.js';
import { h, clear, bytes, field } from './dom.js';
import { t, fmtDate } from './i18n.js';

function thumbSrc(img, c) {
  const src = c.thumbnail_url || c.url;
  if (src.startsWith('/admin/')) blobUrl(src).then((u) => { img.src = u; }).catch(() => {});
  else img.src = src;
}

function choice(label, name) {
  const [wrap, sel] = field(label, { tag: 'select', name });
  for (const [v, l] of [['', t('any')], ['true', t('yes')], ['false', t('no')]]) sel.append(h('option', { value: v }, l));
  return [wrap, sel];
}

function maskedPhone(s) { return s.phone_masked || s.phone || '–'; }

async function detail(c, onDeleted) {
  const dlg = h('dialog', { class: 'detail', 'aria-labelledby': 'detail-title' });
  let d = c;
  try { d = { ...c, ...(await api(`/admin/captures/${encodeURIComponent(c.id)}`)) }; } catch { /* list fields */ }
  const img = h('img', { alt: `${t('capture')} ${d.id}`, class: 'big' });
  img.src = d.url;
  const dl = h('dl');
  const row = (k, v) => dl.append(h('dt', {}, k), h('dd', {}, v ?? '–'));
  row('ID', d.id);
  row(t('created'), fmtDate(d.created_at));
  row(t('size'), bytes(d.bytes));
  row(t('dims'), `${d.width} × ${d.height}`);
  row(t('background'), d.background_name);
  row(t('syncState'), d.is_synced ? `${t('synced')} ${d.synced_at ? fmtDate(d.synced_at) : ''}` : t('notSynced'));
  const smsList = h('ul', { class: 'plain' });
  for (const s of d.sms || []) {
    smsList.append(h('li', {}, `${maskedPhone(s)} · ${s.status} · ${fmtDate(s.created_at)}${s.last_error ? ` · ${s.last_error}` : ''}`));
  }
  if (!(d.sms || []).length) smsList.append(h('li', {}, d.sms_count ? String(d.sms_count) : t('noSms')));
  const out = h('p', { role: 'status' });
  const del = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!confirm(t('confirmDelete'))) return;
    try {
      await api(`/admin/captures/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
      dlg.close(); dlg.remove(); onDeleted(d.id);
    } catch (e) { out.textContent = `${t('error')}: ${e.message}`; }
  } }, t('del'));
  dlg.append(h('h2', { id: 'detail-title' }, `${t('capture')} ${d.id}`), img, dl,
    h('h3', {}, t('smsHistory')), smsList, out,
    h('div', { class: 'actions' }, h('a', { href: d.download_url, class: 'button secondary', download: '' }, t('download')), del,
      h('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); dlg.remove(); } }, t('close'))));
  document.body.append(dlg);
  dlg.showModal();
}

export async function render(root) {
  const [fw, from] = field(t('from'), { type: 'date', name: 'from' });
  const [tw, to] = field(t('to'), { type: 'date', name: 'to' });
  const [sw, synced] = choice(t('synced'), 'synced');
  const [mw, hasSms] = choice(t('withSms'), 'has_sms');
  const form = h('form', { class: 'filters' }, fw, tw, sw, mw, h('button', { type: 'submit' }, t('apply')));
  const grid = h('ul', { class: 'gallery' });
  const status = h('p', { role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary' }, t('more'));
  const sentinel = h('div', { class: 'sentinel' }, more);
  root.append(form, status, grid, sentinel);
  let cursor = null; let loading = false; let done = false;

  const card = (c) => {
    const img = h('img', { alt: `${t('capture')} ${c.id}`, loading: 'lazy', width: 160, height: 120 });
    thumbSrc(img, c);
    const li = h('li', { 'data-id': c.id }, h('button', { type: 'button', class: 'thumb',
      onclick: () => detail(c, (id) => { li.remove(); status.textContent = `${t('deleted')} ${id}`; }) }, img,
    h('span', { class: 'cap' }, fmtDate(c.created_at)), h('span', { class: `dot ${c.is_synced ? 'ok' : 'pending'}` }, c.is_synced ? '✓' : '…')));
    return li;
  };
  const load = async () => {
    if (loading || done) return;
    loading = true;
    const q = new URLSearchParams({ limit: '60' });
    for (const [k, el] of [['from', from], ['to', to], ['synced', synced], ['has_sms', hasSms]]) if (el.value) q.set(k, el.value);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api(`/admin/captures?${q}`);
      for (const c of page.items) grid.append(card(c));
      cursor = page.next_cursor; done = !cursor;
      more.hidden = done;
      if (!grid.children.length) status.textContent = t('noCaptures');
    } catch (e) { status.textContent = `${t('error')}: ${e.message}`; }
    loading = false;
  };
  more.addEventListener('click', load);
  form.addEventListener('submit', (e) => { e.preventDefault(); clear(grid); status.textContent = ''; cursor = null; done = false; load(); });
  const io = new IntersectionObserver((es) => { if (es.some((e) => e.isIntersecting)) load(); });
  io.observe(sentinel);
  await load();
  return () => io.disconnect();
}
