// The live health panel against a real `pulse serve`: a scripted encoder's bitrate sag
// makes the alert appear within 2 s of the server raising it, and go within 2 s of
// the server resolving it; screenshots at 1280 and 375 px.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { env, launch, page, sleep } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** A helper tab that plays the encoder over /v1/encoder and listens to the server's own
 * live feed, so the test knows the moment an alert was raised or resolved. */
async function encoderTab() {
  const s = await page(browser, { signedIn: false });
  await s.page.goto(`${env.base}/healthz`);
  await s.page.evaluate(
    ({ stream, key, channel, token }) => {
      const host = location.host;
      const st = (window.__enc = { ts: Date.now() - 120_000, events: [], health: {}, healthCount: 0 });
      st.enc = new WebSocket(`ws://${host}/v1/encoder?stream=${stream}&key=${key}`);
      st.feed = new WebSocket(`ws://${host}/v1/live?channel=${channel}&token=${token}`);
      st.feed.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === 'alert') st.events.push({ at: Date.now(), alert: m.alert, state: m.state, severity: m.severity });
        if (m.type === 'health') {
          st.health[m.stream] = m;
          st.healthCount += 1;
        }
      };
      st.ready = Promise.all([st.enc, st.feed].map((w) => new Promise((r, j) => ((w.onopen = r), (w.onerror = j)))));
      st.send = (bitrate) => {
        st.enc.send(
          JSON.stringify({
            // Values no panel would show by default, none of them past a threshold
            // (METRICS.md §4), so the health messages carry exactly these.
            ts: st.ts, bitrate_kbps: bitrate, target_bitrate_kbps: 5000, fps: 59.5, target_fps: 60,
            width: 1280, height: 720, latency_ms: 1234, packet_loss_pct: 0.37, dropped_frames: 0, keyframe_interval_s: 2,
          }),
        );
        st.ts += 1000;
      };
    },
    { stream: env.encoderStream, key: env.encoderKey, channel: env.channel, token: env.token },
  );
  await s.page.evaluate(() => window.__enc.ready);
  return s;
}

/** Sends one report of `bitrate` every 200 ms (report times 1 s apart) until the
 * server's feed has an alert event with `state`; returns the time it arrived. */
async function playUntil(tab, bitrate, state, max = 40) {
  return tab.evaluate(
    async ({ bitrate, state, max }) => {
      const st = window.__enc;
      const seen = st.events.length;
      for (let i = 0; i < max; i++) {
        st.send(bitrate);
        await new Promise((r) => setTimeout(r, 200));
        const hit = st.events.slice(seen).find((e) => e.state === state);
        if (hit) return hit;
      }
      throw new Error(`no ${state} alert after ${max} reports at ${bitrate} kbps`);
    },
    { bitrate, state, max },
  );
}

/** What a stream card shows, by `data-stat`. */
async function shownStats(p, card) {
  return p.$$eval(`${card} [data-stat]`, (ds) => Object.fromEntries(ds.map((d) => [d.dataset.stat, d.querySelector('dd').textContent])));
}

const num = (text) => Number(String(text).replace(/[^0-9.-]/g, ''));

/** The displayed stats agree with health message `h` (to the display's rounding). */
function agrees(shown, h) {
  return (
    shown.resolution === h.resolution &&
    Math.abs(num(shown.fps) - h.fps) <= 0.05 &&
    Math.abs(num(shown.latency) - h.latency_ms) <= 0.5 &&
    Math.abs(num(shown.loss) - h.packet_loss_pct) <= 0.005 &&
    num(shown.viewers) === h.viewers
  );
}

/** The latest health message of the encoder tab's own /v1/live socket and what the
 * panel shows, once they agree (the panel may be a message behind), or after `ms`. */
async function healthAndPanel(enc, desk, card, ms = 4000) {
  const until = Date.now() + ms;
  for (;;) {
    const h = await enc.evaluate((s) => window.__enc.health[s] || null, env.encoderStream);
    const shown = await shownStats(desk, card);
    if ((h && agrees(shown, h)) || Date.now() > until) return { h, shown };
    await sleep(100);
  }
}

/** The bitrate graph's data as uPlot holds it: [seconds, bitrate, target]. */
async function bitrateGraph(p) {
  return p.evaluate((s) => window.__pulse.charts[`bitrate:${s}`].u.data.map((a) => Array.from(a)), env.encoderStream);
}

