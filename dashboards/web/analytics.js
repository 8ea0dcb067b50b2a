// /dashboard/analytics: KPI tiles, charts, tables for a channel (and one of its
// streams) over a date range kept in the URL; polls for fresh data.
import './style.css';
import { ApiError, describe, exportCsv, getJson } from './api.js';
import { chartCard } from './charts.js';
import { dateTime, toLocalInput } from './format.js';
import { tiles } from './kpi.js';
import { PRESETS, readState, stepFor, window_, writeState } from './state.js';
import { rowsOf, tableCard } from './tables.js';

const STREAM_KPIS = [
  { name: 'peak_concurrent', label: 'Peak viewers', kind: 'count' },
  { name: 'avg_concurrent', label: 'Average viewers', kind: 'decimal' },
  { name: 'unique_viewers', label: 'Unique viewers', kind: 'count' },
  { name: 'views', label: 'Views', kind: 'count' },
  { name: 'watch_minutes', label: 'Watch minutes', kind: 'decimal' },
  { name: 'new_followers', label: 'New followers', kind: 'count' },
  { name: 'conversion_rate', label: 'Follower conversion', kind: 'ratio' },
  { name: 'chat_messages', label: 'Chat messages', kind: 'count' },
  { name: 'duration_s', label: 'Stream duration', kind: 'duration' },
  { name: 'rebuffer_ratio', label: 'Rebuffer ratio', kind: 'ratio' },
  { name: 'rebuffer_frequency', label: 'Rebuffers per minute', kind: 'decimal' },
  { name: 'startup_p50_ms', label: 'Startup p50', kind: 'ms' },
  { name: 'startup_p95_ms', label: 'Startup p95', kind: 'ms' },
  { name: 'playback_failure_rate', label: 'Playback failures', kind: 'ratio' },
];

const CHANNEL_KPIS = [
  { name: 'hours_streamed', label: 'Hours streamed', kind: 'hours' },
  { name: 'total_views', label: 'Total views', kind: 'count' },
  { name: 'avg_peak_viewers', label: 'Average peak viewers', kind: 'decimal' },
  { name: 'follower_growth_wow_pct', label: 'Followers, week over week', kind: 'pct' },
  { name: 'follower_growth_mom_pct', label: 'Followers, month over month', kind: 'pct' },
  { name: 'avg_viewers_growth_wow_pct', label: 'Avg viewers, week over week', kind: 'pct' },
  { name: 'most_watched_category', label: 'Most watched category', kind: 'text' },
];

/** Charted metrics of the selected scope: [chart id, title, [[metric, label, kind]]]. */
const SERIES_CHARTS = [
  ['engagement', 'Engagement: chat and follows', [['chat_messages', 'Chat messages', 'count'], ['new_followers', 'New followers', 'count']]],
  ['audience', 'Views and unique viewers', [['views', 'Views', 'count'], ['unique_viewers', 'Unique viewers', 'count']]],
  ['watch', 'Watch minutes', [['watch_minutes', 'Watch minutes', 'decimal']]],
  ['quality', 'Playback quality: rebuffering and failures', [['rebuffer_ratio', 'Rebuffer ratio', 'ratio'], ['playback_failure_rate', 'Playback failure rate', 'ratio']]],
  ['startup', 'Startup time percentiles', [['startup_p50_ms', 'p50', 'ms'], ['startup_p95_ms', 'p95', 'ms'], ['startup_p99_ms', 'p99', 'ms']]],
];

/** The device values of the `by=device` breakdown (PROTOCOL.md §1, plus unknown). */
const DEVICES = ['desktop', 'mobile', 'tablet', 'tv', 'other', 'unknown'];

const $ = (id) => document.getElementById(id);
/** Test and benchmark hooks (what the page asked for), next to the charts'. */
const hooks = (window.__pulse = window.__pulse || { charts: {} });
let state = readState();
let current = null; // { from, to, step, scope }
let channelAnswer = null;
const listeners = [];

function scopeOf(s) {
  if (s.stream) return { kind: 'stream', id: s.stream };
  if (s.channel) return { kind: 'channel', id: s.channel };
  return null;
}

function banner(text) {
  const b = $('banner');
  b.textContent = text || '';
  b.hidden = !text;
}

