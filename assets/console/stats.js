// Statistics: captures and SMS per hour and per day, drawn as SVG bars; Excel export; both
// for every capture or one event's.
import { api, download } from './api.js';
import { h, s, clear } from './dom.js';
import { t, lang, fmtDate } from './i18n.js';
import { eventPicker } from './events.js';

function chart(title, rows, label, series) {
  const W = 720; const H = 200; const pad = 24;
  const max = Math.max(1, ...rows.map((r) => Math.max(...series.map((k) => r[k] || 0))));
  const bw = (W - pad) / Math.max(1, rows.length);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H + 30}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.append(s('line', { x1: pad, y1: H, x2: W, y2: H, class: 'axis' }),
    s('text', { x: 0, y: 12, class: 'tick' }, String(max)), s('text', { x: 0, y: H, class: 'tick' }, '0'));
  rows.forEach((r, i) => {
    series.forEach((k, j) => {
      const v = r[k] || 0;
      const bh = (v / max) * (H - 10);
      const w = bw / series.length - 1;
      const rect = s('rect', { x: pad + i * bw + j * (w + 0.5), y: H - bh, width: Math.max(1, w), height: bh, class: `bar s${j}`, 'data-series': k });
      rect.append(s('title', {}, `${label(r)}: ${v} ${k === 'captures' ? t('captures') : t('smsSent')}`));
      svg.append(rect);
    });
    if (i % Math.ceil(rows.length / 8) === 0) svg.append(s('text', { x: pad + i * bw, y: H + 16, class: 'tick' }, label(r)));
  });
  const legend = h('p', { class: 'legend' }, h('span', { class: 'key s0' }, t('captures')), ' ', h('span', { class: 'key s1' }, t('smsSent')));
  return h('figure', { class: 'card' }, h('figcaption', {}, title), svg, legend);
}

export async function render(root) {
  const out = h('p', { role: 'status' });
  const body = h('div');
  // The figures and the Excel file follow the event picked (all captures by default).
  const [ew, ev] = await eventPicker(() => draw().catch((e) => { out.textContent = `${t('error')}: ${e.message}`; }));
  const only = () => (ev.value ? `?event_id=${encodeURIComponent(ev.value)}` : '');
  root.append(h('div', { class: 'filters pick' }, ew), h('div', { class: 'actions' }, h('button', { type: 'button', onclick: async () => {
    try { await download(`/admin/export/excel${only()}`, 'captures.xlsx'); out.textContent = t('done'); } catch (e) { out.textContent = e.message; }
  } }, t('exportExcel'))), out, body);
  let generation = 0;
  const draw = async () => {
    generation += 1;
    const mine = generation;
    const st = await api(`/admin/stats${only()}`);
    if (mine !== generation) return; // another event was picked meanwhile
    clear(body);
    out.textContent = '';
    if (st.event) {
      body.append(h('p', { class: 'hint' }, `${t('event')}: `, h('strong', {}, st.event.name),
        ` · ${fmtDate(st.event.starts_at)} – ${st.event.ends_at ? fmtDate(st.event.ends_at) : t('openNow')}`));
    }
    body.append(h('div', { class: 'tiles' },
      h('div', { class: 'tile' }, h('h2', {}, t('captures')), h('p', { class: 'big-number' }, String(st.captures?.total ?? 0)),
        h('p', {}, `${t('today')}: ${st.today?.captures ?? 0}`)),
      h('div', { class: 'tile' }, h('h2', {}, t('smsSent')), h('p', { class: 'big-number' }, String(st.sms?.sent ?? 0)),
        h('p', {}, `${t('total')}: ${st.sms?.total ?? 0}`))));
    const loc = lang === 'fr' ? 'fr-FR' : 'en-GB';
    const tz = st.timezone || st.tz || undefined;
    const hourLabel = (r) => {
      if (r.local_hour !== undefined) return String(r.local_hour);
      const d = new Date(r.hour);
      return Number.isNaN(d.getTime()) ? String(r.hour) : d.toLocaleTimeString(loc, { hour: '2-digit', timeZone: tz });
    };
    body.append(chart(t('perHour'), st.per_hour || [], hourLabel, ['captures', 'sms_sent']),
      chart(t('perDay'), st.per_day || [], (r) => String(r.date).slice(5), ['captures', 'sms_sent']));
  };
  await draw();
  return null;
}
