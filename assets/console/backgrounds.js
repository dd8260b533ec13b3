// Backgrounds: upload (picker or drag-and-drop), rename, reorder, delete, with thumbnails.
import { api } from './api.js';
import { h, clear, field, bytes } from './dom.js';
import { t } from './i18n.js';

export async function render(root) {
  const status = h('p', { role: 'status' });
  const [fw, file] = field(t('file'), { type: 'file', accept: 'image/jpeg,image/png', name: 'file', required: true });
  const [nw, name] = field(t('name'), { type: 'text', name: 'name', maxlength: 100, required: true });
  const drop = h('div', { class: 'drop' }, t('dropHere'));
  const form = h('form', { class: 'card' }, h('h2', {}, t('upload')), fw, drop, nw, h('button', { type: 'submit' }, t('upload')));
  const list = h('ul', { class: 'bglist' });
  root.append(form, status, list);
  let dropped = null;

  const send = async (f, n) => {
    const fd = new FormData();
    fd.append('name', n);
    fd.append('file', f, f.name);
    await api('/admin/backgrounds', { method: 'POST', body: fd });
  };
  file.addEventListener('change', () => { dropped = null; if (!name.value && file.files[0]) name.value = file.files[0].name.replace(/\.[^.]+$/, ''); });
  for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault(); drop.classList.remove('over');
    dropped = e.dataTransfer.files[0] || null;
    if (dropped) { drop.textContent = dropped.name; if (!name.value) name.value = dropped.name.replace(/\.[^.]+$/, ''); }
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = dropped || file.files[0];
    if (!f) return;
    try { await send(f, name.value); status.textContent = t('uploaded'); form.reset(); dropped = null; drop.textContent = t('dropHere'); await load(); }
    catch (ex) { status.textContent = `${t('error')}: ${ex.message}`; }
  });

  const act = (fn) => async () => { try { await fn(); await load(); } catch (ex) { status.textContent = `${t('error')}: ${ex.message}`; } };
  async function load() {
    const bgs = await api('/admin/backgrounds');
    clear(list);
    if (!bgs.length) list.append(h('li', {}, t('noBackgrounds')));
    bgs.forEach((b, i) => {
      const [rw, rn] = field(`${t('name')} (${b.id})`, { type: 'text', value: b.name, maxlength: 100 });
      const patch = (body) => api(`/admin/backgrounds/${encodeURIComponent(b.id)}`, { method: 'PATCH', json: body });
      const swap = (j) => act(async () => {
        const o = bgs[j];
        const [p, q] = b.position === o.position ? [j, i] : [o.position, b.position];
        await patch({ position: p });
        await api(`/admin/backgrounds/${encodeURIComponent(o.id)}`, { method: 'PATCH', json: { position: q } });
      });
      list.append(h('li', { class: 'card bg' },
        h('img', { src: b.thumbnail_url, alt: b.name, width: 160, height: 90 }),
        h('div', {}, h('p', { class: 'bgname' }, b.name), h('p', { class: 'hint' }, `${b.width} × ${b.height} · ${bytes(b.bytes)}`), rw,
          h('div', { class: 'actions' },
            h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('rename')} ${b.name}`, onclick: act(() => patch({ name: rn.value })) }, t('rename')),
            i > 0 ? h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('up')} ${b.name}`, onclick: swap(i - 1) }, '↑') : null,
            i < bgs.length - 1 ? h('button', { type: 'button', class: 'secondary', 'aria-label': `${t('down2')} ${b.name}`, onclick: swap(i + 1) }, '↓') : null,
            h('button', { type: 'button', class: 'danger', 'aria-label': `${t('del')} ${b.name}`, onclick: act(async () => {
              if (confirm(`${t('del')} ?`)) await api(`/admin/backgrounds/${encodeURIComponent(b.id)}`, { method: 'DELETE' });
            }) }, t('del'))))));
    });
  }
  await load();
  return null;
}
