/**
 * @file The analytics page in Chromium against the real binary (rollups folded every 200 ms):
 * the headline, the four SVG charts, the per-type table and the failure reasons show the tasks
 * that finished, the page follows new tasks without a reload, the CSV link answers CSV, and a
 * normal user is refused the page. A screenshot of the page goes to `screenshots/analytics.png`.
 */

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { SCREENSHOTS, launchBrowser, logIn, withPage } from './lib/browser.js';
import { startServer } from './lib/server.js';
import { eventually } from './lib/wait.js';

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
let root = '';
let dana = '';

before(async () => {
  [server, browser] = await Promise.all([
    startServer({ args: ['--rollup-interval', '200ms', '--rollup-settle', '0s'] }),
    launchBrowser(),
  ]);
  root = await server.addUser('root@tasklane.test', { superuser: true });
  dana = await server.addUser('dana@tasklane.test');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Calls the API with `token`.
 * @param {string} token
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(token, method, path, body) {
  const response = await fetch(server.baseUrl + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status}`);
  return response.json();
}

/**
 * Creates a task as dana and waits until it has finished.
 * @param {unknown} spec
 */
async function finished(spec) {
  const task = await api(dana, 'POST', '/api/tasks', spec);
  await eventually(async () => {
    const now = await api(dana, 'GET', `/api/tasks/${task.id}`);
    return ['completed', 'failed', 'cancelled'].includes(now.status);
  }, `task ${task.id} to finish`);
  return task;
}

describe('/superuser/analytics', () => {
  it('charts finished tasks, follows new ones and exports CSV', async () => {
    for (let i = 0; i < 3; i += 1) await finished({ task_type: 'noop' });
    await finished({ task_type: 'sleep', params: { ms: 'not a number' }, max_attempts: 1 });
    await eventually(async () => {
      const answer = await api(root, 'GET', '/api/analytics');
      return answer.totals.reduce((n, t) => n + t.completed + t.failed, 0) === 4;
    }, 'the four tasks to be folded');

    await withPage(browser, 'analytics', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, root);
      await page.goto(`${server.baseUrl}/superuser/analytics`);
      const finishedCount = page.locator('#headline li', { hasText: 'finished' }).locator('.value');
      await page.waitForFunction(() => document.querySelector('#headline li .value')?.textContent === '4');
      assert.equal(await finishedCount.textContent(), '4');

      const noop = page.locator('#group-rows tr', { has: page.locator('th', { hasText: /^noop$/ }) });
      await noop.waitFor();
      const cells = await noop.locator('td').allTextContents();
      assert.deepEqual(cells.slice(0, 4), ['3', '0', '0', '100.0%']);
      const reasons = await page.locator('#failure-list li').allTextContents();
      assert.equal(reasons.length, 1);
      assert.match(reasons[0], /^1invalid params\.ms/);
      for (const chart of ['throughput', 'wait', 'run', 'cost']) {
        assert.equal(await page.locator(`#chart-${chart} svg`).count(), 1, chart);
      }
      assert.ok((await page.locator('#chart-throughput circle').count()) > 0, 'throughput points');
      assert.ok((await page.locator('#chart-run path.line').count()) > 0, 'run-time lines');

      // A new task shows up without a reload (the page refreshes every 10 s).
      await finished({ task_type: 'noop' });
      await page.waitForFunction(() => document.querySelector('#headline li .value')?.textContent === '5', null, {
        timeout: 30_000,
      });

      const csvHref = await page.locator('#csv-link').getAttribute('href');
      assert.ok(csvHref?.includes('format=csv'), csvHref ?? 'no href');
      const csv = await page.evaluate(async (href) => {
        const response = await fetch(/** @type {string} */ (href));
        return { type: response.headers.get('content-type'), text: await response.text() };
      }, csvHref);
      assert.match(csv.type ?? '', /^text\/csv/);
      assert.match(csv.text, /^bucketStart,group,completed/);

      await page.locator('#range-group').selectOption('user');
      await page.locator('#group-rows th', { hasText: 'dana@tasklane.test' }).waitFor();

      await mkdir(SCREENSHOTS, { recursive: true });
      await page.locator('#range-group').selectOption('type');
      await noop.waitFor();
      await page.screenshot({ path: path.join(SCREENSHOTS, 'analytics.png'), fullPage: true });
      assert.deepEqual(watched.dialogs, []);
      assert.deepEqual(watched.problems, [], 'no script errors or CSP violations');
    });
  });

  it('is refused to a normal user', async () => {
    await withPage(browser, 'analytics refused', async ({ page }) => {
      await logIn(page, server.baseUrl, dana);
      const response = await page.goto(`${server.baseUrl}/superuser/analytics`);
      assert.equal(response?.status(), 403);
    }, { allowProblems: /403/ });
  });
});
