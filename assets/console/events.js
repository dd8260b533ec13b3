// Events: staff open one when the party starts, close it when it ends, rename it; captures
// taken meanwhile belong to it. Also the event picker that Gallery and Statistics share
// (the choice is kept for the session, so both pages look at the same event).
import { api, ApiError } from './api.js';
import { h, clear, field, modal } from './dom.js';
import { t, fmtDate, fmtDay } from './i18n.js';

const PICK = 'kiosk-console-event';

export function eventLabel(e) {
  return `${e.name} · ${fmtDay(e.starts_at)}${e.open ? ` (${t('openMark')})` : ''}`;
}

// A labelled <select>: "All captures", then every event, latest first. `onChange(id)`
// gets '' for all; the returned select's value is the current choice.
export async function eventPicker(onChange) {
  const [wrap, sel] = field(t('event'), { tag: 'select', name: 'event_id' });
  sel.append(h('option', { value: '' }, t('allCaptures')));
  let list = [];
  try { list = (await api('/admin/events')).items || []; } catch { /* then only "all" */ }
  for (const e of list) sel.append(h('option', { value: e.id }, eventLabel(e)));
  const saved = sessionStorage.getItem(PICK);
  sel.value = list.some((e) => e.id === saved) ? saved : '';
  sel.addEventListener('change', () => { sessionStorage.setItem(PICK, sel.value); onChange(sel.value); });
  return [wrap, sel];
}

// The server's refusal beside its field (its message says what to change).
function refuse(input, err, ex) {
  err.textContent = ex instanceof ApiError ? ex.message : `${t('error')}: ${ex.message}`;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

function renameDialog(e, onDone) {
  const dlg = modal(`${t('rename')} ${e.name}`, 'confirm');
  const [nw, name, err] = field(t('eventName'), { type: 'text', name: 'name', maxlength: 100, required: true, value: e.name });
  const form = h('form', {}, nw, h('div', { class: 'actions' },
    h('button', { type: 'submit' }, t('save')),
    h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, t('cancel'))));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    name.removeAttribute('aria-invalid');
    try {
      await api(`/admin/events/${encodeURIComponent(e.id)}`, { method: 'PATCH', json: { name: name.value } });
      dlg.close();
      onDone();
    } catch (ex) { refuse(name, err, ex); }
  });
  dlg.append(form);
  dlg.showModal();
  name.focus();
}

export async function render(root) {
  const status = h('p', { role: 'status' });
  const [nw, name, err] = field(t('eventName'), { type: 'text', name: 'name', maxlength: 100, required: true, autocomplete: 'off' });
  const form = h('form', { class: 'card' }, h('h2', {}, t('newEvent')), h('p', { class: 'hint' }, t('eventHelp')), nw,
    h('button', { type: 'submit' }, t('openEvent')));
  const body = h('tbody');
  const table = h('div', { class: 'scroll' }, h('table', { class: 'cards' },
    h('thead', {}, h('tr', {}, ...[t('name'), t('start'), t('end'), t('captures'), t('actions')]
      .map((x) => h('th', { scope: 'col' }, x)))), body));
  const empty = h('p', { hidden: true }, t('noEvents'));
  root.append(form, status, h('h2', {}, t('events')), empty, table);

  const patch = (e, json, done) => async () => {
    status.textContent = '';
    try {
      await api(`/admin/events/${encodeURIComponent(e.id)}`, { method: 'PATCH', json });
      status.textContent = t(done);
      await load();
    } catch (ex) { status.textContent = ex instanceof ApiError ? ex.message : `${t('error')}: ${ex.message}`; }
  };
  async function load() {
    const list = (await api('/admin/events')).items || [];
    clear(body);
    empty.hidden = list.length > 0;
    table.hidden = list.length === 0;
    const anyOpen = list.some((e) => e.open);
    list.forEach((e, i) => {
      const actions = h('td', { 'data-label': t('actions') }, h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('rename')} ${e.name}`,
          onclick: () => renameDialog(e, async () => { status.textContent = t('renamed'); await load(); }) }, t('rename')),
        e.open ? h('button', { type: 'button', 'aria-label': `${t('endEvent')} ${e.name}`,
          onclick: patch(e, { ends_at: 'now' }, 'eventClosed') }, t('endEvent')) : null,
        // Closed by mistake: the latest one can be reopened while nothing else is open.
        !e.open && !anyOpen && i === 0 && e.ends_at ? h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('reopen')} ${e.name}`,
          onclick: patch(e, { ends_at: null }, 'eventReopened') }, t('reopen')) : null));
      body.append(h('tr', { 'data-id': e.id },
        h('td', { 'data-label': t('name') }, h('strong', {}, e.name), e.open ? h('span', { class: 'badge open' }, ` ${t('openNow')}`) : null),
        h('td', { 'data-label': t('start') }, fmtDate(e.starts_at)),
        h('td', { 'data-label': t('end') }, e.ends_at ? fmtDate(e.ends_at) : '–'),
        h('td', { 'data-label': t('captures') }, String(e.captures ?? 0)), actions));
    });
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    status.textContent = '';
    name.removeAttribute('aria-invalid');
    try {
      const e = await api('/admin/events', { method: 'POST', json: { name: name.value } });
      form.reset();
      status.textContent = `${t('eventOpened')} ${e.name}`;
      await load();
    } catch (ex) { refuse(name, err, ex); }
  });
  await load();
  return null;
}
