// The console's shell: sign-in, navigation, language, idle sign-out, and the page router.
import { api, auth, ApiError } from './api.js';
import { h, clear, field } from './dom.js';
import { t, lang, setLang } from './i18n.js';

const PAGES = {
  overview: () => import('./overview.js'),
  events: () => import('./events.js'),
  gallery: () => import('./gallery.js'),
  sms: () => import('./sms.js'),
  stats: () => import('./stats.js'),
  backgrounds: () => import('./backgrounds.js'),
  settings: () => import('./settings.js'),
  docs: () => import('./docs.js'),
};
const ORDER = ['overview', 'events', 'gallery', 'sms', 'stats', 'backgrounds', 'settings', 'docs'];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const tools = document.getElementById('tools');
let cleanup = null;
let notice = null;

function current() {
  if (location.pathname === '/docs') return 'docs';
  const name = location.hash.replace(/^#\/?/, '').split('/')[0];
  return PAGES[name] ? name : 'overview';
}

function href(name) { return name === 'docs' ? '/docs' : `/console/#${name}`; }

function drawChrome() {
  document.documentElement.lang = lang;
  document.title = `${t(current())} · Selfie kiosk`;
  clear(nav);
  clear(tools);
  const signedIn = Boolean(auth.key);
  if (signedIn || current() === 'docs') {
    const list = h('ul');
    for (const name of ORDER) {
      if (!signedIn && name !== 'docs') continue;
      const a = h('a', { href: href(name) }, t(name));
      if (name === current()) a.setAttribute('aria-current', 'page');
      list.append(h('li', {}, a));
    }
    nav.append(list);
  }
  const select = h('select', { id: 'lang', onchange: (e) => { setLang(e.target.value); route(); } },
    h('option', { value: 'fr' }, 'Français'), h('option', { value: 'en' }, 'English'));
  select.value = lang;
  tools.append(h('label', { for: 'lang', class: 'sr-only' }, t('language')), select);
  if (signedIn) tools.append(h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, t('signOut')));
}

function signInPage() {
  const [wrap, input, err] = field(t('adminKey'), { type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'card signin' }, h('h1', {}, t('signInTitle')), h('p', {}, t('signInHelp')),
    notice ? h('p', { class: 'notice', role: 'status' }, notice) : null, wrap,
    h('button', { type: 'submit' }, t('signIn')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    err.textContent = '';
    auth.set(input.value);
    try {
      const cfg = await api('/admin/config');
      notice = null;
      startIdle(cfg);
      route();
    } catch (ex) {
      auth.clear();
      err.textContent = ex instanceof ApiError && ex.status === 401 ? t('badKey') : `${t('error')}: ${ex.message}`;
    }
  });
  main.append(form);
  input.focus();
}

// Idle sign-out: the touchscreen is guest-facing, a forgotten session must not stay open.
let idleMs = 15 * 60 * 1000;
let lastActive = Date.now();
let idleTimer = null;
function startIdle(cfg) {
  const q = Number(new URLSearchParams(location.search).get('idle_seconds'));
  const minutes = Number(cfg?.read_only?.console_idle_minutes ?? cfg?.settings?.console_idle_minutes);
  if (q > 0) idleMs = q * 1000;
  else if (minutes > 0) idleMs = minutes * 60 * 1000;
  lastActive = Date.now();
  clearInterval(idleTimer);
  idleTimer = setInterval(() => {
    if (auth.key && Date.now() - lastActive > idleMs) signOut(t('idleOut'));
  }, 1000);
}
for (const ev of ['pointerdown', 'keydown', 'wheel', 'touchstart']) {
  addEventListener(ev, () => { lastActive = Date.now(); }, { passive: true });
}

function signOut(message = null) {
  auth.clear();
  sessionStorage.removeItem('kiosk-console-event'); // the next person picks their own event
  clearInterval(idleTimer);
  notice = message;
  if (current() === 'docs') location.href = '/console/';
  else route();
}
auth.onSignOut = () => signOut(t('badKey'));

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  clear(main);
  drawChrome();
  const name = current();
  if (!auth.key && name !== 'docs') { signInPage(); return; }
  const page = await PAGES[name]();
  if (name !== current()) return;
  const section = h('section', { class: 'page', 'aria-labelledby': 'page-title' },
    h('h1', { id: 'page-title' }, t(name)));
  main.append(section);
  try {
    cleanup = (await page.render(section)) || null;
  } catch (ex) {
    section.append(h('p', { class: 'error', role: 'alert' }, `${t('error')}: ${ex.message}`));
  }
}

addEventListener('hashchange', route);
if (auth.key) api('/admin/config').then(startIdle).catch(() => startIdle(null));
route();
