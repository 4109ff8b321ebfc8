// A server-rendered page as people see it: headless Chromium loads the page
// (with a bearer token when given) at a phone's width and at a desk's, takes
// a full-page screenshot of each into the folder given, and reports what a
// reader would meet.
//
//   node page-check.mjs <page URL> <screenshot folder> <name> [<bearer token>]
//
// Prints one JSON line: the HTTP status; the page's title, `lang` and visible
// text; whether it needs sideways scrolling on a phone (390 px wide); the
// number of scripts; images or SVG charts without an accessible name; form
// controls without a label; the CJK fonts the page renders with; and the
// screenshots written.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, folder, name, token] = process.argv.slice(2);
if (!url || !folder || !name) {
  console.error('usage: node page-check.mjs <page URL> <screenshot folder> <name> [<bearer token>]');
  process.exit(2);
}
mkdirSync(folder, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const report = { screenshots: [] };
  for (const [label, viewport] of [['phone', { width: 390, height: 844 }], ['desk', { width: 1280, height: 900 }]]) {
    const context = await browser.newContext({ extraHTTPHeaders: headers, viewport, deviceScaleFactor: 1 });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const response = await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
    const seen = await page.evaluate(() => {
      const named = (e) => e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
        || e.getAttribute('alt') || e.querySelector(':scope > title');
      const labelled = (e) => e.labels?.length > 0 || e.getAttribute('aria-label') || e.type === 'hidden' || e.type === 'submit';
      return {
        title: document.title,
        lang: document.documentElement.lang,
        text: document.body.innerText,
        overflow: document.documentElement.scrollWidth > window.innerWidth + 1,
        scripts: document.scripts.length,
        unnamedGraphics: [...document.querySelectorAll('img, svg')].filter((e) => !named(e)).length,
        unlabelledControls: [...document.querySelectorAll('input, select, textarea')].filter((e) => !labelled(e)).length,
        headings: [...document.querySelectorAll('h1')].length,
      };
    });
    const file = join(folder, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    report.screenshots.push(file);
    report.status = response.status();
    report[label] = { ...seen, pageErrors: errors };
    await context.close();
  }
  // The fonts Chromium actually used for the page's text (a Japanese page
  // without a CJK font would show tofu).
  const context = await browser.newContext({ extraHTTPHeaders: headers });
  const page = await context.newPage();
  await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  const cdp = await context.newCDPSession(page);
  await cdp.send('DOM.enable');
  await cdp.send('CSS.enable');
  const { root } = await cdp.send('DOM.getDocument', { depth: -1 });
  const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: 'h1' });
  const fonts = nodeId ? (await cdp.send('CSS.getPlatformFontsForNode', { nodeId })).fonts.map((f) => f.familyName) : [];
  report.fonts = fonts;
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
}
