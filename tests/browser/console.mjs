// End-to-end tests of the staff console in Debian's chromium, driven by playwright-core,
// against a real daemon (tests/console.rs starts it and passes its address and key):
//   CONSOLE_URL, ADMIN_KEY, CAPTURE_JPEG, FILLER_JPEG, BACKGROUND_PNG, SCREENSHOT_DIR,
//   RETRY_SMS_ID, RETRY_CAPTURE_ID, RETRY_PHONE (a failed SMS and its guest's number),
//   XSS_SMS_ID (a failed SMS whose last error reads like an attack) [, CHROMIUM]
// Controls are found by their accessible names, as a user or a screen reader finds them.
// Exit code 0 when every check passed; otherwise the failures are printed.
import { chromium } from 'playwright-core';
import { axe, check, failures, snap as snapAt, watch as watchAll } from './common.mjs';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.CONSOLE_URL;
const key = process.env.ADMIN_KEY;
const shots = process.env.SCREENSHOT_DIR;
const jpeg = fs.readFileSync(process.env.CAPTURE_JPEG);
const filler = fs.readFileSync(process.env.FILLER_JPEG);
const retrySms = process.env.RETRY_SMS_ID;
const retryCapture = process.env.RETRY_CAPTURE_ID;
const retryPhone = process.env.RETRY_PHONE;
const xssSms = process.env.XSS_SMS_ID;
const PAGE = 60;
const png = fs.readFileSync(process.env.BACKGROUND_PNG);
const origin = new URL(base).origin;
const XSS = '<img src=x onerror=alert(1)>';
const XSS2 = `"'><script>alert(2)</script>`;