async function seriesValues(metric, scope, win, field = 'value') {
  const a = await getJson('/api/analytics/series', { metric, [scope.kind]: scope.id, from: win.from, to: win.to, step: win.step });
  // The API gives startup percentiles as 0 where no view started; no startup takes
  // 0 ms, so such a bucket is drawn as a gap rather than a fall to zero.
  const gap = metric.startsWith('startup_');
  return { t: a.points.map((p) => p.t), v: a.points.map((p) => (p[field] === undefined || (gap && p[field] === 0) ? null : p[field])) };
}

function buildCharts() {
  const box = $('charts');
  box.replaceChildren();
  listeners.length = 0;
  const scope = () => current.scope;
  listeners.push(
    chartCard(box, {
      id: 'viewers',
      title: 'Viewers over time',
      note: 'Average concurrent viewers per bucket (solid) with the peak (dashed).',
      series: [{ label: 'Average viewers', kind: 'decimal' }, { label: 'Peak viewers', kind: 'count' }],
      async load(win) {
        const s = scope();
        const a = await getJson('/api/analytics/charts/viewers', { [s.kind]: s.id, from: win.from, to: win.to, step: win.step });
        return { t: a.points.map((p) => p.t), values: [a.points.map((p) => p.value), a.points.map((p) => p.peak ?? null)] };
      },
    }),
  );
  for (const [id, title, metrics] of SERIES_CHARTS) {
    listeners.push(
      chartCard(box, {
        id,
        title,
        note: id === 'startup' ? 'Gaps: no view started in that bucket.' : undefined,
        series: metrics.map(([, label, kind]) => ({ label, kind })),
        async load(win) {
          const s = scope();
          const all = await Promise.all(metrics.map(([m]) => seriesValues(m, s, win)));
          return { t: all[0].t, values: all.map((x) => x.v) };
        },
      }),
    );
  }
  // Playback quality by device (the API's `by=device` breakdown, per minute at least).
  // Devices are a fixed set, so the chart's series are too; the rest are gaps.
  listeners.push(
    chartCard(box, {
      id: 'quality-device',
      title: 'Rebuffer ratio by device',
      note: 'Share of watch time spent rebuffering, per viewer device. Gaps: no watch time from that device.',
      series: DEVICES.map((d) => ({ label: d, kind: 'ratio' })),
      async load(win) {
        const s = scope();
        const step = Math.max(win.step, 60_000);
        const from = Math.floor(win.from / step) * step;
        const a = await getJson('/api/analytics/series', { metric: 'rebuffer_ratio', [s.kind]: s.id, from, to: win.to, step, by: 'device' });
        const t = [];
        for (let x = from; x < win.to; x += step) t.push(x);
        // A bucket where a device watched nothing is a gap, not a ratio of 0.
        const watched = await getJson('/api/analytics/series', { metric: 'watch_minutes', [s.kind]: s.id, from, to: win.to, step, by: 'device' });
        const values = DEVICES.map((d) => {
          const g = a.groups.find((x) => x.key === d);
          const w = watched.groups.find((x) => x.key === d);
          if (!g || !w) return t.map(() => null);
          const at = new Map(g.points.map((p, i) => [p.t, w.points[i].value > 0 ? p.value : null]));
          return t.map((x) => (at.has(x) ? at.get(x) : null));
        });
        hooks.byDevice = { rebuffer: a, watch: watched };
        return { t, values, range: [from, win.to] };
      },
    }),
  );
  listeners.push(
    chartCard(box, {
      id: 'growth',
      title: 'Channel growth: new followers and views',
      note: 'Whole channel, per day (per hour for ranges under a week).',
      series: [{ label: 'New followers', kind: 'count' }, { label: 'Views', kind: 'count' }],
      async load(win) {
        if (!state.channel) throw new ApiError('bad_request', 0, 'pick a channel to see its growth');
        const span = win.to - win.from;
        const step = span >= 7 * 24 * 3600e3 ? 24 * 3600e3 : 3600e3;
        const from = Math.floor(win.from / step) * step;
        const g = { from, to: Math.ceil(win.to / step) * step, step };
        const scope = { kind: 'channel', id: state.channel };
        const [f, v] = await Promise.all([seriesValues('new_followers', scope, g), seriesValues('views', scope, g)]);
        return { t: f.t, values: [f.v, v.v], range: [g.from, g.to] };
      },
    }),
  );
}

