// Shared parts of the portal's browser tests: the `portal` example started
// as a real server, headless Debian Chromium driven by playwright-core (never
// a downloaded browser), a real loopback receiver the tests program, and
// waits on conditions (never fixed sleeps).
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const readline = require('node:readline');
const { chromium } = require('playwright-core');

const REPO = path.resolve(__dirname, '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
const EXAMPLE = path.join(TARGET, 'debug', 'examples', 'portal');
const CHROMIUM = process.env.HOOKBUS_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOTS = path.join(TARGET, 'portal-screenshots');
/** How long a test waits for a condition before it fails, in milliseconds. */
const WAIT_MS = Number(process.env.HOOKBUS_E2E_WAIT_MS || 20000);
/** How long the example may take to print its links, in milliseconds. */
const START_MS = 30000;

/**
 * Starts `cargo run --example portal`'s binary on a free port and resolves
 * when it has printed its links: `{ base, links: { tenant: url }, receiver, stop }`.
 */
function startPortal() {
  if (!fs.existsSync(EXAMPLE)) {
    throw new Error(`${EXAMPLE} is missing: build it first with \`cargo build --example portal --features portal\``);
  }
  const child = spawn(EXAMPLE, ['--port', '0', '--exit-after', '900'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  const lines = readline.createInterface({ input: child.stdout });
  const links = {};
  let base = null;
  let receiver = null;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('the portal example printed no link in time')), START_MS);
    function fail(error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n--- example stderr ---\n${Buffer.concat(stderr).toString()}`));
    }
    child.once('exit', (code, signal) => fail(new Error(`the portal example exited early (code ${code}, signal ${signal})`)));
    child.once('error', fail);
    lines.on('line', (line) => {
      let m = /^portal for tenant (\S+): (\S+)$/.exec(line);
      if (m) { links[m[1]] = m[2]; }
      m = /^portal listening on (\S+)$/.exec(line);
      if (m) { base = m[1]; }
      m = /^demo receiver on (\S+)$/.exec(line);
      if (m) { receiver = m[1]; }
      if (line === 'ready') {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ base, links, receiver, stop: () => stopChild(child) });
      }
    });
  });
}

/** Ctrl-C, as a user would; the example shuts its bus down and exits 0. */
function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) { return Promise.resolve(child.exitCode); }
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 20000);
    child.once('exit', (code) => { clearTimeout(kill); resolve(code); });
    child.kill('SIGINT');
  });
}

/** Headless Chromium from the Debian package, with the flags this network needs. */
async function launchBrowser() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/**
 * A fresh browser context (its own storage) opened on `link`, waiting until
 * the portal has loaded. Collects page errors and CSP violations so tests
 * can assert there were none.
 */
async function openPortal(browser, link, viewport = { width: 1280, height: 860 }) {
  const origin = new URL(link).origin;
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // Chromium also logs every 4xx answer ("Failed to load resource"); the
    // tests provoke some on purpose and check them where they do.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) { problems.push(`console error: ${m.text()}`); }
  });
  await page.goto(link);
  await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  return { context, page, problems };
}

/** Resolves with `check()`'s first truthy value, polling; fails with `what` after WAIT_MS. */
async function waitFor(what, check, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) { return value; }
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A loopback HTTP receiver. `answer(request)` decides each response
 * (default 200 `{"ok":true}`); every request is kept in `requests`.
 */
function startReceiver(answer = () => ({ status: 200, body: '{"ok":true}' })) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const request = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() };
      requests.push(request);
      const out = receiver.answer(request);
      res.writeHead(out.status, Object.assign({ 'content-type': 'application/json' }, out.headers || {}));
      res.end(out.body || '');
    });
  });
  const receiver = { requests, answer, server, url: null, close: () => new Promise((r) => server.close(r)) };
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      receiver.url = `http://127.0.0.1:${server.address().port}`;
      resolve(receiver);
    });
  });
}

/** Saves a screenshot (the full page unless `fullPage` is false) as target/portal-screenshots/NAME.png. */
async function screenshot(page, name, fullPage = true) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** The session token the page keeps for its tab (it is gone from the URL). */
function tokenOf(page) {
  return page.evaluate(() => {
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (key.startsWith('hookbus-portal-token:')) { return sessionStorage.getItem(key); }
    }
    return null;
  });
}

/** The endpoint card whose heading is exactly `name`. */
function card(page, name) {
  return page.locator('#endpoint-list > li.card').filter({ has: page.locator('h3', { hasText: name }) });
}

/**
 * Creates an endpoint through the form (mouse and keyboard as a user would)
 * and returns the secret the portal showed once.
 */
async function createEndpoint(page, { name, url, types = [], headers = [], filters = [], description = '' }) {
  await page.click('#add-endpoint');
  const dialog = page.locator('#dlg-endpoint');
  await dialog.waitFor({ state: 'visible' });
  await page.fill('#ep-name', name);
  if (description) { await page.fill('#ep-description', description); }
  await page.fill('#ep-url', url);
  for (const t of types) {
    await dialog.locator('#ep-catalog label').filter({ has: page.locator('.type', { hasText: t }) }).locator('input').check();
  }
  for (const [k, v] of headers) {
    await page.click('#ep-add-header');
    const row = dialog.locator('#ep-headers .row').last();
    await row.locator('[data-slot="key"]').fill(k);
    await row.locator('[data-slot="value"]').fill(v);
  }
  for (const [k, v] of filters) {
    await page.click('#ep-add-filter');
    const row = dialog.locator('#ep-filters .row').last();
    await row.locator('[data-slot="key"]').fill(k);
    await row.locator('[data-slot="value"]').fill(v);
  }
  await page.click('#endpoint-save');
  await page.locator('#dlg-secret').waitFor({ state: 'visible', timeout: WAIT_MS });
  const secret = await page.locator('#secret-value').textContent();
  await page.locator('#dlg-secret [data-close]').click();
  await page.locator('#dlg-secret').waitFor({ state: 'hidden' });
  await card(page, name).waitFor({ timeout: WAIT_MS });
  return secret;
}

module.exports = {
  REPO, SCREENSHOTS, WAIT_MS,
  startPortal, launchBrowser, openPortal, waitFor, startReceiver, screenshot, tokenOf, card, createEndpoint,
};