async function adminFetch(p, init = {}) {
  const r = await fetch(base + p, { ...init, headers: { 'x-api-key': key, ...(init.headers || {}) } });
  const text = await r.text();
  if (!r.ok) throw new Error(`${init.method || 'GET'} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const snap = (page, name) => snapAt(page, name, shots);

async function postCapture(body) {
  const r = await fetch(`${base}/api/capture`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body });
  if (r.status !== 201) throw new Error(`capture: ${r.status} ${await r.text()}`);
  return r.json();
}

const listed = (page) => page.evaluate(() => [...document.querySelectorAll('.gallery > li')].map((li) => li.dataset.id));
const fieldError = async (page, input) => page.locator(`[id="${await input.getAttribute('aria-describedby')}"]`);

// Events: opened, refused, renamed and closed from the Events page; captures posted over
// the API meanwhile belong to the open one; Gallery and Statistics narrow to an event.
async function events(page) {
  await page.getByRole('link', { name: 'Events', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Events' }).waitFor();
  await page.getByText('No events yet.').waitFor();
  const name = page.getByLabel('Event name', { exact: true });
  const open = page.getByRole('button', { name: 'Open the event' });
  const err = await fieldError(page, name);
  await name.fill('   ');
  await open.click();
  await err.filter({ hasText: 'the name must be' }).waitFor();
  check((await adminFetch('/admin/events')).items.length === 0, `a name of spaces is refused beside its field, nothing opened (${await err.textContent()})`);
  await name.fill(XSS);
  await open.click();
  await page.getByText(`Event opened: ${XSS}`, { exact: true }).waitFor();
  const a = (await adminFetch('/admin/events?open=true')).items;
  check(a.length === 1 && a[0].name === XSS, 'the console opened the event');
  const evA = a[0];
  check(await err.textContent() === '', 'the refusal is gone once the event opens');
  check(await page.locator(`tr[data-id="${evA.id}"]`).getByText(XSS, { exact: true }).count() === 1
    && await page.locator('img[src="x"], script:not([src])').count() === 0, 'an event named like an img tag shows as typed');
  await name.fill('Gala');
  await open.click();
  await err.filter({ hasText: 'overlaps' }).waitFor();
  check((await err.textContent()).includes(evA.id) && (await adminFetch('/admin/events')).items.length === 1,
    `a second event while one is open: the server's 409 beside the field, nothing opened (${await err.textContent()})`);
  const c1 = await postCapture(filler);
  await page.getByRole('button', { name: `Close now ${XSS}` }).click();
  await page.getByText('Event closed.', { exact: true }).waitFor();
  check(!(await adminFetch(`/admin/events/${evA.id}`)).open, 'the console closed the event');
  await name.fill('Gala');
  await open.click();
  await page.getByText('Event opened: Gala', { exact: true }).waitFor();
  const evB = (await adminFetch('/admin/events?open=true')).items[0];
  check(evB?.name === 'Gala', 'the next event opens once the first is closed');
  const c2 = await postCapture(filler);
  const all = (await adminFetch('/admin/captures?limit=500')).items;
  check(all.find((c) => c.id === c1.id)?.event_id === evA.id && all.find((c) => c.id === c2.id)?.event_name === 'Gala',
    'each capture posted over the API belongs to the event open then');
  // Rename in a dialog: the refusal by its field, then the new name.
  await page.getByRole('button', { name: 'Rename Gala' }).click();
  const rd = page.getByRole('dialog', { name: 'Rename Gala' });
  const rn = rd.getByLabel('Event name', { exact: true });
  await rn.fill(' ');
  await rd.getByRole('button', { name: 'Save' }).click();
  await (await fieldError(page, rn)).filter({ hasText: 'the name must be' }).waitFor();
  check((await adminFetch(`/admin/events/${evB.id}`)).name === 'Gala', 'a blank new name is refused in the dialog, by its field, and nothing changes');
  await axe(page, 'events-rename');
  await snap(page, 'events-rename');
  await rn.fill('Gala du soir');
  await rd.getByRole('button', { name: 'Save' }).click();
  await rd.waitFor({ state: 'detached' });
  await page.getByText('Renamed.', { exact: true }).waitFor();
  check((await adminFetch(`/admin/events/${evB.id}`)).name === 'Gala du soir', 'the rename reached the server');
  const countOf = (id) => page.locator(`tr[data-id="${id}"] td[data-label="Captures"]`).textContent();
  await page.locator(`tr[data-id="${evB.id}"]`).getByText('Gala du soir', { exact: true }).waitFor();
  check(await countOf(evA.id) === '1' && await countOf(evB.id) === '1', 'the list counts each event\'s captures');
  await page.waitForLoadState('networkidle');
  await axe(page, 'events');
  await snap(page, 'events');

  // Gallery: the picker lists all, then the events latest first, the open one marked; an
  // event narrows the listing from its first page; the detail names the event as text.
  const reqs = [];
  const onReq = (r) => { if (/\/admin\/captures\?/.test(r.url())) reqs.push(new URL(r.url()).searchParams); };
  page.on('request', onReq);
  await page.getByRole('link', { name: 'Gallery', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Gallery' }).waitFor();
  const picker = page.getByLabel('Event', { exact: true });
  await page.waitForFunction((n) => document.querySelectorAll('.gallery > li').length >= n, PAGE);
  const opts = await picker.locator('option').allTextContents();
  check(opts.length === 3 && opts[0] === 'All captures' && opts[1].startsWith('Gala du soir · ') && opts[1].endsWith(' (open)')
    && opts[2].startsWith(`${XSS} · `) && !opts[2].includes('(open)'), `the event picker: all, then latest first, the open one marked (${opts.join(' | ')})`);
  await page.locator('.sentinel').scrollIntoViewIfNeeded();
  await page.waitForFunction((n) => document.querySelectorAll('.gallery > li').length > n, PAGE);
  await picker.selectOption(evA.id);
  await page.waitForFunction((id) => { const l = document.querySelectorAll('.gallery > li'); return l.length === 1 && l[0].dataset.id === id; }, c1.id);
  await page.waitForLoadState('networkidle');
  const last = reqs[reqs.length - 1];
  check(last.get('event_id') === evA.id && !last.has('cursor') && (await listed(page)).length === 1,
    `choosing an event lists only its capture, from the first page (${last})`);
  await page.getByRole('button', { name: `Capture ${c1.id}` }).click();
  const dlg = page.getByRole('dialog', { name: `Capture ${c1.id}` });
  await dlg.getByRole('heading', { name: 'SMS history' }).waitFor();
  check(await dlg.getByText(XSS, { exact: true }).count() === 1 && await page.locator('img[src="x"], script:not([src])').count() === 0,
    'the detail names the capture\'s event, as typed');
  await dlg.getByRole('button', { name: 'Close' }).click();
  await dlg.waitFor({ state: 'detached' });
  await axe(page, 'gallery-event');
  await snap(page, 'gallery-event');
  await picker.selectOption(evB.id);
  await page.waitForFunction((id) => { const l = document.querySelectorAll('.gallery > li'); return l.length === 1 && l[0].dataset.id === id; }, c2.id);
  check(true, 'another event lists its own capture, not the first one\'s');

  // Closed: a capture taken afterwards belongs to no event; the choice is kept between pages.
  await page.getByRole('link', { name: 'Events', exact: true }).click();
  await page.getByRole('button', { name: 'Close now Gala du soir' }).click();
  await page.getByText('Event closed.', { exact: true }).waitFor();
  check(await page.getByRole('button', { name: /^Close now/ }).count() === 0 && await page.getByRole('button', { name: 'Reopen Gala du soir' }).count() === 1,
    'no event open: no close button, the latest can be reopened');
  await page.getByRole('button', { name: 'Reopen Gala du soir' }).click();
  await page.getByText('Event reopened.', { exact: true }).waitFor();
  check((await adminFetch(`/admin/events/${evB.id}`)).open, 'the console reopened the latest event');
  await page.getByRole('button', { name: 'Close now Gala du soir' }).click();
  await page.getByText('Event closed.', { exact: true }).waitFor();
  check(!(await adminFetch(`/admin/events/${evB.id}`)).open, 'and closed it again');
  const c3 = await postCapture(filler);
  await page.getByRole('link', { name: 'Gallery', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Gallery' }).waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.gallery > li').length >= 1);
  await page.waitForLoadState('networkidle');
  const closedList = await listed(page);
  check(await picker.inputValue() === evB.id && closedList.length === 1 && closedList[0] === c2.id,
    `the closed event keeps its capture and not the one taken after (${closedList})`);
  await picker.selectOption('');
  await page.waitForFunction((id) => document.querySelector('.gallery > li')?.dataset.id === id, c3.id);
  check(!reqs[reqs.length - 1].has('event_id'), '"All captures" lists every capture again');
  page.off('request', onReq);

  // Statistics: the figures and the Excel file narrowed to the event picked.
  await page.getByRole('link', { name: 'Statistics', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Statistics' }).waitFor();
  const total = () => page.locator('.tile .big-number').first().textContent();
  await page.locator('.tile').first().waitFor();
  const whole = await adminFetch('/admin/stats');
  check(await total() === String(whole.captures.total) && whole.captures.total > 3, `all captures by default (${whole.captures.total})`);
  await page.getByLabel('Event', { exact: true }).selectOption(evA.id);
  await page.locator('main .hint strong').filter({ hasText: XSS }).waitFor();
  const one = await adminFetch(`/admin/stats?event_id=${evA.id}`);
  check(await total() === '1' && one.captures.total === 1, `an event's statistics (${await total()} capture)`);
  check(await page.evaluate(() => sessionStorage.getItem('kiosk-console-event')) === evA.id, 'the event picked is kept for the session');
  check(await page.locator('img[src="x"], script:not([src])').count() === 0, 'the event name in the statistics is text');
  const [xl, xreq] = await Promise.all([page.waitForEvent('download'), page.waitForRequest((r) => r.url().includes('/admin/export/excel')),
    page.getByRole('button', { name: 'Export to Excel' }).click()]);
  const xlFile = path.join(shots, '..', 'console-export-event.xlsx');
  await xl.saveAs(xlFile);
  const book = fs.readFileSync(xlFile);
  const full = fs.statSync(path.join(shots, '..', 'console-export.xlsx')).size;
  check(new URL(xreq.url()).searchParams.get('event_id') === evA.id && book[0] === 0x50 && book[1] === 0x4b && book.length < full,
    `the Excel export asks for the event's captures, a smaller workbook than all of them (${xreq.url()}, ${book.length} < ${full} B)`);
  await page.waitForLoadState('networkidle');
  await axe(page, 'statistics-event');
  await snap(page, 'statistics-event');
  for (const n of ['events', 'events-rename', 'gallery-event', 'statistics-event']) {
    for (const w of [1280, 375]) {
      const f = path.join(shots, `${n}-${w}.png`);
      check(fs.existsSync(f) && fs.statSync(f).size > 1000, `screenshot ${n}-${w}.png`);
    }
  }
}

async function visit(page, link, heading, name) {
  await page.getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.waitForLoadState('networkidle');
  await axe(page, name);
  await snap(page, name);
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  // Seed over the API: a background named like an attack, a capture using it.
  const bg = await adminFetch(`/admin/backgrounds?name=${encodeURIComponent(XSS)}`, {
    method: 'POST', headers: { 'content-type': 'image/png' }, body: png,
  });
  await adminFetch(`/admin/backgrounds?name=${encodeURIComponent(XSS2)}`, {
    method: 'POST', headers: { 'content-type': 'image/png' }, body: png,
  });
  const cap = await (await fetch(`${base}/api/capture?background_id=${bg.id}`, {
    method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg,
  })).json();
  check(Boolean(cap.id), `a capture was posted (${JSON.stringify(cap).slice(0, 80)})`);
  // A capture id cannot hold markup or quotes: the daemon refuses it.
  const bad = await fetch(`${base}/api/capture?id=${encodeURIComponent(XSS)}`, {
    method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: jpeg,
  });
  check(bad.status === 400 && (await bad.json()).error?.code === 'invalid_id', 'a capture id like an img tag is refused (400 invalid_id)');
  // A full page of newer captures: the one above (and the two with SMS) are on page 2.
  for (let i = 0; i < PAGE; i += 1) {
    const r = await fetch(`${base}/api/capture`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: filler });
    if (r.status !== 201) throw new Error(`filler capture ${i}: ${r.status}`);
  }

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'],
  });
  try {
    const ctx = await browser.newContext({ locale: 'en-US', acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watchAll(page, origin, { acceptConfirm: true });
    const paged = [];
    page.on('request', (r) => { if (/\/admin\/captures\?.*cursor=/.test(r.url())) paged.push(r.url()); });

    // The root redirects; a wrong key is refused; the right one signs in.
    await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === '/console/', `/ leads to /console/ (${page.url()})`);
    await axe(page, 'sign-in');
    await snap(page, 'sign-in');
    await page.getByLabel('Admin key').fill('not-the-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Key refused.').waitFor();
    check(true, 'a wrong key is refused');
    await page.getByLabel('Admin key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('kiosk-admin-key')) !== null, 'the key is kept in sessionStorage');
    check(await page.evaluate(() => document.cookie) === '', 'no cookie is set');

    // Overview: tiles and actions.
    await page.getByRole('heading', { name: 'Disk' }).waitFor();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await page.getByText('Done.').waitFor();
    check(true, 'Sync now answers');
    const [diag] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download diagnostics' }).click()]);
    const diagFile = path.join(shots, '..', 'console-diag.json');
    await diag.saveAs(diagFile);
    const snapshot = JSON.parse(fs.readFileSync(diagFile, 'utf8'));
    check(diag.suggestedFilename().endsWith('.json') && Boolean(snapshot.health?.status), 'the diagnostics download is the daemon snapshot');
    await axe(page, 'overview');
    await snap(page, 'overview');

    // Gallery: 60 newest first; scrolling loads page 2 by cursor, where the posted capture
    // is, with its thumbnail; its detail shows the metadata and the attack name as text.
    await page.getByRole('link', { name: 'Gallery', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Gallery' }).waitFor();
    const items = page.locator('.gallery > li');
    await page.waitForFunction((n) => document.querySelectorAll('.gallery > li').length >= n, PAGE);
    await page.waitForLoadState('networkidle');
    const first = await items.count();
    const thumb = page.locator('.gallery').getByAltText(`Capture ${cap.id}`);
    check(first === PAGE && paged.length === 0 && await thumb.count() === 0,
      `the first page holds ${PAGE} captures and no more before scrolling (${first}, ${paged.length} cursor requests)`);
    await page.locator('.sentinel').scrollIntoViewIfNeeded();
    await thumb.waitFor();
    check(paged.length >= 1 && await items.count() === PAGE + 3, `scrolling loads page 2 by cursor (${await items.count()} captures)`);
    check(await page.getByRole('button', { name: 'Load more' }).count() === 0, 'no "Load more" after the last page');
    await page.waitForFunction((alt) => {
      const img = [...document.images].find((i) => i.alt === alt);
      return img && img.complete && img.naturalWidth > 0;
    }, `Capture ${cap.id}`);
    check(true, 'the posted capture appears in the gallery with its thumbnail');
    await page.waitForLoadState('networkidle');
    await axe(page, 'gallery');
    await snap(page, 'gallery');
    await page.getByRole('button', { name: `Capture ${cap.id}` }).click();
    const dlg = page.getByRole('dialog', { name: `Capture ${cap.id}` });
    await dlg.waitFor();
    await dlg.getByRole('heading', { name: 'SMS history' }).waitFor();
    check(await dlg.getByText(XSS, { exact: true }).count() === 1, 'the background name shows as typed in the detail');
    check(await dlg.getByText('640 × 480', { exact: true }).count() === 1 && await dlg.getByText(cap.sha256, { exact: true }).count() === 1,
      'the detail shows the metadata (dimensions, sha256)');
    check(await dlg.getByText('not configured').count() === 2, 'the detail shows each remote (not configured here)');
    await page.waitForFunction((alt) => {
      const img = [...document.images].find((i) => i.alt === alt);
      return img && img.complete && img.naturalWidth === 640;
    }, `Photo ${cap.id}`);
    check(true, 'the detail shows the full photo');
    const [photo] = await Promise.all([page.waitForEvent('download'), dlg.getByRole('button', { name: 'Download', exact: true }).click()]);
    const photoFile = path.join(shots, '..', 'console-photo.jpg');
    await photo.saveAs(photoFile);
    const photoSha = crypto.createHash('sha256').update(fs.readFileSync(photoFile)).digest('hex');
    check(photo.suggestedFilename() === `${cap.id}.jpg` && photoSha === cap.sha256,
      `the detail downloads the photo with the key (${photo.suggestedFilename()}, sha256 ${photoSha.slice(0, 12)}…)`);
    await axe(page, 'gallery-detail');
    await snap(page, 'gallery-detail');
    await dlg.getByRole('button', { name: 'Delete', exact: true }).click();
    const ask = page.getByRole('alertdialog', { name: 'Delete this capture?' });
    await ask.waitFor();
    await axe(page, 'gallery-delete');
    await snap(page, 'gallery-delete');
    await ask.getByRole('button', { name: 'Cancel' }).click();
    await ask.waitFor({ state: 'detached' });
    check(await thumb.count() === 1 && await dlg.isVisible(), 'cancelling the confirmation keeps the capture');
    await dlg.getByRole('button', { name: 'Delete', exact: true }).click();
    await ask.getByRole('button', { name: 'Delete for good' }).click();
    await thumb.waitFor({ state: 'detached' });
    check(await dlg.count() === 0, 'the detail closes after the delete');
    const after = await adminFetch('/admin/captures?limit=500');
    check(!after.items.some((c) => c.id === cap.id), 'the deleted capture is gone from the API');
    // Filters are the listing's query: with SMS, the two captures texted from the test.
    await page.getByLabel('With SMS').selectOption('true');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForFunction(() => document.querySelectorAll('.gallery > li').length === 2);
    check(await page.locator('.gallery').getByAltText(`Capture ${retryCapture}`).count() === 1, 'the "with SMS" filter keeps the captures with an SMS');
    await page.getByLabel('With SMS').selectOption('false');
    await page.getByLabel('From', { exact: true }).fill('2000-01-01');
    await page.getByLabel('To', { exact: true }).fill('2000-01-02');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No captures.').waitFor();
    check(true, 'a date range with no capture shows none');
    await page.getByLabel('From', { exact: true }).fill('');
    await page.getByLabel('To', { exact: true }).fill('');
    await page.getByLabel('With SMS').selectOption('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForFunction((n) => document.querySelectorAll('.gallery > li').length >= n, PAGE);

    // Such an id can still come in a link (#gallery/{id}): the detail names it as text.
    for (const evil of [XSS, XSS2]) {
      await page.goto(`${base}/console/#gallery/${encodeURIComponent(evil)}`);
      const ed = page.getByRole('dialog', { name: `Capture ${evil}` });
      await ed.getByText('Error:').waitFor();
      check(await page.locator('img[src="x"], script:not([src])').count() === 0, `a capture id in a link shows as typed (${evil})`);
      await ed.getByRole('button', { name: 'Close' }).click();
      await ed.waitFor({ state: 'detached' });
    }

    // Backgrounds: upload with the file picker; the attack names are text.
    await visit(page, 'Backgrounds', 'Backgrounds', 'backgrounds');
    await page.getByLabel('File (JPEG or PNG)').setInputFiles({ name: 'beach.png', mimeType: 'image/png', buffer: png });
    await page.getByLabel('Name', { exact: true }).fill('Beach');
    await page.getByRole('button', { name: 'Add a background' }).click();
    await page.getByAltText('Beach', { exact: true }).waitFor();
    check(true, 'an uploaded background is listed with its thumbnail');
    check(await page.getByText(XSS, { exact: true }).count() >= 1, 'a background named like an img tag shows as typed');
    check(await page.getByText(XSS2, { exact: true }).count() >= 1, 'a background named like a script shows as typed');
    check(await page.locator('img[src="x"], script:not([src])').count() === 0, 'no element was made from a name');
    await snap(page, 'backgrounds');

    // Settings: the server's message by its field; a valid value sticks after reload.
    await visit(page, 'Settings', 'Settings', 'settings');
    const retention = page.getByLabel('retention_days', { exact: true });
    await retention.fill('0');
    await page.getByRole('button', { name: 'Save' }).click();
    const errId = await retention.getAttribute('aria-describedby');
    const err = page.locator(`[id="${errId}"]`);
    await err.filter({ hasText: 'must be between' }).waitFor();
    check((await err.textContent()).startsWith('retention_days:'), `the 422 message is shown by its field (${await err.textContent()})`);
    await retention.fill('14');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    await page.reload();
    await page.getByLabel('retention_days', { exact: true }).waitFor();
    check(await page.getByLabel('retention_days', { exact: true }).inputValue() === '14', 'a valid setting sticks after reload');
    await page.getByLabel('Phone number').fill('+33612345678');
    await page.getByRole('button', { name: 'Erase' }).click();
    await page.getByRole('heading', { name: 'Receipt' }).waitFor();
    check(await page.getByText('+33*******78').count() === 1, 'erasure by phone shows the receipt (masked number)');
    await snap(page, 'settings-receipt');

    // Statistics: one bar per hour; the Excel file downloads and is a workbook.
    await visit(page, 'Statistics', 'Statistics', 'statistics');
    const stats = await adminFetch('/admin/stats');
    const bars = await page.locator('figure').first().locator('rect[data-series="captures"]').count();
    check(bars === stats.per_hour.length && bars > 0, `the hourly chart has one bar per hour (${bars} for ${stats.per_hour.length})`);
    const [xl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export to Excel' }).click()]);
    const xlFile = path.join(shots, '..', 'console-export.xlsx');
    await xl.saveAs(xlFile);
    const book = fs.readFileSync(xlFile);
    check(book[0] === 0x50 && book[1] === 0x4b && book.includes(Buffer.from('xl/workbook.xml')), 'the Excel file is a zip holding xl/workbook.xml');

    // Text messages: the failed SMS with its masked number; an error like an attack is
    // text; filters; retry with the number typed again puts it back in the queue, and the
    // OVH-faithful server sends it (tests/console.rs counts the texts).
    await visit(page, 'Text messages', 'Text messages', 'text-messages');
    const row = page.locator(`tr[data-id="${retrySms}"]`);
    check(await row.getByText('+33*******21', { exact: true }).count() === 1 && await row.getByText('failed', { exact: true }).count() === 1,
      'the failed SMS is listed with its masked number and status');
    check(await page.locator(`tr[data-id="${xssSms}"]`).getByText(XSS).count() === 1, 'an error written like an img tag shows as typed');
    check(await page.locator('main img[src="x"], main b, main script:not([src])').count() === 0, 'no element was made from an error');
    check(await page.getByRole('button', { name: 'Load more' }).count() === 0, 'one page of text messages: no "Load more"');
    await page.getByLabel('Status', { exact: true }).selectOption('sent');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No text messages.').waitFor();
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await row.waitFor();
    check(await page.locator('tbody tr').count() === 2, 'the status filter lists the failed ones');
    await row.getByRole('button', { name: `Retry ${retrySms}` }).click();
    const rd = page.getByRole('dialog', { name: 'Retry the SMS to +33*******21' });
    await rd.waitFor();
    await axe(page, 'text-messages-retry');
    await snap(page, 'text-messages-retry');
    await rd.getByLabel("Guest's phone number").fill('06 87 65 43 20');
    await rd.getByRole('button', { name: 'Retry', exact: true }).click();
    await rd.getByText('not the phone number of this request').waitFor();
    check(await row.getByText('failed', { exact: true }).count() === 1, 'another number is refused, by the field, and nothing changes');
    await rd.getByLabel("Guest's phone number").fill(retryPhone);
    await rd.getByRole('button', { name: 'Retry', exact: true }).click();
    await rd.waitFor({ state: 'detached' });
    await page.getByText('Back in the queue.', { exact: false }).waitFor();
    check(['queued', 'sent'].includes(await row.locator('td').nth(2).textContent()) && await row.getByRole('button').count() === 0,
      'the retried SMS is back in the queue, without its retry button');
    let sent = null;
    for (let i = 0; i < 100 && !sent; i += 1) {
      const v = await (await fetch(`${base}/api/sms/${retrySms}`)).json();
      if (v.status === 'sent') sent = v; else await new Promise((r) => setTimeout(r, 200));
    }
    check(Boolean(sent), 'the retried SMS is sent');
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByRole('button', { name: 'Filter' }).click();
    await row.getByText('sent', { exact: true }).waitFor();
    check(true, 'the list shows it sent');
    // Its capture link opens the capture's detail, with the SMS history (masked).
    await row.getByRole('link', { name: retryCapture }).click();
    const cd = page.getByRole('dialog', { name: `Capture ${retryCapture}` });
    await cd.getByRole('heading', { name: 'SMS history' }).waitFor();
    check(await cd.getByText('+33*******21', { exact: true }).count() === 1 && await cd.getByText('sent', { exact: true }).count() === 1,
      'the capture detail shows its SMS history with the masked number');
    check(!(await page.content()).includes('87 65 43 21') && !(await page.content()).includes('687654321'), 'the clear number is nowhere on the page');
    await cd.getByRole('button', { name: 'Close' }).click();
    await cd.waitFor({ state: 'detached' });
    await events(page);
    await visit(page, 'API reference', 'API reference', 'api-reference');
    check(new URL(page.url()).pathname === '/docs', 'the API reference is /docs');
    check(await page.getByText('/admin/captures', { exact: true }).count() >= 1, 'the reference lists /admin/captures');
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

    // Sign-out, then the idle sign-out (shortened by ?idle_seconds=).
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key').waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('kiosk-admin-key')) === null, 'sign-out forgets the key');
    check(await page.evaluate(() => sessionStorage.getItem('kiosk-console-event')) === null, 'sign-out forgets the event picked');
    await page.goto(`${base}/console/?idle_seconds=2`);
    await page.getByLabel('Admin key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByText('Signed out after a period of inactivity.').waitFor({ timeout: 8000 });
    check(await page.getByLabel('Admin key').isVisible(), 'an idle session is signed out');
    await ctx.close();

    // French, from the browser's language; switchable to English.
    const fr = await browser.newContext({ locale: 'fr-FR' });
    const p2 = await fr.newPage();
    watchAll(p2, origin, { acceptConfirm: true });
    await p2.goto(`${base}/console/`);
    await p2.getByLabel("Clé d'administration").fill(key);
    await p2.getByRole('button', { name: 'Se connecter' }).click();
    await p2.getByRole('heading', { level: 1, name: "Vue d'ensemble" }).waitFor();
    for (const name of ["Vue d'ensemble", 'Événements', 'Galerie', 'SMS', 'Statistiques', 'Arrière-plans', 'Réglages', "Référence de l'API"]) {
      check(await p2.getByRole('link', { name, exact: true }).count() === 1, `French navigation link "${name}"`);
    }
    await axe(p2, 'vue-d-ensemble');
    await snap(p2, 'vue-d-ensemble');
    // Events in French: the page, its field, and the picker of the gallery.
    await p2.getByRole('link', { name: 'Événements', exact: true }).click();
    await p2.getByRole('heading', { level: 1, name: 'Événements' }).waitFor();
    await p2.getByLabel("Nom de l'événement", { exact: true }).waitFor();
    check(await p2.getByRole('button', { name: "Ouvrir l'événement" }).count() === 1, 'the Events page is in French');
    await axe(p2, 'evenements');
    await p2.getByRole('link', { name: 'Galerie', exact: true }).click();
    const frPick = p2.getByLabel('Événement', { exact: true });
    await frPick.waitFor();
    check((await frPick.locator('option').first().textContent()) === 'Toutes les photos', 'the event picker is in French ("Toutes les photos")');
    // The retry dialog in French: the number's field by its French label.
    await p2.getByRole('link', { name: 'SMS', exact: true }).click();
    await p2.locator(`tr[data-id="${xssSms}"]`).getByRole('button', { name: `Réessayer ${xssSms}` }).click();
    const frd = p2.getByRole('dialog', { name: /^Renvoyer le SMS au \+33\*+32$/ });
    await frd.getByLabel('Numéro de téléphone de l’invité').waitFor();
    check(true, 'the retry dialog is in French, its field labelled');
    await axe(p2, 'sms-renvoi');
    await frd.getByRole('button', { name: 'Annuler' }).click();
    await frd.waitFor({ state: 'detached' });
    await p2.getByLabel('Langue').selectOption('en');
    await p2.getByRole('link', { name: 'Overview', exact: true }).waitFor();
    await p2.reload();
    check(await p2.getByRole('link', { name: 'Gallery', exact: true }).count() === 1, 'the chosen language is remembered');
    await fr.close();
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  failures.push(`stopped: ${e.stack || e}`);
}
if (failures.length) {
  console.error(`\n${failures.length} failure(s):\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('all console checks passed');
