// Benchmark (load-tests/RESULTS.md, issue 7): time to first chart and to all charts
// drawn, and bytes shipped, for /dashboard/analytics over a long range, in headless
// Chromium, measured with the Performance API marks the page sets
// (`pulse:first-chart`, `pulse:all-charts`, from navigation start).
//
//   node bench/charts.mjs <base-url> <token> <channel> <stream> <from-ms> <to-ms> [runs]
//
// The viewport is tall enough that every chart is in view (they load lazily).
import { chromium } from 'playwright-core';

const [base, token, channel, stream, from, to, runsArg] = process.argv.slice(2);
if (!to) {
  console.error('usage: node bench/charts.mjs <base-url> <token> <channel> <stream> <from-ms> <to-ms> [runs]');
  process.exit(2);
}
const runs = Number(runsArg) || 5;
const height = Number(process.env.BENCH_VIEWPORT_HEIGHT) || 4000;
const browser = await chromium.launch({
  executablePath: process.env.PULSE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
const results = [];
for (let i = 0; i < runs + 1; i++) {
  const context = await browser.newContext({ viewport: { width: 1280, height } });
  await context.request.get(`${base}/dashboard/login?token=${encodeURIComponent(token)}&next=%2Fhealthz`);
  const page = await context.newPage();
  await page.goto(`${base}/dashboard/analytics?channel=${channel}&stream=${stream}&from=${from}&to=${to}&refresh=3600`);
  // A short viewport (BENCH_VIEWPORT_HEIGHT) shows 2-4 charts; the rest load only when
  // scrolled to, so only the first chart is timed there.
  const all = height >= 2000;
  const mark = all ? 'pulse:all-charts' : 'pulse:first-chart';
  await page.waitForFunction((m) => performance.getEntriesByName(m).length > 0, mark, { timeout: 300_000 });
  if (!all) await page.waitForTimeout(3000); // let the charts in view finish
  const r = await page.evaluate(() => {
    const mark = (n) => performance.getEntriesByName(n)[0]?.startTime ?? null;
    const res = performance.getEntriesByType('resource');
    const nav = performance.getEntriesByType('navigation')[0];
    const sum = (xs) => xs.reduce((a, e) => a + e.encodedBodySize, 0);
    const app = res.filter((e) => e.name.includes('/dashboard/assets/'));
    const api = res.filter((e) => e.name.includes('/api/'));
    const points = Object.values(window.__pulse.charts).reduce((a, c) => a + (c.data ? c.data.t.length * c.data.values.length : 0), 0);
    return {
      states: Object.values(window.__pulse.charts).map((c) => c.state + (c.state === 'error' ? `: ${c.card.querySelector('.chart-status').textContent}` : '')).join(' | '),
      firstChart: mark('pulse:first-chart'),
      allCharts: mark('pulse:all-charts'),
      appBytes: nav.encodedBodySize + sum(app),
      apiBytes: sum(api),
      apiRequests: api.length,
      points,
      charts: Object.keys(window.__pulse.charts).length,
    };
  });
  await context.close();
  if (i > 0) results.push(r); // the first run warms the server's caches
}
await browser.close();
const median = (k) => {
  const xs = results.map((r) => r[k]).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)];
};
console.log(JSON.stringify({ runs, viewport_height: height, median_first_chart_ms: Math.round(median('firstChart')), median_all_charts_ms: Math.round(median('allCharts')), ...results[0], all: results.map((r) => [Math.round(r.firstChart), Math.round(r.allCharts)]) }, null, 2));
