// SVG charts of a kiosk's history, drawn from the JSON: one bar (backlog) or one point
// (free disk) per history row, placed by time; each mark carries its value in a <title>.
import { h, s } from './dom.js';

const W = 640; const H = 170; const LEFT = 64; const BOTTOM = 22; const TOP = 8;

function times(points) {
  const t = points.map((p) => Date.parse(p.seen_at));
  const lo = Math.min(...t); const hi = Math.max(...t);
  const span = Math.max(1, hi - lo);
  return { x: (i) => LEFT + ((t[i] - lo) / span) * (W - LEFT - 8), lo, hi };
}

function frame(title, top, when, fmtTime) {
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  svg.append(s('rect', { x: LEFT, y: TOP, width: W - LEFT - 8, height: H - TOP - BOTTOM, class: 'frame' }),
    s('text', { x: 2, y: TOP + 10, class: 'label' }, top),
    s('text', { x: 2, y: H - BOTTOM, class: 'label' }, '0'),
    s('text', { x: LEFT, y: H - 6, class: 'label' }, fmtTime(when.lo)),
    s('text', { x: W - 8, y: H - 6, class: 'label', 'text-anchor': 'end' }, fmtTime(when.hi)));
  return svg;
}

function figure(caption, svg) {
  return h('figure', { class: 'panel' }, h('figcaption', {}, caption), svg);
}

// Backlog as bars: the height of each is the jobs waiting at that heartbeat.
export function bars(caption, points, pick, fmt, fmtTime) {
  if (!points.length) return figure(caption, h('p', { class: 'empty' }, '–'));
  const vals = points.map(pick);
  const max = Math.max(1, ...vals.map((v) => v ?? 0));
  const when = times(points);
  const svg = frame(`${caption}: ${points.length}, max ${fmt(max)}`, fmt(max), when, fmtTime);
  const room = H - TOP - BOTTOM;
  const width = Math.max(1, Math.min(14, ((W - LEFT - 8) / points.length) * 0.7));
  points.forEach((p, i) => {
    const v = vals[i] ?? 0;
    const bh = (v / max) * room;
    const bar = s('rect', { x: when.x(i) - width / 2, y: H - BOTTOM - bh, width, height: bh, class: 'bar' });
    bar.append(s('title', {}, `${fmtTime(Date.parse(p.seen_at))}: ${vals[i] === null ? '–' : fmt(v)}`));
    svg.append(bar);
  });
  return figure(caption, svg);
}

// Free disk as a line with a point per heartbeat (rows without the figure are skipped).
export function line(caption, points, pick, fmt, fmtTime) {
  const known = points.map((p, i) => [p, i, pick(p)]).filter(([, , v]) => v !== null && v !== undefined);
  if (!known.length) return figure(caption, h('p', { class: 'empty' }, '–'));
  const max = Math.max(1, ...known.map(([, , v]) => v));
  const when = times(points);
  const svg = frame(`${caption}: ${known.length}, max ${fmt(max)}`, fmt(max), when, fmtTime);
  const room = H - TOP - BOTTOM;
  const y = (v) => H - BOTTOM - (v / max) * room;
  svg.append(s('polyline', { class: 'line', points: known.map(([, i, v]) => `${when.x(i)},${y(v)}`).join(' ') }));
  for (const [p, i, v] of known) {
    const dot = s('circle', { cx: when.x(i), cy: y(v), r: 3, class: 'point' });
    dot.append(s('title', {}, `${fmtTime(Date.parse(p.seen_at))}: ${fmt(v)}`));
    svg.append(dot);
  }
  return figure(caption, svg);
}
