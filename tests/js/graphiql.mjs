// GraphiQL as a person meets it, in headless Chromium against a spawned hub,
// with the network off: every request to anywhere but the hub is refused
// (and recorded), so the page must work from the hub's own files.
//
//   node graphiql.mjs <hub URL> <bearer token>
//
// Loads the page, puts the token in the Headers pane, opens the Docs at the
// Query type, runs the default query, starts a subscription (WebSocket), and
// finally checks that the page's CSP is enforced (an injected inline script
// must be blocked). Prints one JSON line with what it saw; exits non-zero,
// saying why, when a step fails.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node graphiql.mjs <hub URL> <bearer token>');
  process.exit(2);
}
const hub = new URL(url).origin;
const STEP = 15_000;

const profile = mkdtempSync(join(tmpdir(), 'renkei-graphiql-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});

const seen = {
  outside: [], // requests to anywhere but the hub (refused)
  violations: [], // CSP violations the page reported
  consoleErrors: [], // before the CSP check's deliberate violation
  pageErrors: [],
  csp: null,
  loadingGone: false,
  docs: [],
  result: null,
  websocket: { url: null, ack: false, init: null },
  inlineScriptBlocked: false,
  storage: null,
};

let step = 'launching';
let checkingCsp = false;
try {
  await context.route('**/*', (route) => {
    const requested = route.request().url();
    if (new URL(requested).origin === hub) return route.continue();
    seen.outside.push(requested);
    return route.abort('internetdisconnected');
  });
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
    });
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP);
  page.on('console', (m) => {
    if (m.type() === 'error' && !checkingCsp) seen.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  page.on('websocket', (ws) => {
    seen.websocket.url = ws.url();
    ws.on('framesent', (f) => {
      const text = String(f.payload);
      if (text.includes('connection_init')) seen.websocket.init = JSON.parse(text);
    });
    ws.on('framereceived', (f) => {
      if (String(f.payload).includes('connection_ack')) seen.websocket.ack = true;
    });
  });

  step = 'loading the page';
  const response = await page.goto(`${hub}/`);
  seen.csp = response.headers()['content-security-policy'] ?? null;
  await page.waitForSelector('.graphiql-container');
  seen.loadingGone = !(await page.content()).includes('Loading GraphiQL');

  step = 'putting the token in the Headers pane (the schema is then fetched)';
  const introspected = page.waitForResponse(
    (r) =>
      r.url() === `${hub}/graphql` &&
      (r.request().postData() ?? '').includes('IntrospectionQuery') &&
      r.status() === 200,
  );
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.CodeMirror')].some((e) =>
      e.CodeMirror?.getValue().includes('Authorization'),
    ),
  );
  await page.evaluate((t) => {
    const editor = [...document.querySelectorAll('.CodeMirror')].find((e) =>
      e.CodeMirror.getValue().includes('Authorization'),
    );
    editor.CodeMirror.setValue(JSON.stringify({ Authorization: `Bearer ${t}` }, null, 2));
  }, token);
  await introspected;

  step = 'opening the Docs at the Query type';
  await page.click('.graphiql-sidebar button[aria-label*="Documentation Explorer"]');
  await page
    .locator('a.graphiql-doc-explorer-type-name', { hasText: /^Query$/ })
    .first()
    .click();
  await page.waitForSelector('.graphiql-doc-explorer-field-name:has-text("patientByLocalId")');
  seen.docs = await page.$$eval('.graphiql-doc-explorer-field-name', (names) =>
    names.map((n) => n.textContent),
  );

  step = 'running the default query';
  const answered = page.waitForResponse(
    (r) => r.url() === `${hub}/graphql` && (r.request().postData() ?? '').includes('me {'),
  );
  await page.click('.graphiql-execute-button');
  await answered;
  await page.waitForFunction(() =>
    [...document.querySelectorAll('.graphiql-response .CodeMirror')].some((e) =>
      e.CodeMirror?.getValue().includes('"me"'),
    ),
  );
  seen.result = JSON.parse(
    await page.evaluate(() =>
      document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue(),
    ),
  );

  step = 'starting a subscription over the WebSocket';
  await page.evaluate(() => {
    const editor = document.querySelector('.graphiql-query-editor .CodeMirror');
    editor.CodeMirror.setValue('subscription { notifications { id kind message } }');
  });
  // GraphiQL parses the edited query after a short debounce; executed
  // before that, the old query's (a query's) transport would be used.
  await page.waitForTimeout(1000);
  await page.click('.graphiql-execute-button');
  const until = Date.now() + STEP;
  while (!seen.websocket.ack && Date.now() < until) await page.waitForTimeout(50);
  if (!seen.websocket.ack) throw new Error('no connection_ack on the WebSocket');

  seen.violations = await page.evaluate(() => window.__violations.slice());
  // What the browser kept: the token nowhere, nothing beyond the tab.
  seen.storage = await page.evaluate((t) => ({
    localKeys: Object.keys(window.localStorage),
    tokenStored: [window.localStorage, window.sessionStorage].some((s) =>
      Object.keys(s).some((k) => (s.getItem(k) ?? '').includes(t)),
    ),
    sessionKeys: Object.keys(window.sessionStorage).length,
  }), token);

  step = 'checking that the CSP is enforced (an injected inline script)';
  checkingCsp = true;
  seen.inlineScriptBlocked = await page.evaluate(async () => {
    const before = window.__violations.length;
    const script = document.createElement('script');
    script.textContent = 'window.__inlineRan = true;';
    document.body.appendChild(script);
    await new Promise((r) => setTimeout(r, 200));
    return window.__inlineRan !== true && window.__violations.length > before;
  });

  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(`GraphiQL check failed while ${step}: ${e.message}`);
  console.error(JSON.stringify(seen));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
