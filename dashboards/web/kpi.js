// KPI tiles: one per metric, `data-kpi="<metric name>"`, the raw API value in
// `data-value`, and a visible text state when a value is not available.
import { describe } from './api.js';
import { fmt } from './format.js';

/** Renders tiles for `defs` ([{name, label, kind}]) into `parent`; returns setters. */
export function tiles(parent, defs) {
  parent.replaceChildren();
  const byName = {};
  for (const d of defs) {
    const t = document.createElement('div');
    t.className = 'kpi';
    t.dataset.kpi = d.name;
    t.dataset.state = 'loading';
    t.setAttribute('role', 'group');
    t.setAttribute('aria-label', d.label);
    const label = document.createElement('span');
    label.className = 'kpi-label';
    label.textContent = d.label;
    const value = document.createElement('span');
    value.className = 'kpi-value';
    value.textContent = '…';
    const note = document.createElement('span');
    note.className = 'kpi-note';
    t.append(label, value, note);
    parent.append(t);
    byName[d.name] = { t, value, note, d };
  }
  return {
    /** Values from an API `metrics` object. */
    set(metrics) {
      for (const { t, value, note, d } of Object.values(byName)) {
        const v = metrics[d.name];
        const text = fmt(v, d.kind);
        if (v === undefined || v === null) {
          t.dataset.state = 'missing';
          delete t.dataset.value;
          value.textContent = '—';
          note.textContent = 'not in the answer';
        } else if (text === '—') {
          // Something the tile cannot show: an empty name (no category in the range,
          // say) or, for a number, anything that is not a finite one. A dash and a
          // word, never a blank, "NaN" or "undefined"; the raw value stays in data-value.
          const empty = typeof v === 'string' && v.trim() === '';
          t.dataset.state = empty ? 'none' : 'invalid';
          t.dataset.value = String(v);
          value.textContent = '—';
          note.textContent = empty ? 'none in this range' : 'not a number';
        } else {
          t.dataset.state = 'ready';
          t.dataset.value = typeof v === 'number' ? String(v) : v;
          value.textContent = text;
          note.textContent = '';
        }
      }
    },
    /** Every tile shows the same non-value state (error, not available, no stream). */
    fail(err, text) {
      const state = err && err.kind === 'unavailable' ? 'unavailable' : err ? 'error' : 'empty';
      for (const { t, value, note } of Object.values(byName)) {
        t.dataset.state = state;
        delete t.dataset.value;
        value.textContent = '—';
        note.textContent = text || (state === 'unavailable' ? 'not available' : 'error');
      }
      return err ? describe(err) : text;
    },
  };
}