/** Alert texts never show a raw epoch-ms time (or any long digit run). */
function readableAlertText(text, what) {
  assert.doesNotMatch(text, /\d{6,}/, `${what}: no raw epoch-ms time in "${text}"`);
  assert.doesNotMatch(text, /undefined|NaN|null/, `${what}: "${text}"`);
}

test('a bitrate sag shows its alert within 2 s and recovery removes it', async () => {
  const enc = await encoderTab();
  const desk = await page(browser, { width: 1280, height: 1000 });
  await desk.page.goto(`${env.base}/dashboard/live?channel=${env.channel}`);
  await desk.page.waitForSelector('#conn[data-conn="open"]', { timeout: 10_000 });

  // Steady: the card appears, status excellent with its word, no alerts.
  for (let i = 0; i < 8; i++) await enc.page.evaluate(() => window.__enc.send(5000));
  const card = `[data-stream="${env.encoderStream}"]`;
  await desk.page.waitForSelector(`${card} .status[data-status="excellent"]`, { timeout: 5000 });
  assert.match(await desk.page.textContent(`${card} .status`), /Excellent/);
  assert.equal(await desk.page.$$eval(`${card} [data-alert]`, (a) => a.length), 0);

  // The panel shows what the /v1/live health messages say (PROTOCOL.md §3), and those
  // carry what the encoder sent.
  const { h, shown } = await healthAndPanel(enc.page, desk.page, card);
  assert.ok(h, 'the feed sent health messages for the encoder stream');
  assert.equal(h.resolution, '1280x720');
  assert.equal(h.fps, 59.5);
  assert.equal(h.latency_ms, 1234);
  assert.equal(h.packet_loss_pct, 0.37);
  assert.equal(typeof h.viewers, 'number');
  assert.equal(shown.resolution, h.resolution, 'resolution');
  assert.equal(shown.fps, '59.5', `fps: "${shown.fps}" vs ${h.fps}`);
  assert.equal(num(shown.fps), h.fps, 'fps');
  assert.match(shown.latency, /^[\d,]+ ms$/);
  assert.equal(num(shown.latency), h.latency_ms, `latency: "${shown.latency}"`);
  assert.match(shown.loss, /^[\d.]+ %$/);
  assert.equal(num(shown.loss), h.packet_loss_pct, `packet loss: "${shown.loss}"`);
  assert.equal(num(shown.viewers), h.viewers, `viewers: "${shown.viewers}"`);
  for (const [k, v] of Object.entries(shown)) assert.doesNotMatch(v, /^$|undefined|NaN|null/, `stat ${k}: "${v}"`);
  // The bitrate graph has points: the reports' bitrate against the 5000 kbps target.
  const g0 = await bitrateGraph(desk.page);
  assert.ok(g0[0].length >= 2, `the bitrate graph has points (${g0[0].length})`);
  assert.ok(g0[1].some((v) => typeof v === 'number' && v > 0), `bitrate points: ${g0[1]}`);
  assert.ok(g0[1].includes(h.bitrate_kbps), `the latest message's ${h.bitrate_kbps} kbps is drawn: ${g0[1]}`);
  assert.ok(g0[2].includes(5000), 'the target line');
  assert.ok((await desk.page.$$(`${card} .chart-box canvas`)).length >= 1, 'drawn on a canvas');

  // Sag to 30 % of target: the server raises bitrate_drop; the panel shows it within 2 s.
  const fired = await playUntil(enc.page, 1500, 'firing');
  assert.equal(fired.alert, 'bitrate_drop');
  const t0 = Date.now();
  const alert = await desk.page.waitForSelector(`${card} [data-alert="bitrate_drop"]`, { timeout: 2000 });
  assert.ok(Date.now() - t0 <= 2000);
  const text = await alert.textContent();
  assert.match(text, fired.severity === 'critical' ? /Critical/ : /Warning/, 'severity in words');
  assert.match(text, /What to try:/, 'the guide text');
  assert.ok((await alert.getAttribute('title')).length > 10, 'a tooltip');
  readableAlertText(text, 'alert');
  assert.match(await alert.$eval('.since', (e) => e.textContent), /since .*\d{1,2}:\d{2}/, 'a local time');
  assert.equal(await desk.page.isVisible('#alert-flash'), true, 'a visual cue');
  readableAlertText(await desk.page.textContent('#alert-flash'), 'alert banner');
  // The sag is on the graph too, after the steady points.
  await desk.page.waitForFunction((s) => window.__pulse.charts[`bitrate:${s}`].u.data[1].includes(1500), env.encoderStream, { timeout: 3000 });
  const g1 = await bitrateGraph(desk.page);
  assert.ok(g1[0].length > g0[0].length, `the graph grows (${g0[0].length} → ${g1[0].length} points)`);
  assert.ok(g1[1].includes(5000) && g1[1].includes(1500), `steady and sagging bitrate drawn: ${g1[1]}`);
  await desk.page.waitForSelector(`${card} .status[data-status="${fired.severity === 'critical' ? 'poor' : 'good'}"]`, { timeout: 3000 });

  // Screenshots while the alert is up, desktop and phone.
  await desk.page.screenshot({ path: path.join(env.shots, 'live-1280.png'), fullPage: true });
  const phone = await page(browser, { width: 375, height: 900 });
  await phone.page.goto(`${env.base}/dashboard/live?channel=${env.channel}`);
  const late = await phone.page.waitForSelector(`${card} [data-alert="bitrate_drop"]`, { timeout: 5000 });
  // A page that connects while the alert fires gets the feed's snapshot of it: its
  // times are local times too.
  readableAlertText(await late.textContent(), 'alert from the snapshot');
  readableAlertText(await late.getAttribute('title'), 'alert tooltip from the snapshot');
  assert.match(await late.$eval('.since', (e) => e.textContent), /since .*\d{1,2}:\d{2}/, 'a local time');
  readableAlertText(await phone.page.textContent('#alert-flash'), 'alert banner from the snapshot');
  await phone.page.evaluate(() => window.__enc?.send?.(1500));
  await enc.page.evaluate(() => window.__enc.send(1500));
  await phone.page.waitForTimeout(1200);
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `live page is ${width} px wide at 375 px`);
  await phone.page.screenshot({ path: path.join(env.shots, 'live-375.png'), fullPage: true });

  // Recovery: back to target until the server resolves; the panel drops it within 2 s.
  const resolved = await playUntil(enc.page, 5000, 'resolved');
  assert.equal(resolved.alert, 'bitrate_drop');
  const t1 = Date.now();
  await desk.page.waitForSelector(`${card} [data-alert="bitrate_drop"]`, { state: 'detached', timeout: 2000 });
  assert.ok(Date.now() - t1 <= 2000);
  await desk.page.waitForSelector(`${card} .status[data-status="excellent"]`, { timeout: 3000 });
  assert.equal(await desk.page.isVisible(`${card} .no-alerts`), true);

  // The feed drops (the server closes no socket here, so the page closes it): it
  // reconnects by itself.
  const connects = await desk.page.evaluate(() => window.__pulse.live.connects);
  await desk.page.evaluate(() => window.__pulse.live.drop());
  await desk.page.waitForSelector('#conn[data-conn="reconnecting"]', { timeout: 2000 });
  await desk.page.waitForFunction((n) => window.__pulse.live.connects > n, connects, { timeout: 5000 });

  await enc.page.evaluate(() => window.__enc.enc.send(JSON.stringify({ type: 'end' })));
  assert.deepEqual(desk.errors, []);
  assert.deepEqual(phone.errors, []);
  for (const s of [enc, desk, phone]) await s.context.close();
});

test('a channel with nothing live says so; a channel not yours is refused in words', async () => {
  const s = await page(browser, { width: 375, height: 700 });
  await s.page.goto(`${env.base}/dashboard/live?channel=${env.idleChannel}`);
  await s.page.waitForSelector('#empty:not([hidden])', { timeout: 6000 });
  assert.match(await s.page.textContent('#empty'), /No live stream on channel/);
  await s.page.goto(`${env.base}/dashboard/live?channel=quiet-channel`);
  // The creator owns no such channel: the page says so in words.
  await s.page.waitForSelector('#conn[data-conn="denied"]', { timeout: 5000 });
  assert.match(await s.page.textContent('#conn'), /Not allowed/);
  assert.deepEqual(s.errors.filter((e) => !/status of 403/.test(e)), []);
  await s.context.close();
});
