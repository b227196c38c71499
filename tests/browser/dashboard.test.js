/**
 * @file The dashboards on a big history, in Chromium against the real `task-http` binary: the
 * superuser page over 100,000 finished tasks (seeded straight into SQLite before the server
 * starts) shows the server's counts, finds an old failed task by search and by status, pages
 * through the whole history, and still shows new tasks live; the task page starts a generation
 * with "validate and add emojis afterwards" and draws the workflow's graph with each step's
 * live status.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { createClient } from '../../crates/task-http/assets/client/api.js';
import { launchBrowser, logIn, withPage } from './lib/browser.js';
import { startServer } from './lib/server.js';

const run = promisify(execFile);

/** Tasks seeded into the database before the server starts. */
const SEEDED = 100_000;
/** Seeded tasks numbered `i % 500 == 7` failed; so did the needle. */
const SEEDED_FAILED = 200 + 1;
/** The oldest failed task, far below the newest page. */
const NEEDLE_LABEL = 'the forgotten failure';

/**
 * Fills the database with `SEEDED` finished tasks of seven users in one SQL statement (the
 * store's own table, as `task-http` migrated it): a second, not 100,000 HTTP calls.
 * @param {string} db
 */
async function seed(db) {
  const sql = `
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${SEEDED})
    INSERT INTO background_tasks (id, user_id, task_type, status, label, progress, total,
        created_at, updated_at, completed_at, error, params, attempt, max_attempts, run_at,
        version, started_at)
    SELECT printf('task_%d_%020x', 1600000000000 + i * 10, i),
        'seed-' || (i % 7) || '@tasklane.test',
        CASE WHEN i % 10 = 0 THEN 'sleep' ELSE 'noop' END,
        CASE WHEN i % 500 = 7 OR i = 3 THEN 'failed' ELSE 'completed' END,
        CASE WHEN i = 3 THEN '${NEEDLE_LABEL}' ELSE 'seeded task ' || i END,
        100, 100,
        1600000000000 + i * 10, 1600000000000 + i * 10 + 5, 1600000000000 + i * 10 + 5,
        CASE WHEN i % 500 = 7 OR i = 3 THEN 'seeded failure' END,
        '{}', 1, 3, 1600000000000 + i * 10, 3, 1600000000000 + i * 10 + 1
    FROM n;`;
  await run('sqlite3', [db, sql]);
}

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
let adminToken = '';
/** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
let bob;

before(async () => {
  // The offline provider slow enough (a second a step) that a workflow's steps are seen running
  // even when the machine is busy and the page draws late.
  [server, browser] = await Promise.all([
    startServer({ seed, env: { TASKLANE_OFFLINE_DELAY_MS: '1000' } }),
    launchBrowser(),
  ]);
  adminToken = await server.addUser('admin@tasklane.test', { superuser: true });
  bob = createClient({ baseUrl: server.baseUrl, token: await server.addUser('bob@tasklane.test') });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Asserts a page ran without dialogs, script errors or CSP violations. */
function assertClean(/** @type {import('./lib/browser.js').WatchedPage} */ { dialogs, problems }) {
  assert.deepEqual(dialogs, [], 'no dialog may open');
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
}

/**
 * The number a counter shows.
 * @param {import('playwright-core').Page} page
 * @param {string} selector
 */
async function counter(page, selector) {
  return Number(((await page.locator(selector).textContent()) || '').replace(/,/g, ''));
}

/** @param {import('playwright-core').Page} page */
const rowCount = (page) => page.locator('#task-rows tr.task-row').count();

