// API reference: /openapi.json rendered offline, operations grouped by tag.
import { h } from './dom.js';
import { t } from './i18n.js';

function deref(doc, schema) {
  if (schema && schema.$ref) return [schema.$ref.split('/').pop(), doc.components?.schemas?.[schema.$ref.split('/').pop()] || {}];
  return [null, schema || {}];
}

function schemaView(doc, schema, depth = 0) {
  const [name, sc] = deref(doc, schema);
  if (name && depth > 0) return h('code', {}, name);
  const box = h('div', { class: 'schema' });
  if (name) box.append(h('p', {}, h('code', {}, name)));
  if (sc.description) box.append(h('p', { class: 'hint' }, sc.description));
  if (sc.properties) {
    const req = new Set(sc.required || []);
    const ul = h('ul', { class: 'props' });
    for (const [k, v] of Object.entries(sc.properties)) {
      const [rn, rv] = deref(doc, v);
      const type = rn || rv.type || (rv.oneOf || rv.anyOf ? 'oneOf' : '') || '';
      const li = h('li', {}, h('code', {}, k), ' ', h('span', { class: 'type' }, Array.isArray(type) ? type.join(' | ') : type),
        req.has(k) ? h('span', { class: 'req' }, ` ${t('required')}`) : null, rv.description ? ` — ${rv.description}` : '');
      if (!rn && rv.type === 'object' && depth < 3 && rv.properties) li.append(schemaView(doc, rv, depth + 1));
      if (rv.type === 'array' && rv.items) li.append(' [', schemaView(doc, rv.items, depth + 1), ']');
      ul.append(li);
    }
    box.append(ul);
  } else if (sc.type) {
    box.append(h('p', {}, h('span', { class: 'type' }, String(sc.type))));
    if (sc.items) box.append(schemaView(doc, sc.items, depth + 1));
  }
  return box;
}

function operation(doc, method, path, op) {
  const d = h('details', { class: 'op' }, h('summary', {}, h('span', { class: `verb ${method}` }, method.toUpperCase()), ' ', h('code', {}, path), ' ', op.summary || ''));
  if (op.description) d.append(h('p', {}, op.description));
  if (op.parameters?.length) {
    const ul = h('ul', { class: 'props' });
    for (const p of op.parameters) {
      ul.append(h('li', {}, h('code', {}, p.name), ` (${p.in}) `, h('span', { class: 'type' }, p.schema?.type || ''),
        p.required ? h('span', { class: 'req' }, ` ${t('required')}`) : null, p.description ? ` — ${p.description}` : ''));
    }
    d.append(h('h4', {}, t('parameters')), ul);
  }
  if (op.requestBody?.content) {
    d.append(h('h4', {}, t('requestBody')));
    for (const [type, c] of Object.entries(op.requestBody.content)) d.append(h('p', {}, h('code', {}, type)), c.schema ? schemaView(doc, c.schema) : '');
  }
  const rl = h('ul', { class: 'responses' });
  for (const [code, r] of Object.entries(op.responses || {})) {
    const li = h('li', {}, h('strong', {}, code), ` ${r.description || ''}`);
    for (const [type, c] of Object.entries(r.content || {})) li.append(h('p', {}, h('code', {}, type)), c.schema ? schemaView(doc, c.schema, 1) : '');
    rl.append(li);
  }
  d.append(h('h4', {}, t('responses')), rl);
  return d;
}

export async function render(root) {
  const r = await fetch('/openapi.json');
  const doc = await r.json();
  root.append(h('p', {}, `${doc.info?.title || ''} ${doc.info?.version || ''}`), h('p', { class: 'hint' }, doc.info?.description || ''));
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const [m, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(m)) continue;
      const tag = op.tags?.[0] || 'other';
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push([m, path, op]);
    }
  }
  const tagDesc = Object.fromEntries((doc.tags || []).map((x) => [x.name, x.description]));
  for (const [tag, ops] of groups) {
    const sec = h('section', { class: 'card' }, h('h2', {}, tag), tagDesc[tag] ? h('p', { class: 'hint' }, tagDesc[tag]) : null,
      h('p', { class: 'hint' }, `${ops.length} ${t('operations')}`));
    for (const [m, p, op] of ops) sec.append(operation(doc, m, p, op));
    root.append(sec);
  }
  return null;
}
