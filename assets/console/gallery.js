// Gallery: captures newest first as thumbnails, paged by cursor as one scrolls, filters
// (the event among them), a detail view (metadata, event, sync state per remote, SMS
// history, the photo) and deletion after a confirmation dialog. `#gallery/{id}` opens a
// capture's detail directly.
import { api, blobUrl, download } from './api.js';
import { h, clear, bytes, field, modal, confirmDialog } from './dom.js';
import { t, fmtDate } from './i18n.js';
import { eventPicker } from './events.js';

const PAGE = 60;

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

// What a remote holds of the capture: when it got it, or why not yet.
function remoteState(at, check) {
  if (at) return fmtDate(at);
  if (check && check.configured === false) return t('notConfigured');
  return t('notYet');
}

export function smsTable(list) {
  if (!list.length) return h('p', {}, t('noSms'));
  const body = h('tbody');
  for (const s of list) {
    body.append(h('tr', {}, h('td', { 'data-label': t('created') }, fmtDate(s.created_at)),
      h('td', { 'data-label': t('phone') }, s.phone || '–'), h('td', { 'data-label': t('status') }, t(`st_${s.status}`)),
      h('td', { 'data-label': t('attempts') }, String(s.attempts ?? '–')), h('td', { 'data-label': t('lastError') }, s.last_error || '')));
  }
  return h('div', { class: 'scroll' }, h('table', { class: 'cards' },
    h('thead', {}, h('tr', {}, ...[t('created'), t('phone'), t('status'), t('attempts'), t('lastError')].map((x) => h('th', { scope: 'col' }, x)))),
    body));
}

async function detail(c, onDeleted) {
  const dlg = modal(`${t('capture')} ${c.id}`, 'detail');
  const out = h('p', { role: 'status' });
  dlg.append(h('p', { class: 'hint' }, t('loading')));
  dlg.showModal();
  let d;
  let health = {};
  try {
    [d, health] = await Promise.all([api(`/admin/captures/${encodeURIComponent(c.id)}`),
      api('/health').then((r) => r.checks || {}).catch(() => ({}))]);
  } catch (e) {
    dlg.lastChild.textContent = `${t('error')}: ${e.message}`;
    dlg.append(h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('close')));
    return;
  }
  dlg.lastChild.remove();
  // The full photo behind the key (served on every listener with /admin, ADMIN_LISTEN
  // too); the thumbnail if it cannot be had.
  const img = h('img', { alt: `${t('photo')} ${d.id}`, class: 'big', width: d.width, height: d.height });
  blobUrl(d.photo_url).then((u) => { img.src = u; }).catch(() => thumbSrc(img, d));
  const dl = h('dl');
  const row = (k, v) => dl.append(h('dt', {}, k), h('dd', {}, v ?? '–'));
  row('ID', d.id);
  row(t('created'), fmtDate(d.created_at));
  if (d.taken_at) row(t('taken'), fmtDate(d.taken_at));
  row(t('size'), bytes(d.bytes));
  row(t('dims'), `${d.width} × ${d.height}`);
  row(t('background'), d.background_name);
  row(t('event'), d.event_name ?? t('noEvent'));
  row('SHA-256', d.sha256);
  if (d.file_missing) row(t('photo'), t('fileMissing'));
  const s = d.sync || {};
  const sync = h('dl');
  const srow = (k, v) => sync.append(h('dt', {}, k), h('dd', {}, v ?? '–'));
  srow(t('status'), s.is_synced ? `${t('synced')} ${s.synced_at ? fmtDate(s.synced_at) : ''}` : t('notSynced'));
  srow(t('remoteStorage'), remoteState(s.remote_file_at, health.remote_storage));
  srow(t('remoteDb'), remoteState(s.remote_db_at, health.remote_db));
  if (s.job) {
    srow(t('attempts'), String(s.job.attempts));
    if (s.job.last_error) srow(t('lastError'), s.job.last_error);
    srow(t('nextAttempt'), fmtDate(s.job.next_attempt_at));
  }
  const del = h('button', { type: 'button', class: 'danger', onclick: async () => {
    if (!await confirmDialog(t('deleteTitle'), t('confirmDelete'), t('deleteForGood'), t('cancel'))) return;
    try {
      await api(`/admin/captures/${encodeURIComponent(d.id)}`, { method: 'DELETE' });
      dlg.close(); onDeleted(d.id);
    } catch (e) { out.textContent = `${t('error')}: ${e.message}`; }
  } }, t('del'));
  dlg.append(img, dl, h('h3', {}, t('syncState')), sync, h('h3', {}, t('smsHistory')), smsTable(d.sms || []), out,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: () => download(d.photo_url, `${d.id}.jpg`)
      .catch((e) => { out.textContent = `${t('error')}: ${e.message}`; }) }, t('download')), del,
      h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('close'))));
}

