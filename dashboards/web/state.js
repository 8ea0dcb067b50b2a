// The page's state lives in its URL (?channel=&stream=&from=&to= or &range=), so a
// link reproduces a view. Presets are rolling windows ending now.

export const PRESETS = { '1h': 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3, '30d': 30 * 24 * 3600e3 };
const MINUTE = 60e3;
const HOUR = 3600e3;

function num(v) {
  if (v === null || v === '') return null;
  if (/^-?\d+$/.test(v)) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : t;
}

/** Reads the state from `location.search`. */
export function readState(search = location.search) {
  const q = new URLSearchParams(search);
  const from = num(q.get('from'));
  const to = num(q.get('to'));
  const custom = from !== null && to !== null && to > from;
  const range = PRESETS[q.get('range')] ? q.get('range') : '24h';
  const refresh = Math.min(3600, Math.max(1, Number(q.get('refresh')) || 30));
  return {
    channel: q.get('channel') || '',
    stream: q.get('stream') || '',
    from: custom ? from : null,
    to: custom ? to : null,
    range: custom ? null : range,
    refresh,
  };
}

/** The absolute [from, to) of a state at `now`. */
export function window_(state, now = Date.now()) {
  if (state.from !== null && state.to !== null) return { from: state.from, to: state.to };
  const to = Math.ceil(now / MINUTE) * MINUTE;
  return { from: to - PRESETS[state.range || '24h'], to };
}

/** Chart step for a span: about 100 to 1500 points, a multiple of the 5 s tick, and at
 * least a minute (distinct-viewer metrics need it). */
export function stepFor(span) {
  if (span <= 3 * HOUR) return MINUTE;
  if (span <= 2 * 24 * HOUR) return 5 * MINUTE;
  if (span <= 60 * 24 * HOUR) return HOUR;
  return 24 * HOUR;
}

/** Writes the state to the URL (a new history entry) without reloading. */
export function writeState(state) {
  const q = new URLSearchParams();
  if (state.channel) q.set('channel', state.channel);
  if (state.stream) q.set('stream', state.stream);
  if (state.from !== null && state.to !== null) {
    q.set('from', String(state.from));
    q.set('to', String(state.to));
  } else if (state.range) q.set('range', state.range);
  if (state.refresh && state.refresh !== 30) q.set('refresh', String(state.refresh));
  history.pushState(null, '', `${location.pathname}?${q}`);
}