const tablesUi = {};
function buildTables() {
  const box = $('tables');
  box.replaceChildren();
  tablesUi.best = tableCard(box, 'best-streams', 'Best performing streams', [
    { label: 'Stream', get: (r) => r.stream },
    { label: 'Watch minutes', get: (r) => r.watch_minutes, kind: 'decimal' },
    { label: 'Peak viewers', get: (r) => r.peak_concurrent, kind: 'count' },
  ]);
  tablesUi.topVods = tableCard(box, 'top-vods', 'Top VODs', [
    { label: 'VOD', get: (r) => r.title || r.id || r.vod },
    { label: 'Views', get: (r) => r.views ?? r.view_count, kind: 'count' },
    { label: 'Likes', get: (r) => r.likes ?? r.like_count, kind: 'count' },
  ]);
  tablesUi.topClips = tableCard(box, 'top-clips', 'Top clips', [
    { label: 'Clip', get: (r) => r.title || r.id || r.clip },
    { label: 'Views', get: (r) => r.views ?? r.view_count, kind: 'count' },
    { label: 'Trending score', get: (r) => r.trending_score, kind: 'decimal' },
  ]);
  tablesUi.vods = tableCard(box, 'vods', 'Most watched VODs', [
    { label: 'Title', get: (r) => r.title },
    { label: 'Created', get: (r) => (r.created_at ? dateTime(r.created_at) : '—') },
    { label: 'Views', get: (r) => r.view_count, kind: 'count' },
    { label: 'Clips', get: (r) => r.clip_count, kind: 'count' },
  ]);
  tablesUi.clips = tableCard(box, 'clips', 'Latest clips', [
    { label: 'Title', get: (r) => r.title },
    { label: 'Views', get: (r) => r.view_count, kind: 'count' },
    { label: 'Likes', get: (r) => r.like_count, kind: 'count' },
    { label: 'Shares', get: (r) => r.share_count, kind: 'count' },
  ]);
}

let streamTiles;
let channelTiles;

async function loadStreamKpis() {
  if (!state.stream) {
    $('h-stream-kpis').textContent = 'Stream';
    streamTiles.fail(null, 'pick a stream');
    return;
  }
  $('h-stream-kpis').textContent = `Stream ${state.stream} (whole stream)`;
  try {
    const a = await getJson(`/api/analytics/streams/${encodeURIComponent(state.stream)}`);
    streamTiles.set(a.metrics || {});
    const status = { LIVE: 'live now', ENDED: 'ended' }[a.status] || 'status unknown';
    $('h-stream-kpis').textContent = `Stream ${state.stream} (whole stream, ${status})`;
  } catch (e) {
    noteAuth(e);
    streamTiles.fail(e);
  }
}

async function loadChannel() {
  if (!state.channel) {
    channelTiles.fail(null, 'pick a channel');
    for (const t of Object.values(tablesUi)) t.fail(new ApiError('bad_request', 0, 'pick a channel'));
    return;
  }
  $('h-channel-kpis').textContent = `Channel ${state.channel} (selected range)`;
  const id = encodeURIComponent(state.channel);
  const tasks = [
    getJson(`/api/analytics/channels/${id}`, { from: current.from, to: current.to }).then(
      (a) => {
        channelAnswer = a;
        channelTiles.set(a.metrics || {});
        tablesUi.best.set((a.metrics && a.metrics.best_streams) || []);
      },
      (e) => {
        noteAuth(e);
        channelTiles.fail(e);
        tablesUi.best.fail(e);
      },
    ),
    getJson(`/api/channels/${id}/top-vods`, { from: current.from, to: current.to }).then(
      (a) => tablesUi.topVods.set(rowsOf(a).slice(0, 10)),
      (e) => tablesUi.topVods.fail(e),
    ),
    getJson(`/api/channels/${id}/top-clips`, { from: current.from, to: current.to }).then(
      (a) => tablesUi.topClips.set(rowsOf(a).slice(0, 10)),
      (e) => tablesUi.topClips.fail(e),
    ),
    getJson(`/api/channels/${id}/vods`, { sort: 'watched', per_page: 10 }).then(
      (a) => {
        tablesUi.vods.set(rowsOf(a));
        fillStreams(rowsOf(a).map((v) => v.stream));
      },
      (e) => tablesUi.vods.fail(e),
    ),
    getJson(`/api/channels/${id}/clips`, { per_page: 10 }).then(
      (a) => tablesUi.clips.set(rowsOf(a)),
      (e) => tablesUi.clips.fail(e),
    ),
  ];
  await Promise.all(tasks);
  if (channelAnswer && channelAnswer.metrics && channelAnswer.metrics.best_streams) {
    fillStreams(channelAnswer.metrics.best_streams.map((s) => s.stream));
  }
}

