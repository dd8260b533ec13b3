// The fleet page: sign in with the fleet key, then every kiosk (refreshed every 30 s)
// and, at #kiosk=<id>, one kiosk with its backlog and free disk over the last days.
// Every value from the API is set as text (dom.js), never parsed as HTML.
import { get, key } from './api.js';
import { h, clear, bytes } from './dom.js';
import { bars, line } from './chart.js';

const TEXT = {
  fr: {
    fleet: 'Flotte', fleetKey: 'Clé de la flotte', signIn: 'Se connecter', signOut: 'Se déconnecter',
    wrongKey: 'Clé refusée.', kiosk: 'Borne', state: 'État', lastSeen: 'Vue', backlog: 'En attente',
    disk: 'Disque libre', credits: 'Crédits SMS', today: "Photos aujourd'hui", version: 'Version',
    all: 'Toutes les bornes', none: "Aucune borne n'a encore envoyé de battement.",
    summary: (n, st, dn) => `${n} borne(s), ${st} sans nouvelles, ${dn} en panne`,
    ago: (a) => `il y a ${a}`, unknown: 'Borne inconnue.', days: (d) => `sur ${d} jours`,
    backlogChart: 'Tâches en attente', diskChart: 'Disque libre', oldest: 'Plus ancienne tâche',
    states: { ok: 'OK', degraded: 'dégradée', down: 'en panne', stale: 'sans nouvelles' },
    signInTitle: 'Flotte de bornes selfie',
  },
  en: {
    fleet: 'Fleet', fleetKey: 'Fleet key', signIn: 'Sign in', signOut: 'Sign out',
    wrongKey: 'Key refused.', kiosk: 'Kiosk', state: 'State', lastSeen: 'Last seen', backlog: 'Backlog',
    disk: 'Disk free', credits: 'SMS credits', today: 'Captures today', version: 'Version',
    all: 'All kiosks', none: 'No kiosk has sent a heartbeat yet.',
    summary: (n, st, dn) => `${n} kiosk(s), ${st} stale, ${dn} down`,
    ago: (a) => `${a} ago`, unknown: 'Unknown kiosk.', days: (d) => `over ${d} days`,
    backlogChart: 'Jobs waiting', diskChart: 'Disk free', oldest: 'Oldest job',
    states: { ok: 'OK', degraded: 'degraded', down: 'down', stale: 'stale' },
    signInTitle: 'Selfie kiosk fleet',
  },
};
const lang = (navigator.language || 'fr').toLowerCase().startsWith('fr') ? 'fr' : 'en';
const t = TEXT[lang];
document.documentElement.lang = lang;

const main = document.getElementById('main');
const side = document.getElementById('side');
let timer = null;

