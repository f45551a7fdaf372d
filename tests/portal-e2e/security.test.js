// What other people typed is shown as text and never runs (stored XSS in an
// endpoint's name, description, header and in a receiver's answer), the
// page runs under a Content-Security-Policy without inline scripts, and a
// session of one tenant sees nothing of another's.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

/** Each payload sets window.__pwned if it ever runs. */
const XSS_NAME = '<script>window.__pwned="name"</script><img src=x onerror="window.__pwned=\'img\'">';
const XSS_ATTR = '"onload="window.__pwned=\'attr\'" x="';
const XSS_BODY = '<script>window.__pwned="body"</script><svg onload="window.__pwned=\'svg\'"></svg>';

describe('security', () => {
  let portal; let browser; let receiver; let acme; let globex;

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
    receiver = await h.startReceiver(() => ({ status: 500, headers: { 'content-type': 'text/html', 'x-note': XSS_ATTR }, body: XSS_BODY }));
    acme = await h.openPortal(browser, portal.links.acme);
    globex = await h.openPortal(browser, portal.links.globex);
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (receiver) { await receiver.close(); }
    if (portal) { assert.equal(await portal.stop(), 0); }
  });

  test('the page is served with a CSP that forbids inline scripts', async () => {
    const res = await acme.page.request.get(portal.links.acme.split('#')[0]);
    const csp = res.headers()['content-security-policy'];
    assert.ok(csp, 'a Content-Security-Policy header');
    const script = /script-src ([^;]*)/.exec(csp) || /default-src ([^;]*)/.exec(csp);
    assert.ok(script, `a script-src or default-src in ${csp}`);
    assert.ok(!script[1].includes('unsafe-inline') && !script[1].includes('unsafe-eval'), csp);
  });

  test('stored XSS in a name, description, header and response body shows as text', async () => {
    const { page, problems } = acme;
    await h.createEndpoint(page, {
      name: XSS_NAME,
      description: XSS_ATTR,
      url: `${receiver.url}/xss`,
      headers: [['x-tag', XSS_ATTR]],
    });
    const c = h.card(page, '<script>window.__pwned="name"</script>');
    assert.equal(await c.locator('h3').textContent(), XSS_NAME);
    assert.equal(await c.locator('[data-slot="description"]').textContent(), XSS_ATTR);
    // The receiver's answer, through "Test connection" and through the log.
    await c.locator('[data-action="test"]').click();
    await page.click('#test-send');
    await page.locator('#test-result').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    assert.equal(await page.locator('#test-result-body').textContent(), XSS_BODY);
    assert.match(await page.locator('#test-result-headers').textContent(), /x-note: "onload=/);
    await page.locator('#dlg-test .dialog-foot [data-close]').click();
    await c.locator('[data-action="log"]').click();
    const row = page.locator('#log-rows tr').first();
    await row.waitFor({ timeout: h.WAIT_MS });
    assert.equal(await row.locator('[data-slot="endpoint"]').textContent(), XSS_NAME);
    await row.locator('[data-slot="open"]').click();
    await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#attempt-res-body').textContent(), XSS_BODY);
    await page.locator('#dlg-attempt .dialog-foot [data-close]').click();
    // The filter's option shows the name as text too.
    assert.ok((await page.locator('#f-endpoint option').allTextContents()).includes(XSS_NAME));
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no injected script ran');
    assert.equal(await page.locator('#main script, #main img:not(#brand-logo), #main svg').count(), 0, 'no injected element exists');
    assert.deepEqual(problems, []);
  });

  test('another tenant\'s session sees none of the first tenant\'s data', async () => {
    const { page } = globex;
    await page.click('#tab-endpoints');
    await page.click('#refresh-endpoints');
    const names = await page.locator('#endpoint-list h3').allTextContents();
    assert.deepEqual(names, ['Globex billing']);
    await page.click('#tab-log');
    await h.waitFor('globex\'s own log', () => page.locator('#log-rows tr').first().isVisible());
    for (const text of await page.locator('#log-rows [data-slot="endpoint"]').allTextContents()) {
      assert.equal(text, 'Globex billing');
    }
    assert.deepEqual(globex.problems, []);
    // Ids of acme's endpoints and attempts, asked for with globex's token: 404, nothing leaked.
    const token = await h.tokenOf(page);
    const acmeIds = await acme.page.evaluate(() => [...document.querySelectorAll('#endpoint-list > li')].map((li) => li.dataset.id));
    assert.ok(acmeIds.length >= 3);
    for (const id of acmeIds) {
      const res = await page.evaluate(async ([id, token]) => {
        const r = await fetch(new URL(`api/v1/endpoints/${encodeURIComponent(id)}`, document.baseURI), { headers: { Authorization: `Bearer ${token}` } });
        return { status: r.status, text: await r.text() };
      }, [id, token]);
      assert.equal(res.status, 404, `globex reading acme's ${id}: ${res.text}`);
      assert.ok(!res.text.includes('Legacy CRM') && !res.text.includes('xss'), res.text);
    }
  });

  test('a tampered token opens no session and says so', async () => {
    const token = await h.tokenOf(acme.page);
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${portal.links.acme.split('#')[0]}#token=${encodeURIComponent(tampered)}`);
    await page.locator('#view-nosession').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    assert.ok(!page.url().includes('token'));
    assert.equal(await page.locator('#endpoint-list li').count(), 0);
    await context.close();
  });
});
