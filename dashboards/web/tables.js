// Small tables (best streams, top VODs and clips, catalog lists) with the same
// loading / empty / not available / error states as the charts.
import { describe } from './api.js';
import { fmt } from './format.js';

/** A table card; `columns`: [{label, get(row), kind?}]. Returns { set(rows), fail(err) }. */
export function tableCard(parent, id, title, columns) {
  const card = document.createElement('section');
  card.className = 'card table-card';
  card.dataset.table = id;
  card.dataset.state = 'loading';
  const h = document.createElement('h3');
  h.textContent = title;
  const status = document.createElement('p');
  status.className = 'chart-status';
  status.setAttribute('role', 'status');
  status.textContent = 'Loading…';
  const wrap = document.createElement('div');
  wrap.className = 'table-wrap';
  wrap.tabIndex = 0;
  wrap.setAttribute('aria-label', `${title} (scrolls sideways)`);
  const table = document.createElement('table');
  const thead = table.createTHead().insertRow();
  for (const c of columns) {
    const th = document.createElement('th');
    th.scope = 'col';
    th.textContent = c.label;
    if (c.kind) th.className = 'num';
    thead.append(th);
  }
  const body = table.createTBody();
  wrap.append(table);
  wrap.hidden = true;
  card.append(h, status, wrap);
  parent.append(card);
  return {
    set(rows) {
      body.replaceChildren();
      if (!rows.length) {
        card.dataset.state = 'empty';
        status.textContent = 'Nothing here yet.';
        status.hidden = false;
        wrap.hidden = true;
        return;
      }
      for (const r of rows) {
        const tr = body.insertRow();
        for (const c of columns) {
          const td = tr.insertCell();
          const v = c.get(r);
          td.textContent = fmt(v, c.kind || 'text');
          if (c.kind) td.className = 'num';
        }
      }
      card.dataset.state = 'ready';
      status.hidden = true;
      wrap.hidden = false;
    },
    fail(err) {
      body.replaceChildren();
      card.dataset.state = err.kind === 'unavailable' ? 'unavailable' : 'error';
      status.textContent = describe(err);
      status.hidden = false;
      wrap.hidden = true;
    },
  };
}

/** Rows of a list answer: an array, or `{items|vods|clips|streams:[...]}`. */
export function rowsOf(answer) {
  if (Array.isArray(answer)) return answer;
  if (!answer || typeof answer !== 'object') return [];
  return answer.items || answer.vods || answer.clips || answer.streams || [];
}