function age(s) {
  const n = Math.max(0, Math.round(s));
  if (n < 120) return `${n} s`;
  if (n < 7200) return `${Math.round(n / 60)} min`;
  if (n < 172800) return `${Math.round(n / 3600)} h`;
  return `${Math.round(n / 86400)} d`;
}
const num = (v) => (v === null || v === undefined ? '–' : String(v));
const when = (ms) => new Date(ms).toLocaleString(lang === 'fr' ? 'fr-FR' : 'en-GB',
  { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

// The state in words, with a mark for the ones that need someone: never colour alone.
function stateBadge(state) {
  const care = state === 'stale' || state === 'down';
  return h('span', { class: `state ${state}` }, care ? '⚠ ' : '', t.states[state] || state);
}

function signIn(message = '') {
  clear(side); clear(main);
  const input = h('input', { id: 'fleet-key', type: 'password', autocomplete: 'current-password', required: true });
  const problem = h('p', { class: 'problem-text', role: 'alert' }, message);
  const form = h('form', { class: 'panel gate', onsubmit: async (e) => {
    e.preventDefault();
    key.set(input.value.trim());
    try { await get('/fleet/api/kiosks'); route(); } catch (err) {
      problem.textContent = err.status === 401 ? t.wrongKey : err.message;
    }
  } }, h('h1', {}, t.signInTitle), h('label', { for: 'fleet-key' }, t.fleetKey), input,
  h('button', { type: 'submit' }, t.signIn), problem);
  main.append(form);
  input.focus();
}

function chrome() {
  clear(side);
  side.append(h('button', { type: 'button', class: 'plain', onclick: () => { key.forget(); signIn(); } }, t.signOut));
}

function problemOr(err) {
  if (err.status === 401) { signIn(t.wrongKey); return true; }
  clear(main).append(h('p', { class: 'problem-text', role: 'alert' }, err.message));
  return false;
}

async function list() {
  let data;
  try { data = await get('/fleet/api/kiosks'); } catch (err) { problemOr(err); return; }
  clear(main);
  main.append(h('h1', {}, t.fleet),
    h('p', { class: 'summary', role: 'status' }, t.summary(data.kiosks.length, data.stale, data.down)));
  if (!data.kiosks.length) { main.append(h('p', { class: 'empty' }, t.none)); return; }
  // The kiosks that need someone first, then by id.
  const rank = (k) => (k.state === 'stale' || k.state === 'down' ? 0 : k.state === 'degraded' ? 1 : 2);
  const kiosks = [...data.kiosks].sort((a, b) => rank(a) - rank(b) || a.kiosk_id.localeCompare(b.kiosk_id));
  const head = h('tr', {}, h('th', { scope: 'col' }, t.kiosk), h('th', { scope: 'col' }, t.state),
    h('th', { scope: 'col' }, t.lastSeen), h('th', { scope: 'col' }, t.backlog), h('th', { scope: 'col' }, t.disk),
    h('th', { scope: 'col' }, t.credits), h('th', { scope: 'col' }, t.today),
    h('th', { scope: 'col' }, t.version));
  const rows = kiosks.map((k) => {
    const care = k.state === 'stale' || k.state === 'down';
    // data-label: the column's name, shown beside each value when a narrow screen turns
    // the rows into cards (style.css).
    return h('tr', { class: care ? 'needs-care' : k.state === 'degraded' ? 'is-degraded' : null, 'data-kiosk': k.kiosk_id },
      h('td', { 'data-label': t.kiosk }, h('a', { class: 'kiosk-link', href: `#kiosk=${encodeURIComponent(k.kiosk_id)}` }, k.kiosk_id)),
      h('td', { 'data-label': t.state }, stateBadge(k.state)),
      h('td', { 'data-label': t.lastSeen }, t.ago(age(k.age_s))),
      h('td', { class: 'num', 'data-label': t.backlog }, num(k.backlog)),
      h('td', { class: 'num', 'data-label': t.disk }, k.disk_free_bytes === null ? '–' : bytes(k.disk_free_bytes)),
      h('td', { class: 'num', 'data-label': t.credits }, num(k.sms_credits)),
      h('td', { class: 'num', 'data-label': t.today }, num(k.captures_today)),
      h('td', { 'data-label': t.version }, num(k.version)));
  });
  main.append(h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows))));
}

async function detail(id) {
  let data;
  try { data = await get(`/fleet/api/kiosks/${encodeURIComponent(id)}`); } catch (err) {
    if (err.status === 404) {
      clear(main).append(h('p', {}, h('a', { href: '#' }, `← ${t.all}`)),
        h('p', { class: 'problem-text', role: 'alert' }, t.unknown));
      return;
    }
    problemOr(err);
    return;
  }
  const k = data.kiosk;
  const fact = (label, value) => h('div', {}, h('dt', {}, label), h('dd', {}, value));
  clear(main).append(h('p', {}, h('a', { href: '#' }, `← ${t.all}`)),
    h('h1', {}, k.kiosk_id),
    h('section', { class: 'panel', 'aria-label': t.state }, h('dl', { class: 'facts' },
      fact(t.state, stateBadge(k.state)), fact(t.lastSeen, t.ago(age(k.age_s))),
      fact(t.backlog, num(k.backlog)), fact(t.oldest, k.oldest_pending_s === null ? '–' : age(k.oldest_pending_s)),
      fact(t.disk, k.disk_free_bytes === null ? '–' : bytes(k.disk_free_bytes)),
      fact(t.credits, num(k.sms_credits)), fact(t.today, num(k.captures_today)), fact(t.version, num(k.version)))),
    bars(`${t.backlogChart} (${t.days(data.days)})`, data.history, (p) => p.backlog, String, when),
    line(`${t.diskChart} (${t.days(data.days)})`, data.history, (p) => p.disk_free_bytes, bytes, when));
}

function route() {
  clearInterval(timer);
  if (!key.get()) { signIn(); return; }
  chrome();
  const m = /^#kiosk=(.*)$/.exec(window.location.hash);
  if (m) { detail(decodeURIComponent(m[1])); return; }
  list();
  timer = setInterval(list, 30000);
}

window.addEventListener('hashchange', route);
route();
