// The portal works without a mouse: a customer tabs to "Add endpoint",
// fills the form, picks an event type, saves, reads the secret and comes
// back where they started; the focused control is always visibly marked,
// dialogs take the focus and give it back, Escape closes them.
'use strict';

const { describe, test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./harness');

describe('keyboard', () => {
  let portal; let browser; let receiver; let page; let problems;

  before(async () => {
    portal = await h.startPortal();
    browser = await h.launchBrowser();
    receiver = await h.startReceiver();
    ({ page, problems } = await h.openPortal(browser, portal.links.acme));
  });

  after(async () => {
    if (browser) { await browser.close(); }
    if (receiver) { await receiver.close(); }
    if (portal) { assert.equal(await portal.stop(), 0); }
  });

  /** What has the focus: its id, or its text, plus whether its outline is visible. */
  function focused() {
    return page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        id: el.id,
        text: (el.textContent || '').trim(),
        tag: el.tagName,
        type: el.type || '',
        outlined: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
      };
    });
  }

  /** Presses Tab until `match(focused)` holds; fails after `max` presses. */
  async function tabTo(what, match, max = 60) {
    for (let i = 0; i < max; i += 1) {
      await page.keyboard.press('Tab');
      const f = await focused();
      if (match(f)) { return f; }
    }
    throw new Error(`Tab never reached ${what}`);
  }

  test('create an endpoint with the keyboard only', async () => {
    const start = await tabTo('the skip link', (f) => f.text === 'Skip to content');
    assert.ok(start.outlined, 'the skip link shows its focus');
    const add = await tabTo('Add endpoint', (f) => f.id === 'add-endpoint');
    assert.ok(add.outlined, 'buttons show their focus');
    await page.keyboard.press('Enter');
    await page.locator('#dlg-endpoint').waitFor({ state: 'visible' });
    assert.equal((await focused()).id, 'ep-name', 'the dialog puts the focus on its first field');
    await page.keyboard.type('Keyboard <made>');
    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'ep-description');
    await page.keyboard.press('Tab');
    assert.equal((await focused()).id, 'ep-url');
    await page.keyboard.type(`${receiver.url}/keys`);
    await page.keyboard.press('Tab');
    const box = await focused();
    assert.equal(box.type, 'checkbox', 'the first catalog event type is next');
    assert.ok(box.outlined, 'checkboxes show their focus');
    await page.keyboard.press('Space');
    const chosen = await page.evaluate(() => document.activeElement.value);
    // Tab stays inside the modal dialog until the save button.
    const save = await tabTo('the save button', (f) => f.id === 'endpoint-save', 40);
    assert.ok(save.outlined);
    await page.keyboard.press('Enter');
    await page.locator('#dlg-secret').waitFor({ state: 'visible', timeout: h.WAIT_MS });
    assert.equal((await focused()).id, 'secret-copy', 'the secret dialog focuses its copy button');
    await page.keyboard.press('Enter');
    await h.waitFor('the copy confirmation', async () => /copied to the clipboard/.test(await page.locator('#status').textContent()));
    const secret = await page.locator('#secret-value').textContent();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret, 'the clipboard holds the secret');
    await page.keyboard.press('Escape');
    await page.locator('#dlg-secret').waitFor({ state: 'hidden' });
    assert.equal((await focused()).id, 'add-endpoint', 'closing gives the focus back to the opener');
    const c = h.card(page, 'Keyboard <made>');
    await c.waitFor();
    assert.deepEqual(await c.locator('[data-slot="events"] li').allTextContents(), [chosen]);
  });

  test('a wrong URL is reported on its field, which gets the focus', async () => {
    await page.focus('#add-endpoint');
    await page.keyboard.press('Enter');
    await page.locator('#dlg-endpoint').waitFor({ state: 'visible' });
    await page.keyboard.type('Broken');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.type('not a url');
    await page.keyboard.press('Enter');
    await h.waitFor('the URL error', () => page.locator('#ep-url-error').isVisible());
    assert.equal((await focused()).id, 'ep-url');
    assert.equal(await page.getAttribute('#ep-url', 'aria-invalid'), 'true');
    assert.ok((await page.locator('#ep-url-error').textContent()).length > 0);
    await page.keyboard.press('Escape');
    await page.locator('#dlg-endpoint').waitFor({ state: 'hidden' });
    assert.equal(await h.card(page, 'Broken').count(), 0, 'nothing was created');
  });

  test('tabs switch views from the keyboard and results are announced', async () => {
    await page.focus('#tab-log');
    await page.keyboard.press('Enter');
    await page.locator('#view-log').waitFor({ state: 'visible' });
    assert.equal(await page.getAttribute('#tab-log', 'aria-current'), 'page');
    assert.equal(await page.getAttribute('#status', 'aria-live'), 'polite');
    // Every form control in the page has an accessible name.
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => !el.closest('template') && !el.labels?.length && !el.getAttribute('aria-label') && !(el.textContent || '').trim())
      .map((el) => el.id || el.outerHTML.slice(0, 60)));
    assert.deepEqual(unnamed, []);
  });

  test('no script errors or CSP violations happened', () => {
    assert.deepEqual(problems, []);
  });
});
