// Charts: uPlot instances that load when they scroll into view, show loading, empty
// and error states in place of a blank box, and redraw on refresh.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { describe } from './api.js';
import { dateTime } from './format.js';

/** Test and benchmark hooks: charts by id, their data and draw counts. */
const hooks = (window.__pulse = window.__pulse || { charts: {} });

const PALETTE = ['#1f5fbf', '#c2410c', '#15803d', '#7e22ce', '#0f766e', '#52525b'];
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 2], [12, 4]];

let expected = 0;
let drawnOnce = 0;
let settledCount = 0;

/**
 * A chart card. `spec`: { id, title, note?, series: [{label, kind, axis?}], load(win) →
 * Promise<{ t: number[] (ms), values: (number|null)[][] }> }.
 */
export function chartCard(parent, spec) {
  expected += 1;
  const card = el('section', 'card chart-card');
  card.dataset.chart = spec.id;
  card.dataset.state = 'idle';
  card.setAttribute('aria-labelledby', `h-${spec.id}`);
  const h = el('h3');
  h.id = `h-${spec.id}`;
  h.textContent = spec.title;
  card.append(h);
  if (spec.note) {
    const n = el('p', 'note');
    n.textContent = spec.note;
    card.append(n);
  }
  const status = el('p', 'chart-status');
  status.setAttribute('role', 'status');
  status.textContent = 'Loading…';
  const box = el('div', 'chart-box');
  card.append(status, box);
  parent.append(card);

  let u = null;
  let visible = false;
  let win = null;
  let seq = 0;
  let firstDraw = true;
  let xRange = [0, 1];
  const entry = { id: spec.id, data: null, version: 0, state: 'idle', card };
  hooks.charts[spec.id] = entry;

  const setState = (s, text) => {
    card.dataset.state = s;
    entry.state = s;
    status.textContent = text || '';
    status.hidden = !text;
    box.hidden = s !== 'ready';
  };

  const draw = (data) => {
    const width = Math.max(240, box.clientWidth || card.clientWidth - 32);
    const height = window.innerWidth < 600 ? 180 : 220;
    if (!u) {
      const opts = {
        width,
        height,
        legend: { live: true },
        cursor: { focus: { prox: 16 } },
        // The x scale is the asked range, so a range with one bucket is not stretched
        // into years around it.
        scales: { x: { time: true, range: () => xRange } },
        axes: [
          { stroke: '#333', grid: { stroke: '#e5e5e5' } },
          { stroke: '#333', grid: { stroke: '#e5e5e5' }, size: 64, values: (_, v) => v.map((x) => tickFmt(x, spec.series[0].kind)) },
        ],
        series: [
          { label: 'Time', value: (_, v) => (v === null ? '—' : dateTime(v * 1000)) },
          ...spec.series.map((s, i) => ({
            label: s.label,
            stroke: PALETTE[i % PALETTE.length],
            width: 2,
            dash: DASHES[i % DASHES.length],
            spanGaps: false,
            // Few buckets: mark each one (a lone point draws no line).
            points: { show: (self) => self.data[0].length <= 12, size: 6 },
            value: (_, v) => (v === null || v === undefined ? '—' : axisFmt(v, s.kind)),
          })),
        ],
        hooks: {
          draw: [
            () => {
              entry.version += 1;
              card.dataset.version = String(entry.version);
              if (firstDraw) {
                firstDraw = false;
                performance.mark(`pulse:chart:${spec.id}`);
                drawnOnce += 1;
                if (drawnOnce === 1) performance.mark('pulse:first-chart');
                settle();
              }
            },
          ],
        },
      };
      u = new uPlot(opts, data, box);
      entry.u = u;
      new ResizeObserver(() => {
        const w = Math.max(240, box.clientWidth);
        if (u && w !== u.width) u.setSize({ width: w, height: u.height });
      }).observe(box);
    } else {
      u.setData(data);
    }
  };

  // First answer of this chart (drawn, empty or failed): when every chart has one,
  // the page is complete (`pulse:all-charts`).
  let settled = false;
  const settle = () => {
    if (settled) return;
    settled = true;
    settledCount += 1;
    if (settledCount === expected) performance.mark('pulse:all-charts');
  };

  const load = async () => {
    if (!visible || !win) return;
    const my = ++seq;
    if (entry.state !== 'ready') setState('loading', 'Loading…');
    try {
      const r = await spec.load(win);
      if (my !== seq) return;
      const data = [r.t.map((t) => t / 1000), ...r.values];
      const [x0, x1] = r.range || [win.from, win.to];
      xRange = [x0 / 1000, x1 / 1000];
      entry.data = { t: r.t, values: r.values };
      const any = r.values.some((vs) => vs.some((v) => v !== null && v !== 0));
      if (!r.t.length || !any) {
        setState('empty', 'No data in this range yet.');
        entry.version += 1;
        card.dataset.version = String(entry.version);
        settle();
        return;
      }
      setState('ready');
      draw(data);
    } catch (e) {
      if (my !== seq) return;
      const kind = e && e.kind === 'unavailable' ? 'unavailable' : 'error';
      setState(kind, describe(e));
      entry.version += 1;
      card.dataset.version = String(entry.version);
      settle();
    }
  };

  const io = new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting) && !visible) {
        visible = true;
        io.disconnect();
        load();
      }
    },
    { rootMargin: '200px' },
  );
  io.observe(card);

  return {
    /** New range (or a poll): reload when the card has been seen. */
    update(newWin) {
      win = newWin;
      return load();
    },
  };
}

/** Axis ticks: short, so they fit the 64 px axis at any width. */
function tickFmt(v, kind) {
  if (v === null || v === undefined) return '';
  if (kind === 'ratio') {
    const p = v * 100;
    return `${p < 10 && p !== 0 ? p.toFixed(1) : Math.round(p)} %`;
  }
  if (kind === 'ms') return v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${Math.round(v)} ms`;
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/** Legend values: full precision for reading off a point. */
function axisFmt(v, kind) {
  if (v === null || v === undefined) return '—';
  if (kind === 'ratio') return `${(v * 100).toFixed(2)} %`;
  if (kind === 'ms') return `${Math.round(v)} ms`;
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}
