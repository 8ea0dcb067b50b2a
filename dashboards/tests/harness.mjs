// Shared pieces of the browser tests: the server under test (started by the Rust
// test tests/dashboard_browser.rs, which passes its address and data in PULSE_* env
// variables), Chromium through playwright-core, and console-error collection.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';

function need(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run these tests through \`cargo test --test dashboard_browser\``);
  return v;
}

export const env = {
  base: need('PULSE_URL'),
  token: need('PULSE_TOKEN'),
  channel: need('PULSE_CHANNEL'),
  stream: need('PULSE_STREAM'),
  from: Number(need('PULSE_FROM')),
  to: Number(need('PULSE_TO')),
  encoderStream: need('PULSE_ENCODER_STREAM'),
  encoderKey: need('PULSE_ENCODER_KEY'),
  shots: need('PULSE_SCREENSHOTS'),
  idleChannel: need('PULSE_IDLE_CHANNEL'),
};
mkdirSync(env.shots, { recursive: true });

/** Routes another engineer is adding in parallel: a 404 from them is an expected,
 * handled state today (the page shows "not available"), so the browser's own network
 * log line for it is not a page error. */
const PENDING_ROUTES = [/\/api\/analytics\/channels\//, /\/api\/channels\/[^/]+\/top-(vods|clips)/];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.PULSE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** A page that records console errors and uncaught exceptions into `errors`. */
export async function page(browser, { width = 1280, height = 900, signedIn = true } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
  if (signedIn) {
    const res = await context.request.get(`${env.base}/dashboard/login?token=${encodeURIComponent(env.token)}&next=%2Fhealthz`);
    assert.equal(res.status(), 200, 'login then redirect to /healthz');
  }
  const p = await context.newPage();
  const errors = [];
  p.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  p.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location().url || '';
    const text = m.text();
    if (/status of 404/.test(text) && PENDING_ROUTES.some((r) => r.test(url))) return;
    errors.push(`console.error: ${text} (${url})`);
  });
  return { context, page: p, errors };
}

/** GET/POST against the API with the test token. */
export async function api(path, init = {}) {
  const res = await fetch(`${env.base}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${env.token}`, ...(init.headers || {}) },
  });
  return res;
}

export const analyticsUrl = (extra = '') =>
  `${env.base}/dashboard/analytics?channel=${env.channel}&stream=${env.stream}&from=${env.from}&to=${env.to}${extra}`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
