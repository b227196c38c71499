/**
 * @file The schedules page in Chromium against the real binary: a schedule created through the
 * API shows its next run, its last run appears live as the scheduler fires it, and pause,
 * resume and run now work from the page.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, logIn, withPage } from './lib/browser.js';
import { startServer } from './lib/server.js';

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
let token = '';

before(async () => {
  [server, browser] = await Promise.all([startServer(), launchBrowser()]);
  token = await server.addUser('carol@tasklane.test');
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Calls the API as carol.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 */
async function api(method, path, body) {
  const response = await fetch(server.baseUrl + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} ${path}: ${response.status}`);
  return response.json();
}

describe('/schedules', () => {
  it('shows schedules live with pause, resume and run now', async () => {
    const daily = await api('POST', '/api/schedules', {
      name: 'Morning <b>quiz</b>',
      expression: '0 6 * * *',
      timezone: 'Europe/Stockholm',
      task_type: 'noop',
    });
    const ticking = await api('POST', '/api/schedules', {
      name: 'Every 2 s',
      expression: 'every 2s',
      task_type: 'noop',
      overlap: 'allow',
    });
    await withPage(browser, 'schedules page', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, token);
      await page.goto(`${server.baseUrl}/schedules`);
      const dailyRow = page.locator(`tr[data-schedule-id="${daily.id}"]`);
      await dailyRow.waitFor();
      // The name is text, never markup.
      assert.equal(await dailyRow.locator('.schedule-name').textContent(), 'Morning <b>quiz</b>');
      assert.notEqual((await dailyRow.locator('.schedule-next').textContent())?.trim(), '—');
      assert.equal((await dailyRow.locator('.schedule-last').textContent())?.trim(), '—');

      // The scheduler fires the 2-second schedule; the page shows the run without a reload.
      const tickRow = page.locator(`tr[data-schedule-id="${ticking.id}"]`);
      await tickRow.locator('.schedule-last .badge').waitFor({ timeout: 15_000 });

      await dailyRow.getByRole('button', { name: 'Pause' }).click();
      await dailyRow.locator('.schedule-state', { hasText: 'Paused' }).waitFor();
      assert.equal((await dailyRow.locator('.schedule-next').textContent())?.trim(), '—');
      assert.equal((await api('GET', `/api/schedules/${daily.id}`)).paused, true);

      await dailyRow.getByRole('button', { name: 'Run now' }).click();
      await dailyRow.locator('.schedule-last .badge').waitFor();
      const runs = (await api('GET', `/api/schedules/${daily.id}`)).last_runs;
      assert.equal(runs[0].kind, 'manual');

      await dailyRow.getByRole('button', { name: 'Resume' }).click();
      await dailyRow.locator('.schedule-state', { hasText: 'Active' }).waitFor();
      assert.equal((await api('GET', `/api/schedules/${daily.id}`)).paused, false);
      assert.deepEqual(watched.dialogs, []);
      assert.deepEqual(watched.problems, []);
    });
  });
});
