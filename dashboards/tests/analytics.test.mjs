// The analytics page in headless Chromium against a real `pulse serve` holding a
// replayed trace: tiles equal the API, chart points equal the series API, the range
// filter refetches, CSV export downloads what the API gives, screenshots are saved.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { analyticsUrl, api, env, launch, page } from './harness.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function open(opts = {}, url = analyticsUrl()) {
  const s = await page(browser, opts);
  await s.page.goto(url);
  await s.page.waitForFunction(() => Number(document.body.dataset.loaded) >= 1, null, { timeout: 20_000 });
  return s;
}

async function chart(p, id) {
  return p.evaluate((id) => {
    const c = window.__pulse.charts[id];
    return { state: c.state, version: c.version, data: c.data, drawn: c.u ? c.u.data.map((a) => Array.from(a)) : null };
  }, id);
}

/** Every KPI tile on the page shows a value or "—": never blank, "…", undefined, NaN. */
async function assertTilesReadable(p) {
  const all = await p.$$eval('[data-kpi]', (ts) =>
    ts.map((t) => ({ name: t.dataset.kpi, state: t.dataset.state, text: t.querySelector('.kpi-value').textContent })),
  );
  assert.ok(all.length >= 20, `stream and channel tiles, got ${all.length}`);
  for (const t of all) {
    assert.notEqual(t.text.trim(), '', `tile ${t.name} is not blank`);
    assert.notEqual(t.text.trim(), '…', `tile ${t.name} has loaded`);
    assert.doesNotMatch(t.text, /undefined|NaN|null|Infinity|\[object/, `tile ${t.name}: "${t.text}"`);
    if (t.text === '—') assert.notEqual(t.state, 'ready', `tile ${t.name} shows a dash only without a value`);
  }
  return all;
}

test('every KPI tile shows the value the API returns, or "—" when there is none', async () => {
  const { page: p, errors, context } = await open();
  const summary = await (await api(`/api/analytics/streams/${env.stream}`)).json();
  const tiles = await p.$$eval('#stream-kpis [data-kpi]', (ts) =>
    ts.map((t) => ({ name: t.dataset.kpi, value: t.dataset.value, state: t.dataset.state, text: t.querySelector('.kpi-value').textContent })),
  );
  assert.ok(tiles.length >= 10, `at least ten stream KPI tiles, got ${tiles.length}`);
  for (const t of tiles) {
    assert.equal(t.state, 'ready', `${t.name} is shown`);
    assert.ok(t.name in summary.metrics, `${t.name} is a metric of the summary`);
    assert.equal(Number(t.value), summary.metrics[t.name], `tile ${t.name}`);
    assert.notEqual(t.text, '—', `${t.name} shows a number`);
    // The visible text is the same number, rounded for display.
    const shown = Number(t.text.replace(/[^0-9.]/g, ''));
    const v = summary.metrics[t.name];
    if (/%$/.test(t.text)) assert.ok(Math.abs(shown - v * 100) <= 0.006, `${t.name}: "${t.text}" vs ${v}`);
    else if (t.name !== 'duration_s') assert.ok(Math.abs(shown - v) <= 0.051, `${t.name}: "${t.text}" vs ${v}`);
  }
  const peak = tiles.find((t) => t.name === 'peak_concurrent');
  assert.ok(Number(peak.value) > 0, 'the trace has viewers');

  // The channel route exists: it must answer, and every channel tile shows its value.
  const cur = await p.evaluate(() => window.__pulse.current);
  const channel = await api(`/api/analytics/channels/${env.channel}?from=${cur.from}&to=${cur.to}`);
  assert.equal(channel.status, 200, 'GET /api/analytics/channels/:id answers');
  const body = await channel.json();
  const ctiles = await p.$$eval('#channel-kpis [data-kpi]', (ts) =>
    ts.map((t) => ({
      name: t.dataset.kpi,
      value: t.dataset.value,
      state: t.dataset.state,
      text: t.querySelector('.kpi-value').textContent,
      note: t.querySelector('.kpi-note').textContent,
    })),
  );
  assert.ok(ctiles.length >= 6);
  for (const t of ctiles) {
    const v = body.metrics[t.name];
    assert.notEqual(v, undefined, `${t.name} is in the channel answer`);
    assert.equal(t.value, typeof v === 'number' ? String(v) : v, `channel tile ${t.name}`);
    if (typeof v === 'string' && v.trim() === '') {
      assert.equal(t.state, 'none', `${t.name}: nothing to name`);
      assert.equal(t.text, '—', `${t.name} shows a dash, not a blank`);
    } else {
      assert.equal(t.state, 'ready', `${t.name} is shown`);
      assert.notEqual(t.text, '—', `${t.name} shows its value`);
    }
  }
  const category = ctiles.find((t) => t.name === 'most_watched_category');
  assert.equal(category.text, body.metrics.most_watched_category || '—', 'the category tile');
  await assertTilesReadable(p);
  // No data area of the page fell back to "not available" or an error.
  const broken = await p.$$eval('[data-state="unavailable"], [data-state="error"]', (es) =>
    es.map((e) => `${e.dataset.kpi || e.dataset.table || e.dataset.chart}: ${e.dataset.state}`),
  );
  assert.deepEqual(broken, []);
  assert.deepEqual(errors, []);
  await context.close();
});

test('tiles show "—" for an empty category, a missing or a non-numeric value, never a blank or NaN', async () => {
  const s = await page(browser);
  // Answers with every kind of hole a tile can meet, from the routes the page calls.
  await s.page.route('**/api/analytics/channels/**', (route) =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({
        channel: env.channel,
        from: env.from,
        to: env.to,
        metrics: {
          hours_streamed: 1.5,
          total_views: 'many',
          avg_peak_viewers: null,
          follower_growth_wow_pct: 0,
          avg_viewers_growth_wow_pct: '',
          most_watched_category: '',
          best_streams: [{ stream: 's-x', watch_minutes: null, peak_concurrent: 3 }],
        },
      }),
    }),
  );
  await s.page.route(`**/api/analytics/streams/${env.stream}`, (route) =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ stream: env.stream, status: 'ENDED', metrics: { peak_concurrent: 5, avg_concurrent: null, views: 'x' } }),
    }),
  );
  await s.page.goto(analyticsUrl());
  await s.page.waitForFunction(() => Number(document.body.dataset.loaded) >= 1, null, { timeout: 20_000 });
  const all = await assertTilesReadable(s.page);
  const text = (name) => all.find((t) => t.name === name).text;
  assert.equal(text('most_watched_category'), '—');
  assert.equal(text('total_views'), '—');
  assert.equal(text('avg_peak_viewers'), '—');
  assert.equal(text('follower_growth_mom_pct'), '—');
  assert.equal(text('avg_viewers_growth_wow_pct'), '—');
  assert.equal(text('hours_streamed'), '1.5 h');
  assert.equal(text('follower_growth_wow_pct'), '0.0 %');
  assert.equal(text('peak_concurrent'), '5');
  assert.equal(text('avg_concurrent'), '—');
  assert.equal(text('views'), '—');
  assert.equal(text('startup_p95_ms'), '—');
  const best = await s.page.$$eval('[data-table="best-streams"] tbody td', (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(best, ['s-x', '—', '3']);
  assert.doesNotMatch(await s.page.textContent('main'), /undefined|NaN/);
  assert.deepEqual(s.errors, []);
  await s.context.close();
});

