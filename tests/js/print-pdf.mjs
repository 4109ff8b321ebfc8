// The printable emergency sheet as paper: headless Chromium loads
// /patients/{id}/emergency-sheet with a bearer token and prints it to an
// A4 PDF, as a browser's "Print" would.
//
//   node print-pdf.mjs <page URL> <bearer token> [<PDF file to keep>]
//
// Prints one JSON line: the HTTP status, the number of pages of the PDF
// (its `/Type /Page` objects, not the `/Pages` tree), the fonts the PDF
// embeds (a Japanese page without a CJK font would print tofu), and whether
// any element's text is cut off (content wider or taller than its box with
// overflow hidden).
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, token, keep] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node print-pdf.mjs <page URL> <bearer token> [<PDF file>]');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const context = await browser.newContext({
    extraHTTPHeaders: { Authorization: `Bearer ${token}` },
  });
  const page = await context.newPage();
  const response = await page.goto(url, { waitUntil: 'load', timeout: 20_000 });
  await page.emulateMedia({ media: 'print' });
  const clipped = await page.evaluate(() =>
    [...document.querySelectorAll('body *')].filter((e) => {
      const s = getComputedStyle(e);
      const hides = (v) => v === 'hidden' || v === 'clip';
      return (hides(s.overflowX) && e.scrollWidth > e.clientWidth + 1)
        || (hides(s.overflowY) && e.scrollHeight > e.clientHeight + 1);
    }).length);
  // The page's own @page rule decides size and margins, as when a person
  // prints it; A4 is what the printer is set to.
  const pdf = await page.pdf({ format: 'A4', printBackground: true, preferCSSPageSize: true });
  if (keep) writeFileSync(keep, pdf);
  const text = pdf.toString('latin1');
  const pages = (text.match(/\/Type\s*\/Page(?![a-zA-Z])/g) ?? []).length;
  const fonts = [...new Set([...text.matchAll(/\/FontName\s*\/(?:[A-Z]{6}\+)?([^\s/>\]]+)/g)].map((m) => m[1]))];
  console.log(JSON.stringify({ status: response.status(), pages, fonts, clipped }));
} finally {
  await browser.close();
}