export async function render(root) {
  const [fw, from] = field(t('from'), { type: 'date', name: 'from' });
  const [tw, to] = field(t('to'), { type: 'date', name: 'to' });
  const [sw, synced] = choice(t('synced'), 'synced');
  const [mw, hasSms] = choice(t('withSms'), 'has_sms');
  // A new event choice is a new listing at once, from its first page.
  const [ew, ev] = await eventPicker(() => form.requestSubmit());
  const form = h('form', { class: 'filters' }, ew, fw, tw, sw, mw, h('button', { type: 'submit' }, t('apply')));
  const grid = h('ul', { class: 'gallery' });
  const status = h('p', { role: 'status' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, t('more'));
  const sentinel = h('div', { class: 'sentinel' }, more);
  root.append(form, status, grid, sentinel);
  let cursor = null; let loading = false; let done = false; let generation = 0;
  const deleted = (li) => (id) => { li?.remove(); status.textContent = `${t('deleted')} ${id}`; };

  const card = (c) => {
    const img = h('img', { alt: `${t('capture')} ${c.id}`, loading: 'lazy', width: 160, height: 120 });
    thumbSrc(img, c);
    const li = h('li', { 'data-id': c.id }, h('button', { type: 'button', class: 'thumb',
      onclick: () => detail(c, deleted(li)) }, img,
    h('span', { class: 'cap' }, fmtDate(c.created_at)), h('span', { class: `dot ${c.is_synced ? 'ok' : 'pending'}`, 'aria-hidden': 'true' }, c.is_synced ? '✓' : '…')));
    return li;
  };
  const load = async () => {
    if (loading || done) return;
    loading = true;
    const mine = generation;
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, el] of [['event_id', ev], ['from', from], ['to', to], ['synced', synced], ['has_sms', hasSms]]) if (el.value) q.set(k, el.value);
    if (cursor) q.set('cursor', cursor);
    let page = null;
    try { page = await api(`/admin/captures?${q}`); } catch (e) { if (mine === generation) status.textContent = `${t('error')}: ${e.message}`; }
    if (mine !== generation) return; // the filters changed meanwhile
    loading = false;
    if (!page) return;
    for (const c of page.items) grid.append(card(c));
    cursor = page.next_cursor; done = !cursor;
    more.hidden = done;
    status.textContent = grid.children.length ? '' : t('noCaptures');
    // Still on screen after a short page: keep filling.
    if (!done && sentinel.getBoundingClientRect().top < innerHeight) load();
  };
  more.addEventListener('click', load);
  form.addEventListener('submit', (e) => {
    e.preventDefault(); generation += 1; clear(grid); status.textContent = ''; cursor = null; done = false; loading = false; load();
  });
  // An entry can be older than the page it is delivered to (computed while the grid was
  // still empty): the sentinel's position now decides.
  const io = new IntersectionObserver((es) => {
    if (es.some((e) => e.isIntersecting) && sentinel.getBoundingClientRect().top < innerHeight) load();
  });
  io.observe(sentinel);
  await load();
  const deep = decodeURIComponent(location.hash.split('/')[1] || '');
  if (deep) {
    history.replaceState(null, '', '#gallery');
    detail({ id: deep }, (id) => deleted(grid.querySelector(`li[data-id="${CSS.escape(id)}"]`))(id));
  }
  return () => io.disconnect();
}