const num = (text) => Number(String(text).replace(/[^0-9.-]/g, ''));

test('the best streams, top VODs and top clips tables hold the API answers', async () => {
  const { page: p, errors, context } = await open();
  const cur = await p.evaluate(() => window.__pulse.current);
  const range = `from=${cur.from}&to=${cur.to}`;
  const get = async (path) => {
    const res = await api(path);
    assert.equal(res.status, 200, `GET ${path}`);
    return res.json();
  };
  const channel = await get(`/api/analytics/channels/${env.channel}?${range}`);
  const vods = await get(`/api/channels/${env.channel}/top-vods?${range}`);
  const clips = await get(`/api/channels/${env.channel}/top-clips?${range}`);
  const table = (id) =>
    p.$eval(`[data-table="${id}"]`, (e) => ({
      state: e.dataset.state,
      rows: Array.from(e.querySelectorAll('tbody tr'), (tr) => Array.from(tr.cells, (c) => c.textContent)),
    }));
  // [name, API row, [field, tolerance]...]: counts exactly, decimals to the display's rounding.
  const check = (what, got, want, name, fields) => {
    assert.equal(got.state, 'ready', `${what} is shown`);
    assert.equal(got.rows.length, want.length, `${what}: one row per API item`);
    want.forEach((w, i) => {
      const row = got.rows[i];
      assert.equal(row[0], name(w), `${what} row ${i + 1}: name`);
      fields.forEach(([field, tol], j) => {
        const shown = num(row[j + 1]);
        const v = w[field];
        assert.ok(Math.abs(shown - v) <= tol(v), `${what} row ${i + 1} ${field}: "${row[j + 1]}" vs ${v}`);
      });
    });
  };
  const exact = () => 0;
  const oneDecimal = () => 0.05 + 1e-9;

  const best = channel.metrics.best_streams;
  assert.ok(best.length >= 1, 'the trace has streams on the channel');
  check('best streams', await table('best-streams'), best, (r) => r.stream, [['watch_minutes', oneDecimal], ['peak_concurrent', exact]]);

  assert.ok(vods.items.length >= 1, 'the trace has VOD views on the channel');
  check('top VODs', await table('top-vods'), vods.items.slice(0, 10), (r) => r.title || r.vod, [['views', exact], ['likes', exact]]);

  assert.ok(clips.items.length >= 2, 'the trace has clip views on the channel');
  // Trending scores decay with time (6 h half-life): a second between the page's
  // request and the test's moves them by far less than the display's rounding.
  check('top clips', await table('top-clips'), clips.items.slice(0, 10), (r) => r.title || r.clip, [
    ['views', exact],
    ['trending_score', (v) => 0.05 + 1e-3 * Math.abs(v)],
  ]);
  assert.ok(clips.items.some((c) => c.views > 0), 'clips with views');
  assert.deepEqual(errors, []);
  await context.close();
});

