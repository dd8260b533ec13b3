// DOM helpers: every value is set as text or as an attribute, never parsed as HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
export function id(prefix) { uid += 1; return `${prefix}-${uid}`; }

// A labelled form field: returns [wrapper, input].
export function field(label, attrs = {}, hint = null) {
  const fid = id('f');
  const input = h(attrs.tag || 'input', { ...attrs, tag: null, id: fid });
  const err = h('p', { class: 'field-error', id: `${fid}-err`, role: 'alert' });
  const wrap = h('div', { class: 'field' }, h('label', { for: fid }, label), input,
    hint ? h('p', { class: 'hint' }, hint) : null, err);
  input.setAttribute('aria-describedby', `${fid}-err`);
  return [wrap, input, err];
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${u[i]}`;
}

// A modal <dialog> named by its title (focus kept inside, Escape closes it); it leaves the
// page once closed. The caller appends its content, then calls showModal().
export function modal(title, cls = '') {
  const tid = id('dlg');
  const dlg = h('dialog', { class: `modal ${cls}`.trim(), 'aria-labelledby': tid }, h('h2', { id: tid }, title));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  return dlg;
}

// Asks before something that cannot be undone: resolves true when confirmed.
export function confirmDialog(title, text, yes, no) {
  return new Promise((resolve) => {
    const dlg = modal(title, 'confirm');
    const did = id('dlg-d');
    dlg.setAttribute('role', 'alertdialog');
    dlg.setAttribute('aria-describedby', did);
    let answer = false;
    dlg.addEventListener('close', () => resolve(answer));
    dlg.append(h('p', { id: did }, text), h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'danger', onclick: () => { answer = true; dlg.close(); } }, yes),
      h('button', { type: 'button', class: 'secondary', autofocus: true, onclick: () => dlg.close() }, no)));
    dlg.showModal();
  });
}
