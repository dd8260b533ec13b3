// End-to-end tests of the staff console in Debian's chromium, driven by playwright-core,
// against a real daemon (tests/console.rs starts it and passes its address and key):
//   CONSOLE_URL, ADMIN_KEY, CAPTURE_JPEG, BACKGROUND_PNG, SCREENSHOT_DIR [, CHROMIUM]
// Controls are found by their accessible names, as a user or a screen reader finds them.
// Exit code 0 when every check passed; otherwise the failures are printed.
import { chromium } from 'playwright-core';
import { axe, check, failures, snap, watch as watchAll } from './common.mjs';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.CONSOLE_URL;
const key = process.env.ADMIN_KEY;
const shots = process.env.SCREENSHOT_DIR;
const jpeg = fs.readFileSync(process.env.CAPTURE_JPEG);
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

async function visit(page, link, heading, name) {
  await page.getByRole('link', { name: link, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.waitForLoadState('networkidle');
  await axe(page, name);
  await snap(page, name, shots);
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

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'],
  });
  try {
    const ctx = await browser.newContext({ locale: 'en-US', acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watchAll(page, origin, { acceptConfirm: true });

    // The root redirects; a wrong key is refused; the right one signs in.
    await page.goto(`${base}/`);
    check(new URL(page.url()).pathname === '/console/', `/ leads to /console/ (${page.url()})`);
    await axe(page, 'sign-in');
    await snap(page, 'sign-in', shots);
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
    await snap(page, 'overview', shots);

    // Gallery: the capture with its thumbnail; its detail shows the attack name as text.
    await visit(page, 'Gallery', 'Gallery', 'gallery');
    const thumb = page.locator('.gallery').getByAltText(`Capture ${cap.id}`);
    await thumb.waitFor();
    await page.waitForFunction((alt) => {
      const img = [...document.images].find((i) => i.alt === alt);
      return img && img.complete && img.naturalWidth > 0;
    }, `Capture ${cap.id}`);
    check(true, 'the posted capture appears in the gallery with its thumbnail');
    await page.getByRole('button', { name: `Capture ${cap.id}` }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    check(await dlg.getByText(XSS, { exact: true }).count() === 1, 'the background name shows as typed in the detail');
    await snap(page, 'gallery-detail', shots);
    await dlg.getByRole('button', { name: 'Delete' }).click();
    await thumb.waitFor({ state: 'detached' });
    const after = await adminFetch('/admin/captures');
    check(!after.items.some((c) => c.id === cap.id), 'the deleted capture is gone from the API');

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
    await snap(page, 'backgrounds', shots);

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
    await snap(page, 'settings-receipt', shots);

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

    await visit(page, 'Text messages', 'Text messages', 'text-messages');
    await visit(page, 'API reference', 'API reference', 'api-reference');
    check(new URL(page.url()).pathname === '/docs', 'the API reference is /docs');
    check(await page.getByText('/admin/captures', { exact: true }).count() >= 1, 'the reference lists /admin/captures');
    await page.getByRole('link', { name: 'Overview', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

    // Sign-out, then the idle sign-out (shortened by ?idle_seconds=).
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin key').waitFor();
    check(await page.evaluate(() => sessionStorage.getItem('kiosk-admin-key')) === null, 'sign-out forgets the key');
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
    for (const name of ["Vue d'ensemble", 'Galerie', 'SMS', 'Statistiques', 'Arrière-plans', 'Réglages', "Référence de l'API"]) {
      check(await p2.getByRole('link', { name, exact: true }).count() === 1, `French navigation link "${name}"`);
    }
    await axe(p2, 'vue-d-ensemble');
    await snap(p2, 'vue-d-ensemble', shots);
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
