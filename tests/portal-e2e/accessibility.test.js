// The portal passes axe-core's automated WCAG 2.1 A and AA checks (names,
// labels, roles, landmarks, contrast, …) in every view and dialog, on a
// desktop and on a phone. axe is injected with the page's CSP bypassed for
// this test's context only; everything else runs under the real CSP.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

const AXE = require.resolve('axe-core/axe.min.js');

describe('accessibility', () => {
  let portal; let browser;

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (portal) { assert.equal(await portal.stop(), 0); }
  });

  /** axe's violations on the page as it is now, one line each. */
  async function violations(page) {
    await page.addScriptTag({ path: AXE });
    const found = await page.evaluate(async () => {
      const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
      return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
    });
    return found;
  }

  async function open(viewport) {
    const context = await browser.newContext({ viewport, bypassCSP: true, reducedMotion: 'reduce' });
    const page = await context.newPage();
    await page.goto(portal.links.acme);
    await page.waitForSelector('body[data-ready="true"]', { timeout: h.WAIT_MS });
    return { context, page };
  }

  for (const [device, viewport] of [['desktop', { width: 1200, height: 800 }], ['phone', { width: 375, height: 740 }]]) {
    test(`every view and dialog passes axe's WCAG A/AA checks (${device})`, async () => {
      const { context, page } = await open(viewport);
      const report = {};
      // Let the demo show a failing and a paused endpoint first.
      await h.waitFor('a paused endpoint', async () => (await page.locator('#endpoint-list .badge.warn').count()) > 0);
      report.endpoints = await violations(page);
      await page.click('#add-endpoint');
      await page.click('#ep-add-header');
      await page.click('#ep-add-filter');
      report['endpoint form'] = await violations(page);
      await page.keyboard.press('Escape');
      await h.card(page, 'Orders service').locator('[data-action="test"]').click();
      await page.click('#test-send');
      await page.locator('#test-result').waitFor({ state: 'visible', timeout: h.WAIT_MS });
      report['test connection'] = await violations(page);
      await page.keyboard.press('Escape');
      await h.card(page, 'Orders service').locator('[data-action="recover"]').click();
      report.recover = await violations(page);
      await page.keyboard.press('Escape');
      await page.click('#tab-log');
      await page.locator('#log-rows tr').first().waitFor({ timeout: h.WAIT_MS });
      report.log = await violations(page);
      await page.locator('#log-rows tr').first().locator('[data-slot="open"]').click();
      await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
      report['attempt detail'] = await violations(page);
      await context.close();
      for (const key of Object.keys(report)) {
        if (!report[key].length) { delete report[key]; }
      }
      assert.deepEqual(report, {});
    });
  }
});