test('chart points equal the series API; a new date range refetches and redraws', async () => {
  const { page: p, errors, context } = await open();
  await p.waitForFunction(() => window.__pulse.charts.viewers.state === 'ready');
  const cur = await p.evaluate(() => window.__pulse.current);
  assert.equal(cur.scope.kind, 'stream');
  const q = (c) => `stream=${env.stream}&from=${c.from}&to=${c.to}&step=${c.step}`;
  const want = await (await api(`/api/analytics/charts/viewers?${q(cur)}`)).json();
  const got = await chart(p, 'viewers');
  assert.ok(want.points.length > 5 && want.points.some((x) => x.value > 0), 'the API has a real series');
  assert.deepEqual(got.data.t, want.points.map((x) => x.t));
  assert.deepEqual(got.data.values[0], want.points.map((x) => x.value));
  assert.deepEqual(got.data.values[1], want.points.map((x) => x.peak));
  // What uPlot holds (seconds on x) is that same series.
  assert.deepEqual(got.drawn[0], want.points.map((x) => x.t / 1000));
  assert.deepEqual(got.drawn[1], want.points.map((x) => x.value));
  assert.ok((await p.$$('[data-chart="viewers"] canvas')).length >= 1, 'drawn on a canvas');

  // Another metric's chart against /api/analytics/series.
  await p.locator('[data-chart="engagement"]').scrollIntoViewIfNeeded();
  await p.waitForFunction(() => ['ready', 'empty'].includes(window.__pulse.charts.engagement.state));
  const chat = await (await api(`/api/analytics/series?metric=chat_messages&${q(cur)}`)).json();
  const eng = await chart(p, 'engagement');
  assert.deepEqual(eng.data.values[0], chat.points.map((x) => x.value));

  // Change the range in the form: the URL, the request and the drawing follow.
  const before = got.version;
  const requests = [];
  p.on('request', (r) => {
    if (r.url().includes('/api/analytics/charts/viewers')) requests.push(r.url());
  });
  const newFrom = env.from + 10 * 60_000;
  await p.evaluate((ms) => {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, '0');
    document.getElementById('f-from').value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }, newFrom);
  await p.getByRole('button', { name: 'Show' }).click();
  await p.waitForFunction((v) => window.__pulse.charts.viewers.version > v && window.__pulse.current.from >= 0, before);
  await p.waitForFunction((f) => window.__pulse.charts.viewers.data.t[0] >= f, newFrom);
  assert.equal(new URL(p.url()).searchParams.get('from'), String(newFrom), 'the URL holds the range');
  assert.ok(requests.some((u) => new URL(u).searchParams.get('from') === String(newFrom)), 'refetched with the new range');
  const cur2 = await p.evaluate(() => window.__pulse.current);
  const want2 = await (await api(`/api/analytics/charts/viewers?${q(cur2)}`)).json();
  const got2 = await chart(p, 'viewers');
  assert.deepEqual(got2.drawn[1], want2.points.map((x) => x.value));
  assert.ok(got2.data.t.length < got.data.t.length, 'fewer buckets in the shorter range');

  // The link reproduces the view.
  const again = await page(browser);
  await again.page.goto(p.url());
  await again.page.waitForFunction(() => window.__pulse.charts.viewers && window.__pulse.charts.viewers.state === 'ready');
  assert.deepEqual((await chart(again.page, 'viewers')).data, got2.data);
  assert.deepEqual(errors, []);
  assert.deepEqual(again.errors, []);
  await again.context.close();
  await context.close();
});