describe('/superuser/tasks on 100,000 tasks', () => {
  it('counts, filters, searches and pages on the server, and stays live', async () => {
    await withPage(browser, 'big history', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, adminToken);
      await page.goto(`${server.baseUrl}/superuser/tasks`);
      await page.getByText('● Live').waitFor();

      // The counters are every task's, not the page's.
      await page.locator('[data-count="total"]', { hasText: '100,000' }).waitFor();
      assert.equal(await counter(page, '.count[data-status="failed"] .count-number'), SEEDED_FAILED);
      assert.equal(await counter(page, '.count[data-status="completed"] .count-number'), SEEDED - SEEDED_FAILED);
      assert.equal(await rowCount(page), 100, 'one page');
      await page.locator('#page-info', { hasText: 'Page 1 · tasks 1–100 of 100,000' }).waitFor();
      // The type filter offers every type the server counted.
      const types = await page.locator('#filter-type option').allTextContents();
      assert.ok(types.includes('noop') && types.includes('sleep'), String(types));

      // The oldest failed task, 100,000 tasks down, is found by search…
      await page.getByLabel('Search', { exact: true }).fill('forgotten failure');
      await page.waitForFunction(() => document.querySelectorAll('#task-rows tr.task-row').length === 1);
      assert.equal(await page.locator('#task-rows .task-name').textContent(), NEEDLE_LABEL);
      assert.equal(await page.locator('#task-rows .badge').textContent(), 'failed');
      await page.getByLabel('Search', { exact: true }).fill('');

      // …and by its status, paging through every failed task to the last page.
      await page.locator('.count[data-status="failed"]').click();
      await page.locator('#page-info', { hasText: 'Page 1 · tasks 1–100 of 201' }).waitFor();
      const badges = await page.locator('#task-rows .badge').allTextContents();
      assert.equal(badges.length, 100);
      assert.ok(badges.every((status) => status === 'failed'), String(badges));
      await page.getByRole('button', { name: 'Older →' }).click();
      await page.locator('#page-info', { hasText: 'Page 2 · tasks 101–200 of 201' }).waitFor();
      await page.getByRole('button', { name: 'Older →' }).click();
      await page.locator('#page-info', { hasText: 'Page 3 · tasks 201–201 of 201' }).waitFor();
      assert.equal(await page.locator('#task-rows .task-name').textContent(), NEEDLE_LABEL);
      assert.equal(await page.getByRole('button', { name: 'Older →' }).isDisabled(), true, 'the last page');
      await page.getByRole('button', { name: '← Newer' }).click();
      await page.locator('#page-info', { hasText: 'Page 2 · tasks 101–200 of 201' }).waitFor();

      // A user's tasks, filtered on the server.
      await page.locator('.count[data-status="failed"]').click();
      await page.getByLabel('User', { exact: true }).fill('seed-3@tasklane.test');
      await page.waitForFunction(() => {
        const users = [...document.querySelectorAll('#task-rows tr.task-row td.user')].map((cell) => cell.textContent);
        return users.length === 100 && users.every((user) => user === 'seed-3@tasklane.test');
      });
      await page.getByLabel('User', { exact: true }).fill('');
      await page.locator('#page-info', { hasText: 'of 100,000' }).waitFor();

      // New tasks still appear live, at the top, and the counters follow.
      const task = await bob.createTask({ task_type: 'sleep', params: { ms: 120_000, steps: 100 }, label: 'fresh on top' });
      const row = page.locator(`tr[data-task-id="${task.id}"]`);
      await row.waitFor();
      assert.equal(await page.locator('#task-rows tr.task-row').first().getAttribute('data-task-id'), task.id);
      await row.locator('.badge', { hasText: 'processing' }).waitFor();
      await page.locator('[data-count="total"]', { hasText: '100,001' }).waitFor();
      await page.waitForFunction(
        () => Number(document.querySelector('.count[data-status="processing"] .count-number')?.textContent) === 1,
      );
      await bob.cancelTask(task.id);
      await row.locator('.badge', { hasText: 'cancelled' }).waitFor();
      await page.waitForFunction(
        () => Number(document.querySelector('.count[data-status="cancelled"] .count-number')?.textContent) === 1,
      );
      assertClean(watched);
    });
  });
});

describe('/tasks: a generation with steps afterwards', () => {
  it('offers "validate and add emojis afterwards" and draws the workflow live', async () => {
    await withPage(browser, 'workflow graph', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, adminToken);
      await page.getByLabel('Amount', { exact: true }).fill('3');
      await page.getByLabel('Afterwards', { exact: true }).selectOption({ label: 'Validate and add emojis' });
      // Every status each node shows is recorded from before the click, so a slow machine that
      // draws the graph late still has the whole story (the graph's nodes come and go with it).
      await page.evaluate(() => {
        /** @type {Record<string, string[]>} */
        const statuses = {};
        const record = () => {
          for (const node of document.querySelectorAll('#workflow-graph g.wf-node')) {
            const key = node.getAttribute('data-key') || '';
            const status = node.getAttribute('data-status') || '';
            const list = (statuses[key] ||= []);
            if (list[list.length - 1] !== status) list.push(status);
          }
        };
        new MutationObserver(record).observe(document.body, {
          attributes: true,
          childList: true,
          subtree: true,
          attributeFilter: ['data-status'],
        });
        /** @type {any} */ (window).__workflowStatuses = statuses;
      });
      await page.getByRole('button', { name: 'Generate' }).click();

      const graph = page.locator('#workflow-graph svg');
      await graph.waitFor();
      const nodes = graph.locator('g.wf-node');
      assert.equal(await nodes.count(), 3);
      assert.deepEqual(
        await nodes.evaluateAll((all) => all.map((node) => node.getAttribute('data-key'))),
        ['generation', 'validation', 'emoji-regeneration'],
      );
      assert.equal(await graph.locator('path.wf-edge').count(), 2);
      // The steps wait while the generation runs, then each runs in turn, all drawn live.
      await page.locator('#workflow-mode', { hasText: 'Finished: completed' }).waitFor({ timeout: 60_000 });
      const statuses = await page.evaluate(() => /** @type {any} */ (window).__workflowStatuses);
      assert.ok(statuses['emoji-regeneration'].includes('waiting'), JSON.stringify(statuses));
      for (const key of ['generation', 'validation', 'emoji-regeneration']) {
        assert.equal(statuses[key].at(-1), 'completed', JSON.stringify(statuses));
      }
      assert.ok(
        statuses.validation.includes('pending') || statuses.validation.includes('processing'),
        `the validation was seen between waiting and completed: ${JSON.stringify(statuses)}`,
      );
      assert.equal(
        await graph.locator('g.wf-node[data-key="validation"]').getAttribute('aria-label'),
        'validation: completed, 100%',
      );
      assert.equal(await page.locator('#workflow-summary').textContent(), '3 completed');
      assertClean(watched);
    });
  });
});
