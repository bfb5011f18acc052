// What the browser checks share: headless Chromium (Debian's; CHROMIUM
// names another) with a profile of its own that reaches only loopback —
// every other request is aborted as if the network were off and listed in
// `report.blocked` — a watchdog so that a hung browser cannot hang
// `cargo test`, and one JSON report on stdout at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

// `report` must have a `blocked` array and an `error` field; `onRequest`
// sees every loopback request before it goes.
export function session(report, { timeoutMs, stepMs, viewport, onRequest }) {
  const userDataDir = mkdtempSync(join(tmpdir(), 'gp-chromium-profile-'));
  let context;
  let watchdog;
  async function finish(code) {
    clearTimeout(watchdog);
    process.stdout.write(JSON.stringify(report) + '\n');
    try {
      if (context) await context.close();
    } catch {
      // The browser is going away anyway.
    }
    rmSync(userDataDir, { recursive: true, force: true });
    process.exit(code);
  }
  watchdog = setTimeout(() => {
    report.error = `timed out after ${timeoutMs / 1000} s`;
    finish(1);
  }, timeoutMs);
  async function launch() {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport,
    });
    context.setDefaultTimeout(stepMs);
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (!loopback.has(url.hostname)) {
        report.blocked.push(route.request().url());
        return route.abort('internetdisconnected');
      }
      if (onRequest) onRequest(route.request());
      return route.continue();
    });
    return context;
  }
  return { launch, finish, pages: () => (context ? context.pages() : []) };
}
