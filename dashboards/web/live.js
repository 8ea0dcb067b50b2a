// /dashboard/live?channel=: stream health of a channel's live streams from the
// /v1/live WebSocket (PROTOCOL.md §3), reconnecting with backoff; alerts with their
// guides; a visual (and, when switched on, sound) cue when one fires.
import './style.css';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { describe, getJson } from './api.js';
import { dateTime, fmt } from './format.js';

const $ = (id) => document.getElementById(id);
const WINDOW_S = 300; // bitrate graph: last 5 minutes
const STATUS = {
  excellent: { icon: '●', text: 'Excellent', hint: 'every threshold met' },
  good: { icon: '▲', text: 'Good', hint: 'a warning is firing' },
  poor: { icon: '■', text: 'Poor', hint: 'a critical alert is firing' },
  offline: { icon: '○', text: 'Offline', hint: 'no encoder message for 5 s' },
};
const ALERT_NAMES = {
  bitrate_drop: 'Bitrate drop',
  fps_drop: 'Frame rate drop',
  packet_loss: 'Packet loss',
  high_latency: 'High latency',
  connection_lost: 'Connection lost',
};

const hooks = (window.__pulse = window.__pulse || { charts: {} });
hooks.live = { messages: 0, connects: 0, drop: () => ws && ws.close() };

const channel = new URLSearchParams(location.search).get('channel') || '';
const cards = new Map(); // stream → card
let sound = false;
let audio = null;
let ws = null;
let backoff = 1000;
let sawHealth = false;

