// The portal reads on a phone (375 px wide: no sideways scrolling, in any
// view or dialog) and on a desktop, carries the host's branding, and leaves
// screenshots of both in target/portal-screenshots/ for people to look at.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

const PHONE = { width: 375, height: 740 };
const DESKTOP = { width: 1200, height: 800 };

describe('layout', () => {
  let portal; let browser; let desktop; let phone;

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
    desktop = await h.openPortal(browser, portal.links.acme, DESKTOP);
    phone = await h.openPortal(browser, portal.links.acme, PHONE);
    // Let the demo produce a failure and a pause, so the pictures show them.
    await h.waitFor('the demo endpoints to have failed and paused', async () =>
      (await desktop.page.locator('#endpoint-list .badge.warn').count()) > 0
      && (await desktop.page.locator('#endpoint-list [data-slot="last-failure"] time').count()) > 0);
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (portal) { assert.equal(await portal.stop(), 0); }
  });

  /** How far the page scrolls sideways, in CSS pixels (0 is right). */
  function overflow(page) {
    return page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  }

  /** Elements wider than the viewport: names them when the layout breaks. */
  function wideElements(page) {
    return page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5 && el.getClientRects().length)
      .slice(0, 5).map((el) => `${el.tagName.toLowerCase()}#${el.id}.${el.className}`));
  }

  async function assertFits(page, where) {
    const extra = await overflow(page);
    assert.ok(extra <= 0, `${where}: scrolls ${extra}px sideways; too wide: ${await wideElements(page)}`);
  }

  test('the host\'s branding is applied', async () => {
    const { page } = desktop;
    assert.equal(await page.title(), 'Northwind webhooks');
    assert.equal(await page.locator('#brand-title').textContent(), 'Northwind webhooks');
    await h.waitFor('the account line', async () => /^Account Acme Corp · link valid until /.test(await page.locator('#session-info').textContent()));
    const accent = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim());
    assert.ok(accent.length > 0 && accent !== '#3451d1', `accent ${accent}`);
    await h.waitFor('the logo to load', () => page.evaluate(() => {
      const img = document.getElementById('brand-logo');
      return !img.hidden && img.complete && img.naturalWidth > 0;
    }));
  });

  test('desktop screenshots: endpoints, endpoint form, log, attempt detail', async () => {
    const { page } = desktop;
    await h.screenshot(page, 'desktop-endpoints');
    // The README's picture (docs/portal.png is a copy): one screen, no scrolling.
    await page.setViewportSize({ width: 1000, height: 760 });
    await h.screenshot(page, 'readme', false);
    await page.setViewportSize(DESKTOP);
    await page.click('#add-endpoint');
    await page.locator('#dlg-endpoint').waitFor({ state: 'visible' });
    await page.fill('#ep-name', 'Analytics');
    await page.fill('#ep-url', 'https://hooks.example.com/analytics');
    await h.screenshot(page, 'desktop-endpoint-form', false);
    await page.keyboard.press('Escape');
    await page.click('#tab-log');
    await page.locator('#log-rows tr').first().waitFor({ timeout: h.WAIT_MS });
    await h.screenshot(page, 'desktop-log');
    await page.locator('#log-rows tr').first().locator('[data-slot="open"]').click();
    await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
    await h.screenshot(page, 'desktop-attempt', false);
    await page.keyboard.press('Escape');
    await page.click('#tab-endpoints');
  });

  test('phone width: no sideways scrolling in any view or dialog', async () => {
    const { page, problems } = phone;
    await assertFits(page, 'endpoints');
    await h.screenshot(page, 'phone-endpoints');
    await page.click('#add-endpoint');
    await page.locator('#dlg-endpoint').waitFor({ state: 'visible' });
    await page.click('#ep-add-header');
    await page.click('#ep-add-filter');
    await assertFits(page, 'endpoint form');
    await h.screenshot(page, 'phone-endpoint-form', false);
    await page.keyboard.press('Escape');
    await h.card(page, 'Orders service').locator('[data-action="test"]').click();
    await page.click('#test-send');
    await page.locator('#test-result').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    await assertFits(page, 'test connection');
    await h.screenshot(page, 'phone-test', false);
    await page.keyboard.press('Escape');
    await page.click('#tab-log');
    await page.locator('#log-rows tr').first().waitFor({ timeout: h.WAIT_MS });
    await assertFits(page, 'delivery log');
    await h.screenshot(page, 'phone-log');
    await page.locator('#log-rows tr').first().locator('[data-slot="open"]').click();
    await page.locator('#dlg-attempt').waitFor({ state: 'visible' });
    await assertFits(page, 'attempt detail');
    await h.screenshot(page, 'phone-attempt', false);
    await page.keyboard.press('Escape');
    assert.deepEqual(problems, []);
  });

  test('the page works offline: it loads nothing from another origin', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const origin = new URL(portal.links.acme).origin;
    const foreign = [];
    page.on('request', (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) { foreign.push(r.url()); } });
    await page.goto(portal.links.acme);
    await page.waitForSelector('body[data-ready="true"]', { timeout: h.WAIT_MS });
    assert.deepEqual(foreign, []);
    await context.close();
  });
});
