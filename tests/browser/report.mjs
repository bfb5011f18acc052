// Opens a live report link in headless Chromium with the network off, as a
// client would from their digest: finds the panel's figures in the DOM
// (n, NPS, the factor rows), takes a full-page screenshot and prints the
// page to PDF (page.pdf, which applies the print stylesheet).
// "Network off": every request to a host other than 127.0.0.1/localhost is
// aborted and counted; so is any request other than the page itself (the
// report loads nothing), a console error (a CSP violation is one) and an
// uncaught page error.
//
//   node report.mjs <report url> <expected figures JSON> [artifact dir]
//
// Prints one JSON object on stdout ({"ok": true|false, ...}); exit code 0
// only when ok. CHROMIUM names the browser (default /usr/bin/chromium).
import { mkdtempSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { session } from './harness.mjs';

const [url, expectedArg, artifactArg] = process.argv.slice(2);
if (!url || !expectedArg) {
  console.error('usage: node report.mjs <report url> <expected figures JSON> [artifact dir]');
  process.exit(2);
}
const expected = JSON.parse(expectedArg);
const origin = new URL(url).origin;
const artifacts = artifactArg || mkdtempSync(join(tmpdir(), 'gp-report-'));
mkdirSync(artifacts, { recursive: true });

const STEP_MS = 60_000;
const report = {
  ok: false,
  artifacts,
  blocked: [], // non-loopback URLs the page tried to reach
  failed: [], // loads that failed or answered >= 400
  extra_requests: [], // anything the page loaded besides itself
  console_errors: [],
  page_errors: [],
  figures: null,
  screenshot: null,
  pdf: null,
  error: null,
};

const browser = session(report, {
  timeoutMs: 120_000,
  stepMs: STEP_MS,
  viewport: { width: 1200, height: 900 },
  // The report loads nothing besides itself.
  onRequest: (req) => {
    if (req.url() !== url) report.extra_requests.push(req.url());
  },
});

try {
  const context = await browser.launch();
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error') report.console_errors.push(msg.text());
  });
  page.on('pageerror', (err) => report.page_errors.push(String(err)));
  page.on('requestfailed', (req) => {
    if (new URL(req.url()).origin === origin) {
      report.failed.push({ url: req.url(), failure: req.failure()?.errorText });
    }
  });
  page.on('response', (res) => {
    if (res.status() >= 400) report.failed.push({ url: res.url(), status: res.status() });
  });

  const response = await page.goto(url, { waitUntil: 'networkidle' });
  report.status = response.status();
  await page.locator('#panel [data-figure="n"]').waitFor();
  report.figures = await page.evaluate(() => {
    const value = (sel) => document.querySelector(sel)?.getAttribute('data-value') ?? null;
    const text = (sel) => document.querySelector(sel)?.textContent.trim() ?? null;
    return {
      title: document.title,
      client: text('#client'),
      n: value('[data-figure="n"]'),
      n_shown: text('[data-figure="n"]'),
      nps: value('[data-figure="nps"]'),
      nps_shown: text('[data-figure="nps"]'),
      nps_ci_shown: text('[data-figure="nps-ci"]'),
      factor_rows: document.querySelectorAll('#factors tbody tr').length,
      chart_bars: document.querySelectorAll('svg.chart rect').length,
      robots: document.querySelector('meta[name="robots"]')?.getAttribute('content') ?? null,
    };
  });
  report.figures_match =
    Number(report.figures.n) === Number(expected.n) &&
    Math.abs(Number(report.figures.nps) - Number(expected.nps)) < 1e-9;

  report.screenshot = join(artifacts, 'report.png');
  await page.screenshot({ path: report.screenshot, fullPage: true });
  report.pdf = join(artifacts, 'report.pdf');
  await page.pdf({ path: report.pdf, format: 'A4', printBackground: true });
  report.screenshot_bytes = statSync(report.screenshot).size;
  report.pdf_bytes = statSync(report.pdf).size;
} catch (e) {
  report.error = String(e && e.stack ? e.stack : e);
}

report.ok =
  !report.error &&
  report.status === 200 &&
  report.figures_match === true &&
  report.blocked.length === 0 &&
  report.failed.length === 0 &&
  report.extra_requests.length === 0 &&
  report.console_errors.length === 0 &&
  report.page_errors.length === 0 &&
  report.figures?.chart_bars > 0 &&
  report.screenshot_bytes > 0 &&
  report.pdf_bytes > 0;
await browser.finish(report.ok ? 0 : 1);
