/**
 * @file Debian's Chromium driven by playwright-core: one headless browser per test file, a
 * fresh context (cookies, storage) per test, every page watched for script errors, CSP
 * violations and dialogs, and a screenshot saved when a test fails.
 */

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'screenshots');

/** Launches headless Chromium (Playwright gives every launch a fresh temporary profile). */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * @typedef {{
 *   page: import('playwright-core').Page,
 *   dialogs: string[],
 *   problems: string[],
 * }} WatchedPage
 */

/**
 * Runs `body` with a new page in a new context. Dialogs are recorded and dismissed (none is
 * expected), console errors and uncaught exceptions are recorded as problems. On failure a
 * full-page screenshot goes to `screenshots/<name>.png`.
 * @param {import('playwright-core').Browser} browser
 * @param {string} name
 * @param {(watched: WatchedPage) => Promise<void>} body
 * @param {{ allowProblems?: RegExp }} [options] console errors that the test expects
 */
export async function withPage(browser, name, body, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  /** @type {string[]} */
  const dialogs = [];
  /** @type {string[]} */
  const problems = [];
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (options.allowProblems && options.allowProblems.test(text)) return;
    problems.push(`console: ${text}`);
  });
  try {
    await body({ page, dialogs, problems });
  } catch (error) {
    await mkdir(SCREENSHOTS, { recursive: true });
    const file = path.join(SCREENSHOTS, `${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    if (error instanceof Error) error.message += `\n(screenshot: ${file})`;
    throw error;
  } finally {
    await context.close();
  }
}

/**
 * Logs in through the login page with an API token and waits for the task page.
 * @param {import('playwright-core').Page} page
 * @param {string} baseUrl
 * @param {string} token
 */
export async function logIn(page, baseUrl, token) {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('API token', { exact: true }).fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${baseUrl}/tasks`);
}

/**
 * Starts recording every value the progress bar `selector` takes (a MutationObserver on
 * `aria-valuenow`), into `window.__progressValues`.
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
export async function recordProgress(page, selector) {
  await page.evaluate((sel) => {
    const bar = document.querySelector(sel);
    if (!bar) throw new Error(`no ${sel}`);
    const values = [Number(bar.getAttribute('aria-valuenow'))];
    /** @type {any} */ (window).__progressValues = values;
    new MutationObserver(() => values.push(Number(bar.getAttribute('aria-valuenow')))).observe(bar, {
      attributes: true,
      attributeFilter: ['aria-valuenow'],
    });
  }, selector);
}

/**
 * The values recorded by {@link recordProgress}.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<number[]>}
 */
export function recordedProgress(page) {
  return page.evaluate(() => /** @type {any} */ (window).__progressValues);
}