const knownStreams = new Set();
function fillStreams(ids) {
  const list = $('streams');
  for (const s of ids) {
    if (s && !knownStreams.has(s)) {
      knownStreams.add(s);
      const o = document.createElement('option');
      o.value = s;
      list.append(o);
    }
  }
}

let authNoted = false;
function noteAuth(e) {
  if (e && e.kind === 'unauthorized' && !authNoted) {
    authNoted = true;
    banner(describe(e));
  }
}

async function refresh() {
  const w = window_(state);
  const step = stepFor(w.to - w.from);
  current = { from: Math.floor(w.from / step) * step, to: Math.ceil(w.to / step) * step, step, scope: scopeOf(state) };
  hooks.current = current;
  $('range-label').textContent = `${dateTime(current.from)} to ${dateTime(current.to)} · ${Math.round(step / 60e3)}-minute buckets${state.range ? ` · last ${state.range}` : ''}`;
  if (!current.scope) {
    banner('Pick a channel (and optionally one of its streams) above.');
  }
  const jobs = [loadStreamKpis(), loadChannel()];
  if (current.scope) for (const l of listeners) jobs.push(l.update({ ...current }));
  else for (const l of listeners) jobs.push(l.update(null));
  await Promise.all(jobs);
  $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  document.body.dataset.loaded = String((Number(document.body.dataset.loaded) || 0) + 1);
}

function fillForm() {
  $('f-channel').value = state.channel;
  $('f-stream').value = state.stream;
  const w = window_(state);
  $('f-from').value = toLocalInput(w.from);
  $('f-to').value = toLocalInput(w.to);
  for (const b of document.querySelectorAll('[data-range]')) {
    b.setAttribute('aria-pressed', String(state.range === b.dataset.range));
  }
  $('nav-live').href = state.channel ? `/dashboard/live?channel=${encodeURIComponent(state.channel)}` : '/dashboard/live';
}

function apply(next) {
  state = { ...state, ...next };
  writeState(state);
  fillForm();
  banner('');
  authNoted = false;
  refresh();
}

async function onExport() {
  if (!current || !current.scope) {
    banner('Pick a channel or stream before exporting.');
    return;
  }
  const metrics = ['viewers', ...SERIES_CHARTS.flatMap(([, , ms]) => ms.map(([m]) => m))];
  const btn = $('export');
  btn.disabled = true;
  try {
    const body = { metrics, [current.scope.kind]: current.scope.id, from: current.from, to: current.to, step: current.step };
    hooks.lastExport = body;
    const { blob, filename } = await exportCsv(body);
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (e) {
    banner(`Export failed. ${describe(e)}`);
  } finally {
    btn.disabled = false;
  }
}

function main() {
  streamTiles = tiles($('stream-kpis'), STREAM_KPIS);
  channelTiles = tiles($('channel-kpis'), CHANNEL_KPIS);
  buildCharts();
  buildTables();
  fillForm();
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const from = Date.parse($('f-from').value);
    const to = Date.parse($('f-to').value);
    const w = window_(state);
    const custom = !Number.isNaN(from) && !Number.isNaN(to) && to > from && (from !== w.from || to !== w.to);
    apply({
      channel: $('f-channel').value.trim(),
      stream: $('f-stream').value.trim(),
      ...(custom ? { from, to, range: null } : {}),
    });
  });
  for (const b of document.querySelectorAll('[data-range]')) {
    b.addEventListener('click', () => {
      if (PRESETS[b.dataset.range]) apply({ range: b.dataset.range, from: null, to: null });
    });
  }
  $('export').addEventListener('click', onExport);
  window.addEventListener('popstate', () => {
    state = readState();
    fillForm();
    refresh();
  });
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, state.refresh * 1000);
  refresh();
}

main();
