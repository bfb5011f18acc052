// Loads the developer pages of a running Growthpoint in headless Chromium
// with the network off, as a person would use them:
//   - GraphiQL (/graphql): puts a JWT in the Headers tab, runs the default
//     query and reads the answer from the result pane;
//   - the REST reference (/api/v1/docs): "Authorize" with the same JWT, then
//     "Try it out" and "Execute" on GET /api/v1/agency, and reads the response.
// "Network off": every request to a host other than 127.0.0.1/localhost is
// aborted and counted, and any such attempt fails the run; so do a failed
// or 4xx/5xx same-origin load, a console error (a CSP violation is one)
// and an uncaught page error.
//
//   node devpages.mjs <base-url> <jwt> <agency name> [artifact dir]
//
// Prints one JSON object on stdout ({"ok": true|false, ...}); exit code 0
// only when ok. Screenshots go to the artifact dir (default: a new temp dir).
// CHROMIUM names the browser (default /usr/bin/chromium).
import { mkdtempSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { session } from './harness.mjs';

const [base, token, agencyName, artifactArg] = process.argv.slice(2);
if (!base || !token || !agencyName) {
  console.error('usage: node devpages.mjs <base-url> <jwt> <agency name> [artifact dir]');
  process.exit(2);
}
const origin = new URL(base).origin;
const artifacts = artifactArg || mkdtempSync(join(tmpdir(), 'gp-devpages-'));
mkdirSync(artifacts, { recursive: true });

// Each step's limit. Swagger UI renders the whole document (0.9 MB, every
// operation expanded) before an operation can be clicked; in CI, with the
// suite's other tests on the same two cores, that once took over 30 s.
const STEP_MS = 120_000;
const report = {
  ok: false,
  artifacts,
  blocked: [], // non-loopback URLs the pages tried to reach
  failed: [], // same-origin loads that failed or answered >= 400
  console_errors: [],
  page_errors: [],
  graphiql: null,
  docs: null,
  error: null,
};

const browser = session(report, {
  timeoutMs: 180_000,
  stepMs: STEP_MS,
  viewport: { width: 1400, height: 900 },
});

function watch(page, name) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      report.console_errors.push({ page: name, text: msg.text(), location: msg.location() });
    }
  });
  page.on('pageerror', (err) => report.page_errors.push({ page: name, error: String(err) }));
  page.on('requestfailed', (req) => {
    if (new URL(req.url()).origin === origin) {
      report.failed.push({ page: name, url: req.url(), failure: req.failure()?.errorText });
    }
  });
  page.on('response', (res) => {
    if (new URL(res.url()).origin === origin && res.status() >= 400) {
      report.failed.push({ page: name, url: res.url(), status: res.status() });
    }
  });
}

// CodeMirror 5 (GraphiQL 3's editors) keeps its instance on the wrapper.
async function editorValue(locator) {
  return locator.evaluate((el) => el.CodeMirror.getValue());
}

async function graphiql(page) {
  const out = {};
  await page.goto(`${origin}/graphql`, { waitUntil: 'networkidle' });
  await page.locator('.graphiql-container').waitFor();
  out.title = await page.title();

  await page.getByRole('button', { name: 'Headers' }).click();
  const headers = page.locator('.graphiql-editor-tool .CodeMirror').last();
  await headers.waitFor();
  await headers.evaluate(
    (el, value) => el.CodeMirror.setValue(value),
    JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2),
  );

  out.query = await editorValue(page.locator('.graphiql-query-editor .CodeMirror').first());
  const sent = page.waitForRequest(
    (r) => r.url() === `${origin}/graphql` && r.method() === 'POST' && /\bme\b/.test(r.postData() || ''),
  );
  await page.locator('.graphiql-execute-button').click();
  const request = await sent;
  out.sent_authorization = (request.headers().authorization || '').startsWith('Bearer ');

  const result = page.locator('.result-window .CodeMirror').first();
  await page.waitForFunction(
    (name) => {
      const el = document.querySelector('.result-window .CodeMirror');
      return el && el.CodeMirror.getValue().includes(name);
    },
    agencyName,
    { timeout: STEP_MS },
  );
  out.result = JSON.parse(await editorValue(result));
  out.agency_shown = out.result?.data?.me?.agency?.name === agencyName;
  out.screenshot = join(artifacts, 'graphiql.png');
  await page.screenshot({ path: out.screenshot, fullPage: true });

  // A dialog too: its scroll lock is where a library would add a <style>
  // element, which the page's Content-Security-Policy refuses.
  await page.getByRole('button', { name: 'Open settings dialog' }).click();
  await page.getByRole('dialog').waitFor();
  out.settings_screenshot = join(artifacts, 'graphiql-settings.png');
  await page.screenshot({ path: out.settings_screenshot });
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached' });
  return out;
}

async function docs(page) {
  const out = {};
  await page.goto(`${origin}/api/v1/docs`, { waitUntil: 'networkidle' });
  await page.locator('.swagger-ui .info .title').waitFor();
  out.title = (await page.locator('.swagger-ui .info .title').innerText()).trim();

  await page.locator('.swagger-ui .auth-wrapper .authorize').click();
  const modal = page.locator('.swagger-ui .modal-ux');
  await modal.locator('input').first().fill(token);
  await modal.locator('button.authorize').click();
  await modal.locator('button.btn-done').click();

  const op = page.locator('.opblock.opblock-get', {
    has: page.locator('.opblock-summary-path[data-path="/api/v1/agency"]'),
  });
  await op.locator('.opblock-summary').click();
  await op.getByRole('button', { name: 'Try it out' }).click();
  const answered = page.waitForResponse(
    (r) => r.url() === `${origin}/api/v1/agency` && r.request().method() === 'GET',
  );
  await op.getByRole('button', { name: 'Execute' }).click();
  const response = await answered;
  out.sent_authorization = (response.request().headers().authorization || '').startsWith('Bearer ');

  const live = op.locator('.live-responses-table');
  await live.waitFor();
  // The table's header row has the same cell classes: read the body row.
  const row = live.locator('tbody tr.response').first();
  out.status_shown = (await row.locator('.response-col_status').innerText()).trim();
  await row.locator('.response-col_description', { hasText: agencyName }).waitFor();
  out.agency_shown = true;
  out.screenshot = join(artifacts, 'docs.png');
  await op.scrollIntoViewIfNeeded();
  await page.screenshot({ path: out.screenshot, fullPage: false });
  return out;
}

try {
  const context = await browser.launch();
  const page = context.pages()[0] || (await context.newPage());
  watch(page, 'graphiql');
  report.graphiql = await graphiql(page);

  const docsPage = await context.newPage();
  watch(docsPage, 'docs');
  report.docs = await docs(docsPage);
} catch (e) {
  report.error = String(e && e.stack ? e.stack : e);
  // What the page showed when it went wrong.
  for (const [i, p] of browser.pages().entries()) {
    const path = join(artifacts, `failure-${i}.png`);
    try {
      await p.screenshot({ path, fullPage: false });
      report.failure_screenshots = [...(report.failure_screenshots || []), path];
    } catch {
      // The page may be gone.
    }
  }
}

report.ok =
  !report.error &&
  report.blocked.length === 0 &&
  report.failed.length === 0 &&
  report.console_errors.length === 0 &&
  report.page_errors.length === 0 &&
  report.graphiql?.agency_shown === true &&
  report.graphiql?.sent_authorization === true &&
  report.docs?.agency_shown === true &&
  report.docs?.sent_authorization === true &&
  report.docs?.status_shown === '200';
await browser.finish(report.ok ? 0 : 1);
