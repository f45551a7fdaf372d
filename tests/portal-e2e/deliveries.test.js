// A customer whose server was down finds the failed deliveries in the log,
// fixes the server, and gets them again: one by "Resend", the rest by
// "Recover failed since…". The log filters narrow by endpoint and outcome.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

describe('deliveries', () => {
  let portal; let browser; let receiver; let page; let problems;
  let down = true;
  const name = 'Billing hooks';

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
    receiver = await h.startReceiver(() => (down
      ? { status: 503, body: '{"error":"maintenance"}' }
      : { status: 200, body: '{"ok":true}' }));
    ({ page, problems } = await h.openPortal(browser, portal.links.acme));
    await h.createEndpoint(page, { name, url: `${receiver.url}/billing` });
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (receiver) { await receiver.close(); }
    if (portal) { assert.equal(await portal.stop(), 0); }
  });

  /** Shows the log for `name` with `outcome`, and returns its rows. */
  async function logOf(outcome) {
    await page.click('#tab-log');
    await page.selectOption('#f-endpoint', { label: name });
    await page.selectOption('#f-outcome', outcome);
    await page.click('#log-filters button[type="submit"]');
    return page.locator('#log-rows tr');
  }

  test('failed deliveries show in the log, filtered by endpoint and outcome', async () => {
    const rows = await logOf('failed');
    await rows.first().waitFor({ timeout: h.WAIT_MS });
    for (const text of await rows.allTextContents()) {
      assert.ok(text.includes(name), `a row of another endpoint: ${text}`);
      assert.match(text, /Failed \(503\)/);
    }
    // The other outcome of the same endpoint: nothing delivered yet.
    await page.selectOption('#f-outcome', 'succeeded');
    await page.click('#log-filters button[type="submit"]');
    await h.waitFor('the empty log message', () => page.locator('#log-empty').isVisible());
  });

  test('the log filters by event type and by time range', async () => {
    const rows = await logOf('');
    await rows.first().waitFor({ timeout: h.WAIT_MS });
    const type = (await rows.first().locator('[data-slot="type"]').textContent()).trim();
    await page.selectOption('#f-type', type);
    await page.click('#log-filters button[type="submit"]');
    await h.waitFor(`only ${type} rows`, async () => {
      const types = await page.locator('#log-rows [data-slot="type"]').allTextContents();
      return types.length > 0 && types.every((t) => t === type);
    });
    // Until an hour ago: before the endpoint existed, so nothing.
    const hourAgo = new Date(Date.now() - 3600 * 1000);
    const local = new Date(hourAgo.getTime() - hourAgo.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
    await page.fill('#f-until', local);
    await page.click('#log-filters button[type="submit"]');
    await h.waitFor('the empty log message', () => page.locator('#log-empty').isVisible());
    // From an hour ago: the rows are back.
    await page.fill('#f-until', '');
    await page.fill('#f-since', local);
    await page.click('#log-filters button[type="submit"]');
    await rows.first().waitFor({ timeout: h.WAIT_MS });
    await page.click('#log-filters button[type="reset"]');
    await h.waitFor('the filters cleared', async () => (await page.inputValue('#f-type')) === '' && (await page.inputValue('#f-since')) === '');
  });

  test('resend delivers a failed delivery once the server is back', async () => {
    // A delivery is failed once its last attempt (the demo allows 2) failed.
    const rows = await logOf('failed');
    const second = rows.filter({ has: page.locator('[data-slot="number"]', { hasText: /^2$/ }) }).first();
    await second.waitFor({ timeout: h.WAIT_MS });
    await second.locator('[data-slot="open"]').click();
    await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
    const eventId = await page.locator('#attempt-summary dt:text-is("Event") + dd').textContent();
    assert.match(eventId, /^evt_[0-9A-Z]{26}$/);
    assert.match(await page.locator('#attempt-res-body').textContent(), /maintenance/);
    down = false;
    await page.click('#attempt-resend');
    await page.locator('#dlg-attempt').waitFor({ state: 'hidden', timeout: h.WAIT_MS });
    await h.waitFor(`the receiver to get the resent event ${eventId}`, () =>
      receiver.requests.find((r) => r.headers['webhook-id'] === eventId && r.headers['webhook-attempt'] === '3'))
      .catch((e) => {
        const seen = receiver.requests.filter((r) => r.headers['webhook-id'] === eventId).map((r) => r.headers['webhook-attempt']);
        throw new Error(`${e.message}; attempts of it received: ${JSON.stringify(seen)}`);
      });
    // The manual attempt shows in the log as delivered.
    await page.selectOption('#f-outcome', 'succeeded');
    await page.click('#log-filters button[type="submit"]');
    const manual = page.locator('#log-rows tr').filter({ hasText: '3 (manual)' }).first();
    await manual.waitFor({ timeout: h.WAIT_MS });
    assert.match(await manual.textContent(), /Delivered \(200\)/);
  });

  test('recover failed since… sends every failure of the endpoint again', async () => {
    down = true;
    // Wait for a fresh delivery to fail both attempts.
    const before = receiver.requests.length;
    await h.waitFor('a delivery that failed twice', () => {
      const ids = new Map();
      for (const r of receiver.requests.slice(before)) {
        ids.set(r.headers['webhook-id'], (ids.get(r.headers['webhook-id']) || 0) + 1);
      }
      return [...ids.values()].some((n) => n >= 2);
    });
    down = false;
    const failedIds = new Set(receiver.requests.slice(before).map((r) => r.headers['webhook-id']));
    await page.click('#tab-endpoints');
    await h.card(page, name).locator('[data-action="recover"]').click();
    await page.locator('#dlg-recover').waitFor({ state: 'visible' });
    assert.ok(await page.inputValue('#recover-since'), 'a default time is filled in');
    await page.click('#dlg-recover button[type="submit"]');
    await h.waitFor('the recovery announcement', async () =>
      /\d+ failed deliver(y|ies) to Billing hooks (is|are) being sent again/.test(await page.locator('#status').textContent()));
    await h.waitFor('a recovered event to arrive delivered', () =>
      receiver.requests.find((r) => failedIds.has(r.headers['webhook-id']) && Number(r.headers['webhook-attempt']) >= 3));
  });

  test('no script errors or CSP violations happened', () => {
    assert.deepEqual(problems, []);
  });
});
