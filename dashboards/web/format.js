// Number formatting for tiles, tables and axes (en-US grouping, fixed decimals).

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const one = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const two = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

/** Formats `v` by kind: count, decimal, ratio (shown as %), pct (already %), ms, s, text. */
export function fmt(v, kind) {
  if (v === null || v === undefined) return '—';
  if (kind === 'text' || kind === undefined) {
    const s = String(v).trim();
    return s === '' ? '—' : s;
  }
  // Every other kind is a number: anything that is not one is shown as a dash, never
  // as "NaN" or "undefined".
  if (typeof v !== 'number') v = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(v)) return '—';
  switch (kind) {
    case 'count':
      return int.format(v);
    case 'decimal':
      return one.format(v);
    case 'ratio':
      return `${two.format(v * 100)} %`;
    case 'pct':
      return `${one.format(v)} %`;
    case 'ms':
      return `${int.format(v)} ms`;
    case 'duration':
      return duration(v);
    case 'hours':
      return `${one.format(v)} h`;
    default:
      return String(v);
  }
}

function duration(s) {
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${sec} s` : `${sec} s`;
}

/** `2026-11-24 21:05` in the viewer's time zone. */
export function dateTime(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Value for an <input type="datetime-local">. */
export function toLocalInput(ms) {
  return dateTime(ms).replace(' ', 'T');
}
