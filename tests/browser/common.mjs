// What the browser suites share (console.mjs, fleet.mjs): the check list, the watch on
// every request and dialog, axe-core, and the screenshots at 1280 and 375 px.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const axeSource = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

export const failures = [];
export function check(cond, what) {
  if (!cond) failures.push(what);
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
}

// Every request the page makes, and every dialog it opens: the page must reach only
// `origin`, and data must never run (an alert is a failure; confirm is accepted when the
// suite's page asks for confirmation).
export function watch(page, origin, { acceptConfirm = false } = {}) {
  page.on('request', (req) => {
    const u = req.url();
    if (u.startsWith('blob:') || u.startsWith('data:')) return;
    if (new URL(u).origin !== origin) failures.push(`request to another host: ${u}`);
  });
  page.on('dialog', async (d) => {
    if (acceptConfirm && d.type() === 'confirm') await d.accept();
    else { failures.push(`a ${d.type()} dialog fired: ${d.message()}`); await d.dismiss(); }
  });
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) failures.push(`CSP violation: ${m.text()}`);
  });
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
}

export async function axe(page, name) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `axe: no serious or critical violation on ${name}` +
    (bad.length ? `: ${bad.map((v) => `${v.id} (${v.nodes.map((n) => n.target.join(' ')).join('; ')})`).join(', ')}` : ''));
}

export async function snap(page, name, shots) {
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 900 });
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(shots, `${name}-${width}.png`), fullPage: true });
    if (width === 375) {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 380, `${name} fits 375 px (scroll width ${wide})`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}