function setConn(kind, text) {
  const c = $('conn');
  c.dataset.conn = kind;
  c.textContent = text;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function card(stream) {
  let c = cards.get(stream);
  if (c) return c;
  const root = el('section', 'card stream-card');
  root.dataset.stream = stream;
  root.setAttribute('aria-label', `Stream ${stream}`);
  const head = el('div', 'stream-head');
  const title = el('h2', null, stream);
  const light = el('p', 'status');
  light.dataset.status = 'offline';
  light.setAttribute('role', 'status');
  head.append(title, light);
  const stats = el('dl', 'stats');
  const stat = {};
  for (const [k, label] of [
    ['bitrate', 'Bitrate'],
    ['fps', 'Frame rate'],
    ['resolution', 'Resolution'],
    ['latency', 'Latency'],
    ['loss', 'Packet loss'],
    ['viewers', 'Viewers'],
    ['uptime', 'Uptime'],
  ]) {
    const d = el('div', 'stat');
    d.dataset.stat = k;
    const dt = el('dt', null, label);
    const dd = el('dd', null, '—');
    d.append(dt, dd);
    stats.append(d);
    stat[k] = dd;
  }
  const alertsH = el('h3', null, 'Active alerts');
  const alerts = el('ul', 'alerts');
  alerts.setAttribute('aria-live', 'polite');
  const none = el('p', 'no-alerts', 'No active alerts.');
  const graphH = el('h3', null, 'Bitrate against target (last 5 minutes)');
  const graph = el('div', 'chart-box');
  root.append(head, stats, alertsH, none, alerts, graphH, graph);
  $('streams').append(root);
  const data = [[], [], []];
  const u = new uPlot(
    {
      width: Math.max(240, graph.clientWidth || 300),
      height: window.innerWidth < 600 ? 160 : 200,
      scales: { x: { time: true } },
      axes: [{}, { size: 72, values: (_, v) => v.map((x) => (x >= 1000 ? `${(x / 1000).toFixed(1)} Mbps` : `${x} kbps`)) }],
      series: [
        { label: 'Time', value: (_, v) => (v == null ? '—' : dateTime(v * 1000)) },
        { label: 'Bitrate kbps', stroke: '#1f5fbf', width: 2, points: { show: false } },
        { label: 'Target kbps', stroke: '#6b7280', width: 1.5, dash: [6, 4], points: { show: false } },
      ],
    },
    data,
    graph,
  );
  new ResizeObserver(() => {
    const w = Math.max(240, graph.clientWidth);
    if (w !== u.width) u.setSize({ width: w, height: u.height });
  }).observe(graph);
  c = { root, light, stat, alerts, none, u, data, active: new Map() };
  cards.set(stream, c);
  hooks.charts[`bitrate:${stream}`] = { u, data };
  seed(c, stream);
  return c;
}

/** Fills the bitrate graph with the stored health ticks of the last minutes, so it
 * does not start empty; live points that arrive meanwhile are kept. */
async function seed(c, stream) {
  try {
    const h = await getJson(`/api/streams/${encodeURIComponent(stream)}/health`);
    const ticks = (h.ticks || []).filter((t) => typeof t.t === 'number');
    const first = c.data[0].length ? c.data[0][0] : Infinity;
    const old = ticks.filter((t) => t.t / 1000 < first && t.t / 1000 >= Date.now() / 1000 - WINDOW_S);
    if (!old.length) return;
    c.data[0].unshift(...old.map((t) => t.t / 1000));
    c.data[1].unshift(...old.map((t) => t.bitrate_mean_kbps ?? null));
    c.data[2].unshift(...old.map((t) => t.target_bitrate_kbps ?? null));
    c.u.setData(c.data);
  } catch {
    // No history (not signed in, or nothing stored yet): the graph fills from the feed.
  }
}

function onHealth(m) {
  sawHealth = true;
  $('empty').hidden = true;
  const c = card(m.stream);
  const s = STATUS[m.status] || STATUS.offline;
  c.light.dataset.status = m.status;
  c.light.innerHTML = '';
  c.light.append(el('span', 'dot', s.icon), el('span', 'label', s.text));
  c.light.title = `${s.text}: ${s.hint}`;
  c.root.dataset.status = m.status;
  c.stat.bitrate.textContent = m.target_bitrate_kbps
    ? `${fmt(m.bitrate_kbps, 'count')} / ${fmt(m.target_bitrate_kbps, 'count')} kbps`
    : `${fmt(m.bitrate_kbps, 'count')} kbps`;
  c.stat.fps.textContent = fmt(m.fps, 'decimal');
  c.stat.resolution.textContent = m.resolution || '—';
  c.stat.latency.textContent = m.latency_ms == null ? '—' : fmt(m.latency_ms, 'ms');
  c.stat.loss.textContent = m.packet_loss_pct == null ? '—' : `${m.packet_loss_pct.toFixed(2)} %`;
  c.stat.viewers.textContent = fmt(m.viewers, 'count');
  c.stat.uptime.textContent = fmt(m.uptime_pct, 'pct');
  const t = m.ts / 1000;
  const [ts, br, tg] = c.data;
  if (!ts.length || t > ts[ts.length - 1]) {
    ts.push(t);
    br.push(m.bitrate_kbps);
    tg.push(m.target_bitrate_kbps ?? null);
    while (ts.length && ts[0] < t - WINDOW_S) {
      ts.shift();
      br.shift();
      tg.shift();
    }
    c.u.setData(c.data);
  }
}

/** A readable local time for an epoch-ms instant: the time of day, with the date
 * when it is not today. */
function when(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return 'an unknown time';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** The alert's message for people. The feed's snapshot of an alert that was already
 * firing when the page connected reads "<kind> firing since <epoch ms>": it becomes
 * "Bitrate drop still firing, since 11:57:04 AM."; any other epoch-ms run in a message
 * (13 digits, years 2001–2286) is shown as a local time too. */
function readable(m) {
  const text = String(m.message ?? '');
  const snap = /^([a-z_]+) firing since (\d{12,})$/.exec(text.trim());
  if (snap) return `${ALERT_NAMES[snap[1]] || snap[1]} still firing, since ${when(Number(snap[2]))}.`;
  return text.replace(/\b\d{13}\b/g, (ms) => when(Number(ms)));
}

function onAlert(m) {
  const c = card(m.stream);
  const key = m.alert;
  const old = c.active.get(key);
  if (old) old.remove();
  c.active.delete(key);
  if (m.state === 'firing') {
    const li = el('li', `alert sev-${m.severity}`);
    li.dataset.alert = m.alert;
    li.dataset.severity = m.severity;
    li.tabIndex = 0;
    li.title = m.guide || readable(m);
    const head = el('p', 'alert-head');
    head.append(
      el('span', 'sev', m.severity === 'critical' ? '■ Critical' : '▲ Warning'),
      el('strong', null, ALERT_NAMES[m.alert] || m.alert),
      el('span', 'since', ` since ${when(m.ts)}`),
    );
    const msg = readable(m);
    li.append(head, el('p', 'msg', msg));
    if (m.guide) li.append(el('p', 'guide', `What to try: ${m.guide}`));
    c.alerts.append(li);
    c.active.set(key, li);
    cue(`${ALERT_NAMES[m.alert] || m.alert} on ${m.stream}: ${msg}`);
  }
  c.none.hidden = c.active.size > 0;
}

function cue(text) {
  const f = $('alert-flash');
  f.textContent = `Alert: ${text}`;
  f.hidden = false;
  f.classList.remove('pulse');
  void f.offsetWidth;
  f.classList.add('pulse');
  clearTimeout(cue.t);
  cue.t = setTimeout(() => (f.hidden = true), 8000);
  if (sound) beep();
}

function beep() {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.frequency.value = 880;
    g.gain.setValueAtTime(0.15, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.4);
  } catch {
    // No audio output: the visual cue stays.
  }
}

function clearAlerts() {
  for (const c of cards.values()) {
    for (const li of c.active.values()) li.remove();
    c.active.clear();
    c.none.hidden = false;
  }
}

async function connect() {
  if (!channel) return;
  setConn('connecting', 'Connecting…');
  // The feed needs sign-in: ask a plain route first so a 401/403 is shown as such
  // (a refused WebSocket upgrade gives the page no status to show).
  try {
    await getJson(`/api/channels/${encodeURIComponent(channel)}/alert-rules`);
  } catch (e) {
    if (e.kind === 'unauthorized' || e.kind === 'forbidden') {
      setConn('denied', describe(e));
      return;
    }
  }
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  ws = new WebSocket(`${proto}://${location.host}/v1/live?channel=${encodeURIComponent(channel)}`);
  sawHealth = false;
  ws.onopen = () => {
    hooks.live.connects += 1;
    backoff = 1000;
    clearAlerts(); // the feed re-sends the alerts firing now
    setConn('open', `Connected to channel ${channel}.`);
    setTimeout(() => {
      if (!sawHealth && ws && ws.readyState === WebSocket.OPEN) {
        const e = $('empty');
        e.textContent = `No live stream on channel ${channel} right now. This page updates when one starts.`;
        e.hidden = false;
      }
    }, 3000);
  };
  ws.onmessage = (ev) => {
    hooks.live.messages += 1;
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (m.type === 'health') onHealth(m);
    else if (m.type === 'alert') onAlert(m);
  };
  ws.onclose = () => {
    ws = null;
    for (const c of cards.values()) {
      c.light.dataset.status = 'unknown';
      c.light.replaceChildren(el('span', 'dot', '?'), el('span', 'label', 'Unknown (feed disconnected)'));
    }
    const wait = backoff;
    backoff = Math.min(backoff * 2, 15000);
    setConn('reconnecting', `Disconnected; reconnecting in ${Math.round(wait / 1000)} s…`);
    setTimeout(connect, wait);
  };
}

function main() {
  $('f-channel').value = channel;
  $('nav-analytics').href = channel ? `/dashboard/analytics?channel=${encodeURIComponent(channel)}` : '/dashboard/analytics';
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const c = $('f-channel').value.trim();
    location.search = c ? `?channel=${encodeURIComponent(c)}` : '';
  });
  $('sound').addEventListener('click', () => {
    sound = !sound;
    $('sound').setAttribute('aria-pressed', String(sound));
    $('sound').textContent = `Sound cue: ${sound ? 'on' : 'off'}`;
    if (sound) beep();
  });
  if (!channel) {
    const e = $('empty');
    e.textContent = 'Pick a channel above to watch its live streams.';
    e.hidden = false;
    setConn('idle', 'Not connected.');
    return;
  }
  connect();
}

main();
