// End-to-end test of the fleet page in Debian's chromium, driven by playwright-core,
// against a real `selfie-kiosk fleet serve` (tests/fleet_page.rs starts it, with the
// kiosks, and passes): FLEET_URL, FLEET_KEY, STALE_KIOSK, DOWN_KIOSK, XSS_ID, XSS_VERSION,
// SCREENSHOT_DIR [, CHROMIUM]. Exit code 0 when every check passed.
import { chromium } from 'playwright-core';
import { axe, check, failures, snap, watch as watchAll } from './common.mjs';
import fs from 'node:fs';

const base = process.env.FLEET_URL;
const key = process.env.FLEET_KEY;
const staleId = process.env.STALE_KIOSK;
const downId = process.env.DOWN_KIOSK;
const xssId = process.env.XSS_ID;
const xssVersion = process.env.XSS_VERSION;
const shots = process.env.SCREENSHOT_DIR;
const origin = new URL(base).origin;
fs.mkdirSync(shots, { recursive: true });

async function fleetApi(p) {
  const r = await fetch(base + p, { headers: { 'x-api-key': key } });
  if (!r.ok) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
  return r.json();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: ['--no-sandbox'],
});
try {
  const ctx = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  watchAll(page, origin);

  // Sign in: the root leads to the page; a wrong key is refused; the right one opens it.
  await page.goto(`${base}/`);
  check(new URL(page.url()).pathname === '/fleet/', `/ leads to /fleet/ (${page.url()})`);
  await page.getByLabel('Fleet key').waitFor();
  await axe(page, 'sign-in');
  await snap(page, 'sign-in', shots);
  await page.getByLabel('Fleet key').fill('not-the-fleet-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Key refused.').waitFor();
  check(true, 'a wrong key is refused');
  await page.getByLabel('Fleet key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
  await page.locator('tbody tr').first().waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('selfie-fleet-key')) !== null, 'the key is kept in sessionStorage');
  check(await page.evaluate(() => document.cookie) === '', 'no cookie is set');

  // The stale and the down kiosks stand out: first, marked, and in words (not by colour
  // alone).
  const list = await fleetApi('/fleet/api/kiosks');
  const rows = page.locator('tbody tr');
  check(await rows.count() === list.kiosks.length, `one row per kiosk (${list.kiosks.length})`);
  const firstTwo = [await rows.nth(0).getAttribute('data-kiosk'), await rows.nth(1).getAttribute('data-kiosk')];
  check(firstTwo.join() === [downId, staleId].sort().join(), `the kiosks that need someone come first (${firstTwo})`);
  for (const [id, word] of [[staleId, /stale/i], [downId, /down/i]]) {
    const row = page.locator('tbody tr.needs-care', { hasText: id });
    check(await row.count() === 1, `the ${id} row is marked`);
    const text = await row.locator('.state').innerText();
    check(word.test(text) && text.includes('⚠'), `${id} says so in words (${text})`);
  }
  const live = page.locator('tbody tr[data-kiosk="kiosk-a"]');
  check(await live.count() === 1 && !(await live.getAttribute('class') || '').includes('needs-care'), 'a live kiosk is not marked');
  check((await live.locator('.state').innerText()).trim() === 'OK', 'a live kiosk reads OK');
  check(await page.getByRole('status').innerText() === `${list.kiosks.length} kiosk(s), 1 stale, 1 down`, 'the summary counts the stale and the down kiosks');

  // HTML in an id or a version is text.
  const xssLink = page.getByRole('link', { name: xssId, exact: true });
  check(await xssLink.count() === 1, 'the HTML kiosk id is shown as text');
  check(await page.locator('main img, main script').count() === 0, 'no element came out of the data');
  const xssRow = page.locator('tbody tr', { has: xssLink });
  check((await xssRow.innerText()).includes(xssVersion), 'the HTML version is shown as text');
  await axe(page, 'fleet');
  await snap(page, 'fleet', shots);

  // A kiosk's detail: one bar and one point per history row.
  await page.getByRole('link', { name: staleId, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: staleId }).waitFor();
  await page.locator('svg.chart').nth(1).waitFor();
  const detail = await fleetApi(`/fleet/api/kiosks/${encodeURIComponent(staleId)}`);
  const n = detail.history.length;
  const withDisk = detail.history.filter((p) => p.disk_free_bytes !== null).length;
  const bars = await page.locator('svg.chart rect.bar').count();
  const points = await page.locator('svg.chart circle.point').count();
  check(n >= 2 && bars === n, `one bar per history row (${bars} of ${n})`);
  check(points === withDisk, `one point per history row with a disk figure (${points} of ${withDisk})`);
  check(await page.getByRole('img', { name: /Jobs waiting/ }).count() === 1, 'the backlog chart has a name');
  check(await page.getByRole('img', { name: /Disk free/ }).count() === 1, 'the disk chart has a name');
  check((await page.locator('.facts').innerText()).includes('⚠'), 'the detail marks the stale state');
  await axe(page, 'detail');
  await snap(page, 'detail', shots);

  // The HTML kiosk's detail is text too; back to the list; sign out forgets the key.
  await page.getByRole('link', { name: /All kiosks/ }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet' }).waitFor();
  await page.getByRole('link', { name: xssId, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: xssId }).waitFor();
  check(await page.locator('main img, main script').count() === 0, 'the HTML kiosk detail creates no element');
  check((await page.locator('.facts').innerText()).includes(xssVersion), 'the HTML version in the detail is text');
  await page.goto(`${base}/fleet/#kiosk=no-such-kiosk`);
  await page.getByText('Unknown kiosk.').waitFor();
  check(true, 'an unknown kiosk says so');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Fleet key').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('selfie-fleet-key')) === null, 'sign out forgets the key');
} catch (e) {
  failures.push(`error: ${e.stack || e}`);
} finally {
  await browser.close();
}

if (failures.length) {
  console.log(`\n${failures.length} failure(s):\n${failures.join('\n')}`);
  process.exit(1);
}
console.log('all fleet page checks passed');