test('CSV export downloads the file the export API gives', async () => {
  const { page: p, errors, context } = await open();
  const [download] = await Promise.all([p.waitForEvent('download'), p.click('#export')]);
  const file = await readFile(await download.path(), 'utf8');
  const body = await p.evaluate(() => window.__pulse.lastExport);
  assert.ok(body.metrics.length >= 10, 'what is on screen');
  const res = await api('/api/analytics/export', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const want = await res.text();
  assert.ok(want.split('\n').length > 10);
  assert.equal(file, want);
  assert.match(download.suggestedFilename(), /^pulse-stream-.*\.csv$/);
  assert.deepEqual(errors, []);
  await context.close();
});

test('keyboard reaches the presets and the export; 375 px has no sideways scroll; screenshots', async () => {
  const desk = await open({ width: 1280, height: 900 });
  for (const id of ['viewers', 'engagement', 'audience', 'watch', 'quality', 'startup', 'quality-device', 'growth']) {
    await desk.page.locator(`[data-chart="${id}"]`).scrollIntoViewIfNeeded();
  }
  await desk.page.waitForFunction(() => Object.values(window.__pulse.charts).every((c) => !['idle', 'loading'].includes(c.state)));
  await desk.page.evaluate(() => window.scrollTo(0, 0));
  await desk.page.screenshot({ path: path.join(env.shots, 'analytics-1280.png'), fullPage: true });
  const states = await desk.page.evaluate(() => Object.fromEntries(Object.entries(window.__pulse.charts).map(([k, c]) => [k, c.state])));
  for (const [id, s] of Object.entries(states)) assert.ok(['ready', 'empty'].includes(s), `${id}: ${s}`);

  await desk.page.focus('#f-stream');
  let reached = null;
  for (let i = 0; i < 6 && reached !== '7d'; i++) {
    await desk.page.keyboard.press('Tab');
    reached = await desk.page.evaluate(() => document.activeElement.dataset.range || null);
  }
  assert.equal(reached, '7d', 'Tab reaches the 7 d preset');
  await desk.page.keyboard.press('Enter');
  await desk.page.waitForFunction(() => new URL(location.href).searchParams.get('range') === '7d');
  assert.equal(await desk.page.getAttribute('[data-range="7d"]', 'aria-pressed'), 'true');
  assert.deepEqual(desk.errors, []);
  await desk.context.close();

  const phone = await open({ width: 375, height: 800 });
  for (const id of ['viewers', 'engagement', 'audience', 'watch', 'quality', 'startup', 'quality-device', 'growth']) {
    await phone.page.locator(`[data-chart="${id}"]`).scrollIntoViewIfNeeded();
  }
  await phone.page.waitForFunction(() => Object.values(window.__pulse.charts).every((c) => !['idle', 'loading'].includes(c.state)));
  await phone.page.evaluate(() => window.scrollTo(0, 0));
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(overflow <= 375, `page is ${overflow} px wide at 375 px`);
  await phone.page.screenshot({ path: path.join(env.shots, 'analytics-375.png'), fullPage: true });
  // The same page in screen-sized parts, for people to look at.
  const height = await phone.page.evaluate(() => document.documentElement.scrollHeight);
  for (let y = 0, i = 1; y < height; y += 1400, i++) {
    const clip = { x: 0, y, width: 375, height: Math.min(1400, height - y) };
    await phone.page.screenshot({ path: path.join(env.shots, `analytics-375-part${i}.png`), fullPage: true, clip });
  }
  assert.deepEqual(phone.errors, []);
  await phone.context.close();
});

test('signed out: the page says how to sign in instead of blank charts; login refuses open redirects', async () => {
  const s = await page(browser, { signedIn: false });
  const res = await s.page.goto(analyticsUrl());
  assert.equal(res.status(), 200);
  await s.page.waitForFunction(() => Number(document.body.dataset.loaded) >= 1);
  // The analytics routes may or may not ask for a token yet; the live-data routes do.
  const text = await s.page.textContent('main');
  assert.ok(!text.includes('undefined') && !text.includes('NaN'), 'no broken values');
  await s.context.close();

  // Pages and assets: types, caching, gzip.
  const html = await fetch(`${env.base}/dashboard/analytics`);
  assert.equal(html.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.equal(html.headers.get('cache-control'), 'no-cache');
  assert.equal(html.headers.get('content-encoding'), 'gzip');
  assert.match(html.headers.get('content-security-policy'), /default-src 'self'/);
  const body = await html.text();
  for (const [re, type] of [[/\/dashboard\/assets\/[^"]+\.js/, 'text/javascript; charset=utf-8'], [/\/dashboard\/assets\/[^"]+\.css/, 'text/css; charset=utf-8']]) {
    const a = await fetch(env.base + re.exec(body)[0]);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('content-type'), type);
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(a.headers.get('content-encoding'), 'gzip');
  }
  assert.equal((await fetch(`${env.base}/dashboard/assets/nope.js`)).status, 404);

  const bad = await fetch(`${env.base}/dashboard/login?token=${env.token}&next=${encodeURIComponent('//evil.example/x')}`, { redirect: 'manual' });
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get('set-cookie'), null);
  const unknown = await fetch(`${env.base}/dashboard/login?token=nope&next=%2F`, { redirect: 'manual' });
  assert.equal(unknown.status, 401);
  const ok = await fetch(`${env.base}/dashboard/login?token=${env.token}&next=${encodeURIComponent('/dashboard/live?channel=x')}`, { redirect: 'manual' });
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), '/dashboard/live?channel=x');
  const cookie = ok.headers.get('set-cookie');
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
  // The cookie alone opens an authenticated route; nothing opens it without one.
  const pair = cookie.split(';')[0];
  const rules = `${env.base}/api/channels/${env.channel}/alert-rules`;
  assert.equal((await fetch(rules, { headers: { Cookie: pair } })).status, 200);
  assert.equal((await fetch(rules)).status, 401);
  assert.equal((await fetch(rules, { headers: { Cookie: 'pulse_session=wrong' } })).status, 401);
});
