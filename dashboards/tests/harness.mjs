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

export async function launch() {
  return chromium.launch({
    executablePath: process.env.PULSE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
}

/** A page that records console errors, uncaught exceptions and every answer of 400 or
 * more to the page's own requests into `errors`. */
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
    // Every failed request the page makes is an error here, a 404 included: all the
    // routes the dashboard calls exist, so a 404 from one means it broke.
    const url = m.location().url || '';
    errors.push(`console.error: ${m.text()} (${url})`);
  });
  // Not only what the console happens to log: any HTTP failure of a request the page
  // made (the API, the assets) is a page error.
  p.on('response', (r) => {
    if (r.status() >= 400) errors.push(`http: status of ${r.status()} for ${r.request().method()} ${r.url()}`);
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
