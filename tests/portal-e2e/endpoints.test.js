// A customer manages an endpoint in the portal: creates it, tests the
// connection with an edited sample, sees its real deliveries arrive in the
// log with the attempt's detail, rotates its secret, pauses and resumes it.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

describe('endpoints', () => {
  let portal; let browser; let receiver; let page; let problems; let secret;
  const name = 'Warehouse sync';

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
    receiver = await h.startReceiver(() => ({ status: 200, headers: { 'x-receiver': 'warehouse' }, body: '{"stored":true}' }));
    ({ page, problems } = await h.openPortal(browser, portal.links.acme));
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (receiver) { await receiver.close(); }
    if (portal) { assert.equal(await portal.stop(), 0, 'the example exits 0 on Ctrl-C'); }
  });

  test('the token leaves the address bar and the demo endpoints show their health', async () => {
    assert.ok(!page.url().includes('token'), `token still in ${page.url()}`);
    const failing = h.card(page, 'Legacy CRM');
    await h.waitFor('the failing endpoint to show a failure time', async () =>
      (await failing.locator('[data-slot="last-failure"] time').count()) > 0);
    const paused = h.card(page, 'Old ERP');
    await h.waitFor('the 410 endpoint to show its pause reason', async () =>
      /Paused: the receiver answered 410 Gone/.test(await paused.locator('[data-slot="status"]').textContent()));
    assert.equal(await paused.locator('[data-action="pause"]').textContent(), 'Resume');
  });

  test('create an endpoint with catalog types and a custom header; the secret is shown once', async () => {
    secret = await h.createEndpoint(page, {
      name,
      description: 'Stock levels for the warehouse',
      url: `${receiver.url}/hooks`,
      types: ['order.created', 'order.paid'],
      headers: [['x-api-key', 'warehouse-key-1']],
      filters: [['region', 'eu, us']],
    });
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]{20,}$/);
    const c = h.card(page, name);
    assert.deepEqual(await c.locator('[data-slot="events"] li').allTextContents(), ['order.created', 'order.paid']);
    assert.equal(await c.locator('[data-slot="url"]').textContent(), `${receiver.url}/hooks`);
    assert.equal(await c.locator('[data-slot="description"]').textContent(), 'Stock levels for the warehouse');
    // Editing shows the saved settings back, and never the secret.
    await c.locator('[data-action="edit"]').click();
    assert.equal(await page.inputValue('#ep-name'), name);
    assert.equal(await page.locator('#ep-headers [data-slot="key"]').inputValue(), 'x-api-key');
    assert.equal(await page.locator('#ep-filters [data-slot="key"]').inputValue(), 'region');
    assert.equal(await page.locator('#ep-filters [data-slot="value"]').inputValue(), 'eu, us');
    assert.ok(!(await page.locator('#dlg-endpoint').textContent()).includes(secret));
    await page.locator('#dlg-endpoint .dialog-foot [data-close]').click();
  });

  test('the enable switch disables and enables the endpoint', async () => {
    const c = h.card(page, name);
    const toggle = async (on) => {
      await c.locator('[data-action="edit"]').click();
      await page.locator('#dlg-endpoint').waitFor({ state: 'visible' });
      assert.equal(await page.isChecked('#ep-enabled'), !on);
      await page.setChecked('#ep-enabled', on);
      await page.click('#endpoint-save');
      await page.locator('#dlg-endpoint').waitFor({ state: 'hidden', timeout: h.WAIT_MS });
    };
    await toggle(false);
    await h.waitFor('the disabled badge', async () => (await c.locator('[data-slot="status"]').textContent()) === 'Disabled');
    await toggle(true);
    await h.waitFor('the active badge', async () => (await c.locator('[data-slot="status"]').textContent()) === 'Active');
  });

  test('test connection sends the edited sample and shows the receiver\'s answer', async () => {
    await h.card(page, name).locator('[data-action="test"]').click();
    await page.locator('#dlg-test').waitFor({ state: 'visible' });
    const prefilled = JSON.parse(await page.inputValue('#test-payload'));
    assert.ok(Object.keys(prefilled).length > 0, 'the payload is pre-filled from the catalog example');
    await page.fill('#test-payload', JSON.stringify({ ...prefilled, note: 'edited in the portal' }));
    const before = receiver.requests.length;
    await page.click('#test-send');
    await page.locator('#test-result').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    const summary = await page.locator('#test-result-summary').textContent();
    assert.match(summary, /Delivered \(200\)/);
    assert.match(await page.locator('#test-result-body').textContent(), /"stored": true/);
    assert.match(await page.locator('#test-result-headers').textContent(), /x-receiver: warehouse/);
    const sent = receiver.requests.slice(before).find((r) => r.body.includes('edited in the portal'));
    assert.ok(sent, 'the receiver got the edited payload');
    assert.equal(sent.headers['x-api-key'], 'warehouse-key-1');
    assert.match(sent.headers['webhook-signature'], /^v1,/);
    await page.locator('#dlg-test .dialog-foot [data-close]').click();
  });

  test('a real delivery appears in the log, with the attempt as sent and as answered', async () => {
    await h.card(page, name).locator('[data-action="log"]').click();
    assert.equal(await page.locator('#tab-log').getAttribute('aria-current'), 'page');
    const row = page.locator('#log-rows tr').filter({ hasText: name }).first();
    await row.waitFor({ timeout: h.WAIT_MS });
    assert.match(await row.locator('[data-slot="outcome"]').textContent(), /Delivered \(200\)/);
    await row.locator('[data-slot="open"]').click();
    await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
    const reqHeaders = await page.locator('#attempt-req-headers').textContent();
    assert.match(reqHeaders, /webhook-id: /i);
    assert.ok(!reqHeaders.includes('warehouse-key-1'), 'custom header values are redacted');
    assert.ok(!reqHeaders.includes(secret), 'the secret never appears');
    assert.match(await page.locator('#attempt-res-headers').textContent(), /HTTP 200/);
    assert.match(await page.locator('#attempt-res-body').textContent(), /"stored": true/);
    await page.locator('#dlg-attempt .dialog-foot [data-close]').click();
    await page.click('#tab-endpoints');
  });

  test('rotating the secret shows a new one once; both sign during the grace period', async () => {
    await h.card(page, name).locator('[data-action="rotate"]').click();
    await page.locator('#dlg-confirm').waitFor({ state: 'visible' });
    await page.click('#confirm-ok');
    await page.locator('#dlg-secret').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    const rotated = await page.locator('#secret-value').textContent();
    assert.match(rotated, /^whsec_/);
    assert.notEqual(rotated, secret);
    assert.ok(await page.locator('#secret-grace').isVisible(), 'the grace period is explained');
    await page.locator('#dlg-secret [data-close]').click();
    // The next request carries two signatures: the new secret's and the old one's.
    const before = receiver.requests.length;
    await h.waitFor('a request signed after the rotation', () =>
      receiver.requests.slice(before).find((r) => r.headers['webhook-signature'].split(' ').length === 2));
  });

  test('pause keeps webhooks back, resume sends them', async () => {
    const c = h.card(page, name);
    await c.locator('[data-action="pause"]').click();
    await h.waitFor('the paused badge', async () => /Paused/.test(await c.locator('[data-slot="status"]').textContent()));
    await h.waitFor('something queued while paused', async () =>
      Number((await c.locator('[data-slot="queued"]').textContent()).split(' ')[0]) > 0);
    const before = receiver.requests.length;
    await c.locator('[data-action="pause"]').click();
    await h.waitFor('the active badge', async () => /Active/.test(await c.locator('[data-slot="status"]').textContent()));
    await h.waitFor('the kept webhooks to arrive', () => receiver.requests.length > before);
  });

  test('delete asks first, with the focus on Cancel, then removes the endpoint', async () => {
    await h.card(page, name).locator('[data-action="delete"]').click();
    await page.locator('#dlg-confirm').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-cancel');
    await page.keyboard.press('Enter');
    await page.locator('#dlg-confirm').waitFor({ state: 'hidden' });
    assert.equal(await h.card(page, name).count(), 1, 'Cancel keeps it');
    await h.card(page, name).locator('[data-action="delete"]').click();
    await page.click('#confirm-ok');
    await h.waitFor('the card to go', async () => (await h.card(page, name).count()) === 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'add-endpoint');
    // Gone for the API too, and its deliveries with it.
    await page.click('#refresh-endpoints');
    assert.equal(await h.card(page, name).count(), 0);
  });

  test('no script errors or CSP violations happened', () => {
    assert.deepEqual(problems, []);
  });
});
