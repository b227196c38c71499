/**
 * @file The pages end to end: Debian's Chromium (playwright-core) against the real `task-http`
 * binary with the offline AI provider. Login and logout, a generation followed to its
 * questions, the superuser dashboard live with cancel and bulk actions, inert rendering of
 * hostile strings, and the 403 for non-superusers.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { createClient } from '../../crates/task-http/assets/client/api.js';
import { createTaskService } from '../../crates/task-http/assets/client/taskService.js';
import { launchBrowser, logIn, recordProgress, recordedProgress, withPage } from './lib/browser.js';
import { startServer } from './lib/server.js';

/** A string that runs script wherever it is parsed as markup. */
const XSS = '<img src=x onerror=alert(1)>';

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
const tokens = { alice: '', bob: '', admin: '' };
/** @type {Record<keyof typeof tokens, import('../../crates/task-http/assets/client/index.js').TasklaneClient>} */
const api = /** @type {any} */ ({});

before(async () => {
  // Slow enough offline generation that the progress bar visibly passes through its steps.
  [server, browser] = await Promise.all([startServer({ env: { TASKLANE_OFFLINE_DELAY_MS: '400' } }), launchBrowser()]);
  tokens.alice = await server.addUser('alice@tasklane.test');
  tokens.bob = await server.addUser('bob@tasklane.test');
  tokens.admin = await server.addUser('admin@tasklane.test', { superuser: true });
  for (const name of /** @type {const} */ (['alice', 'bob', 'admin'])) {
    api[name] = createClient({ baseUrl: server.baseUrl, token: tokens[name] });
  }
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

describe('login and logout', () => {
  it('sends visitors without a session to /login', async () => {
    await withPage(browser, 'anonymous redirect', async (watched) => {
      await watched.page.goto(`${server.baseUrl}/tasks`);
      assert.equal(new URL(watched.page.url()).pathname, '/login');
      await watched.page.goto(`${server.baseUrl}/superuser/tasks`);
      assert.equal(new URL(watched.page.url()).pathname, '/login');
      assertClean(watched);
    });
  });

  it('shows the server’s error for a wrong token', async () => {
    await withPage(
      browser,
      'login error',
      async (watched) => {
        const { page } = watched;
        await page.goto(`${server.baseUrl}/login`);
        await page.getByLabel('API token', { exact: true }).fill('tl_wrong');
        await page.getByRole('button', { name: 'Log in' }).click();
        const alert = page.getByRole('alert');
        await alert.waitFor();
        assert.ok((await alert.textContent())?.trim(), 'the error message is shown');
        assert.equal(new URL(page.url()).pathname, '/login');
        assert.equal(await page.getByLabel('API token', { exact: true }).getAttribute('aria-invalid'), 'true');
        assertClean(watched);
      },
      { allowProblems: /status of 401/ },
    );
  });

  it('logs in with a token and out with the button', async () => {
    await withPage(browser, 'login logout', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, tokens.alice);
      await page.getByText('alice@tasklane.test').waitFor();
      // The header shows the limits `GET /api/me` reports (the binary's defaults here).
      await page.getByText('Limits: 600/min (burst 100), 100 queued').waitFor();
      assert.equal(await page.getByRole('link', { name: 'All tasks' }).isVisible(), false, 'no superuser link for a user');
      await page.getByRole('button', { name: 'Log out' }).click();
      await page.waitForURL(`${server.baseUrl}/login`);
      await page.goto(`${server.baseUrl}/tasks`);
      assert.equal(new URL(page.url()).pathname, '/login', 'the session is gone');
      assertClean(watched);
    });
  });
});

describe('/tasks', () => {
  it('generates 10 questions with a live progress bar, then lists them', async () => {
    await withPage(browser, 'generate questions', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, tokens.alice);
      await page.getByLabel('Amount', { exact: true }).fill('10');
      await page.getByLabel('Category', { exact: true }).fill('Historia');
      await page.getByLabel('Difficulty', { exact: true }).selectOption('easy');
      await page.getByLabel('Provider', { exact: true }).selectOption('offline');
      await recordProgress(page, '#current-progress');
      // The result heading's texts: "N questions so far" while questions arrive, then the summary.
      await page.evaluate(() => {
        const heading = /** @type {HTMLElement} */ (document.querySelector('#current-result-heading'));
        const texts = /** @type {string[]} */ ([]);
        /** @type {any} */ (window).__headings = texts;
        new MutationObserver(() => texts.push(heading.textContent || '')).observe(heading, {
          childList: true,
          characterData: true,
          subtree: true,
        });
      });
      await page.getByRole('button', { name: 'Generate' }).click();

      const bar = page.getByRole('progressbar', { name: 'Generation' });
      await bar.waitFor();
      await page.locator('#current-status', { hasText: 'completed' }).waitFor({ timeout: 60_000 });
      assert.equal(await bar.getAttribute('aria-valuenow'), '100');
      const headings = /** @type {string[]} */ (await page.evaluate(() => /** @type {any} */ (window).__headings));
      const soFar = headings.filter((text) => / so far$/.test(text));
      assert.deepEqual(soFar, ['1 question so far', ...[2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => `${n} questions so far`)], `questions appeared one by one: ${headings}`);
      const values = await recordedProgress(page);
      assert.ok(values.some((v) => v > 0 && v < 100), `the bar moved through intermediate values: ${values}`);
      assert.deepEqual(values, [...values].sort((a, b) => a - b), `the bar never went back: ${values}`);

      const questions = page.locator('#question-list > li.question');
      assert.equal(await questions.count(), 10);
      for (let i = 0; i < 10; i += 1) {
        const question = questions.nth(i);
        assert.ok((await question.locator('.question-text .text').textContent())?.trim(), `question ${i + 1} has text`);
        assert.equal(await question.locator('.option').count(), 4, `question ${i + 1} has four options`);
        assert.equal(await question.locator('.option.correct').count(), 1, `question ${i + 1} marks one correct option`);
        assert.ok((await question.locator('.explanation').textContent())?.trim(), `question ${i + 1} explains`);
        assert.ok((await question.locator('.emoji').textContent())?.trim(), `question ${i + 1} has an emoji`);
      }
      assert.match((await page.locator('#current-result-heading').textContent()) || '', /^10 questions generated by offline/);
      assert.equal(await page.locator('#current-status').textContent(), 'completed');

      // The task list and a toast report the finished task.
      await page.getByRole('status').getByText(/Finished: 10 frågor om Historia/).waitFor();
      const row = page.locator('#task-rows tr', { hasText: '10 frågor om Historia' });
      await row.locator('.badge', { hasText: 'completed' }).waitFor();
      assertClean(watched);
    });
  });

  it('shows the error view when a generation fails', async () => {
    await withPage(browser, 'generation error', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, tokens.alice);
      // No OpenAI key is set for the server: the task is created and fails with the known message.
      await page.getByLabel('Provider', { exact: true }).selectOption('openai');
      await page.getByRole('button', { name: 'Generate' }).click();
      const error = page.locator('#current-error');
      await error.waitFor({ timeout: 60_000 });
      assert.equal(await page.locator('#current-error-message').textContent(), 'API key not configured for provider: openai');
      assert.equal(await page.locator('#current-status').textContent(), 'failed');
      assert.ok(await page.getByRole('button', { name: 'Retry' }).isVisible());
      assertClean(watched);
    });
  });

  it('renders hostile task labels and questions as text', async () => {
    await withPage(browser, 'xss on tasks', async (watched) => {
      const { page } = watched;
      const labelled = await api.alice.createTask({ task_type: 'noop', label: XSS, description: XSS });
      await createTaskService(api.alice).waitForCompletion(labelled.id);
      await logIn(page, server.baseUrl, tokens.alice);
      await page.getByLabel('Category', { exact: true }).fill(XSS);
      await page.getByLabel('Amount', { exact: true }).fill('3');
      await page.getByRole('button', { name: 'Generate' }).click();
      // Questions show while they arrive; the final list is the completed result's.
      await page.locator('#current-status', { hasText: 'completed' }).waitFor({ timeout: 60_000 });

      // The offline provider names an unknown category in its questions.
      const texts = await page.locator('#question-list .question-text .text').allTextContents();
      assert.equal(texts.length, 3);
      assert.ok(texts.every((text) => text.includes(XSS)), `the question shows the markup as text: ${texts[0]}`);
      await page.locator('#task-rows .task-name', { hasText: XSS }).first().waitFor();
      assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element was created from the string');
      assertClean(watched);
    });
  });

  it('lists a task waiting for its parent as “waiting for 1 task”, live', async () => {
    await withPage(browser, 'waiting task', async (watched) => {
      const { page } = watched;
      const parent = await api.alice.createTask({ task_type: 'noop', label: 'The parent', run_at: Date.now() + 3_600_000 });
      const child = await api.alice.createTask({ task_type: 'noop', label: 'The child', depends_on: [parent.id] });
      assert.equal(child.status, 'waiting');
      await logIn(page, server.baseUrl, tokens.alice);
      const row = page.locator('#task-rows tr', { hasText: 'The child' });
      await row.locator('.badge', { hasText: 'waiting' }).waitFor();
      assert.equal(await row.locator('.task-waiting').textContent(), 'waiting for 1 task');

      // Cancelling the parent cancels the child, and the row follows.
      await api.alice.cancelTask(parent.id);
      await row.locator('.badge', { hasText: 'cancelled' }).waitFor();
      assert.equal(await row.locator('.task-waiting').textContent(), '');
      assertClean(watched);
    });
  });
});

describe('/superuser/tasks', () => {
  it('is refused to a normal user with 403', async () => {
    await withPage(
      browser,
      'superuser forbidden',
      async (watched) => {
        const { page } = watched;
        await logIn(page, server.baseUrl, tokens.bob);
        const response = await page.goto(`${server.baseUrl}/superuser/tasks`);
        assert.equal(response?.status(), 403);
      },
      { allowProblems: /status of 403/ },
    );
  });

  it('shows a running generation’s questions so far in its details', async () => {
    // A slow model of its own: three seconds per question.
    const slow = await startServer({ env: { TASKLANE_OFFLINE_DELAY_MS: '30000' } });
    try {
      const adminToken = await slow.addUser('admin@tasklane.test', { superuser: true });
      const bob = createClient({ baseUrl: slow.baseUrl, token: await slow.addUser('bob@tasklane.test') });
      await withPage(browser, 'superuser partial output', async (watched) => {
        const { page } = watched;
        await logIn(page, slow.baseUrl, adminToken);
        await page.goto(`${slow.baseUrl}/superuser/tasks`);
        await page.getByText('● Live').waitFor();
        const params = { amount: 10, category: 'Historia', ageGroup: 'adults', difficulty: 'easy', provider: 'offline' };
        const { taskId } = /** @type {any} */ (await bob.startGeneration(params));
        const row = page.locator(`tr[data-task-id="${taskId}"]`);
        await row.locator('.badge', { hasText: 'processing' }).waitFor();
        await row.locator('.row-toggle').click();
        const details = page.locator(`#details-${taskId}`);
        await details.getByText('1 question so far').waitFor({ timeout: 20_000 });
        await details.getByText('2 questions so far').waitFor({ timeout: 20_000 });
        assert.equal(await details.locator('.question-list > li.question').count(), 2);
        assert.ok((await details.locator('.question-list .question-text .text').first().textContent())?.trim());
        assert.equal((await bob.getTask(taskId)).status, 'processing', 'the questions showed while it ran');
        await bob.cancelTask(taskId);
        assertClean(watched);
      });
    } finally {
      await slow.stop();
    }
  });

  it('shows another user’s running task live and cancels it', async () => {
    await withPage(browser, 'superuser live cancel', async (watched) => {
      const { page } = watched;
      await logIn(page, server.baseUrl, tokens.admin);
      await page.getByRole('link', { name: 'All tasks' }).click();
      await page.waitForURL(`${server.baseUrl}/superuser/tasks`);
      await page.getByText('● Live').waitFor();

      const task = await api.bob.createTask({ task_type: 'sleep', params: { ms: 120_000, steps: 1000 }, label: 'bob’s long job' });
      const row = page.locator(`tr[data-task-id="${task.id}"]`);
      await row.waitFor();
      assert.equal(await row.locator('td.user').textContent(), 'bob@tasklane.test');
      const bar = row.getByRole('progressbar');
      await row.locator('.badge', { hasText: 'processing' }).waitFor();
      await recordProgress(page, `tr[data-task-id="${task.id}"] [role="progressbar"]`);
      await page.waitForFunction(() => {
        const values = /** @type {number[]} */ (/** @type {any} */ (window).__progressValues);
        return values.length >= 3 && values[values.length - 1] > values[0];
      });
      const duration = row.locator('td.duration');
      const before = await duration.textContent();
      await page.waitForFunction(
        ({ id, text }) => document.querySelector(`tr[data-task-id="${id}"] td.duration`)?.textContent !== text,
        { id: task.id, text: before },
      );
      // The counters come from the server, which counts again shortly after a change.
      await page.waitForFunction(
        () => Number(document.querySelector('.count[data-status="processing"] .count-number')?.textContent?.replace(/,/g, '')) >= 1,
      );

      // Details expand under the row.
      await row.getByRole('button', { name: 'bob’s long job', exact: true }).click();
      assert.equal(await row.getByRole('button', { name: 'bob’s long job', exact: true }).getAttribute('aria-expanded'), 'true');
      const details = page.locator(`#details-${task.id}`);
      await details.getByText('"steps": 1000').waitFor();

      await row.getByRole('button', { name: 'Cancel bob’s long job' }).click();
      await row.locator('.badge', { hasText: 'cancelled' }).waitFor();
      assert.equal((await api.bob.getTask(task.id)).status, 'cancelled');
      assert.ok(Number(await bar.getAttribute('aria-valuenow')) < 100);

      // Retry puts it back to work, live.
      await row.getByRole('button', { name: 'Retry bob’s long job' }).click();
      await row.locator('.badge', { hasText: /pending|processing/ }).waitFor();
      assert.ok(['pending', 'processing'].includes((await api.bob.getTask(task.id)).status));
      await row.getByRole('button', { name: 'Cancel bob’s long job' }).waitFor();
      await api.bob.cancelTask(task.id);
      assertClean(watched);
    });
  });

  it('filters, searches, and cancels a selection in bulk', async () => {
    await withPage(browser, 'superuser bulk', async (watched) => {
      const { page } = watched;
      const long = { task_type: 'sleep', params: { ms: 120_000, steps: 100 } };
      const first = await api.alice.createTask({ ...long, label: 'bulk one' });
      const second = await api.bob.createTask({ ...long, label: 'bulk two' });
      const spared = await api.bob.createTask({ ...long, label: 'left alone' });
      await logIn(page, server.baseUrl, tokens.admin);
      await page.goto(`${server.baseUrl}/superuser/tasks`);
      for (const task of [first, second, spared]) await page.locator(`tr[data-task-id="${task.id}"]`).waitFor();

      // The user filter runs on the server: any user may be named, not only those on the page.
      await page.getByLabel('User', { exact: true }).fill('bob@tasklane.test');
      await page.waitForFunction(() => {
        const users = [...document.querySelectorAll('#task-rows tr.task-row td.user')].map((cell) => cell.textContent);
        return users.length >= 2 && users.every((user) => user === 'bob@tasklane.test');
      });
      await page.getByLabel('User', { exact: true }).fill('');

      await page.getByLabel('Search', { exact: true }).fill('bulk');
      await page.waitForFunction(() => document.querySelectorAll('#task-rows tr.task-row').length === 2);
      await page.getByLabel('Select all shown tasks', { exact: true }).check();
      assert.equal(await page.locator('#selection-count').textContent(), '2 selected');
      await page.getByRole('button', { name: 'Cancel selected' }).click();
      await page.locator('#bulk-result', { hasText: '2 of 2 cancelled' }).waitFor();
      for (const task of [first, second]) {
        await page.locator(`tr[data-task-id="${task.id}"] .badge`, { hasText: 'cancelled' }).waitFor();
      }
      assert.equal((await api.bob.getTask(spared.id)).status, 'processing');
      await api.bob.cancelTask(spared.id);

      // The same two, retried in bulk.
      await page.getByLabel('Select all shown tasks', { exact: true }).check();
      await page.getByRole('button', { name: 'Retry selected' }).click();
      await page.locator('#bulk-result', { hasText: '2 of 2 retried' }).waitFor();
      for (const task of [first, second]) {
        await page.locator(`tr[data-task-id="${task.id}"] .badge`, { hasText: /pending|processing/ }).waitFor();
      }
      await api.admin.bulk('cancel', [first.id, second.id]);
      for (const task of [first, second]) {
        await page.locator(`tr[data-task-id="${task.id}"] .badge`, { hasText: 'cancelled' }).waitFor();
      }

      await page.getByLabel('Search', { exact: true }).fill('');
      await page.getByLabel('Status', { exact: true }).selectOption('cancelled');
      await page.waitForFunction(() => {
        const statuses = [...document.querySelectorAll('#task-rows tr.task-row .badge')].map((badge) => badge.textContent);
        return statuses.length >= 2 && statuses.every((status) => status === 'cancelled');
      });
      assert.equal(await page.locator('.count[data-status="cancelled"]').getAttribute('aria-pressed'), 'true');
      assertClean(watched);
    });
  });

  it('renders hostile strings in rows and details as text', async () => {
    await withPage(browser, 'xss on superuser', async (watched) => {
      const { page } = watched;
      const task = await api.bob.createTask({ task_type: 'sleep', params: { ms: -1, note: XSS }, label: XSS, description: XSS });
      await createTaskService(api.bob).waitForCompletion(task.id).catch(() => {});
      await logIn(page, server.baseUrl, tokens.admin);
      await page.goto(`${server.baseUrl}/superuser/tasks`);
      const row = page.locator(`tr[data-task-id="${task.id}"]`);
      await row.waitFor();
      assert.equal(await row.locator('.task-name').textContent(), XSS);
      await row.getByRole('button', { name: XSS, exact: true }).click();
      await page.locator(`#details-${task.id}`).getByText(XSS).first().waitFor();
      await page.getByLabel('Search', { exact: true }).fill('onerror');
      await page.waitForFunction(() => document.querySelectorAll('#task-rows tr.task-row').length >= 1);
      assert.equal(await page.locator('img[src="x"]').count(), 0, 'no element was created from the string');
      assertClean(watched);
    });
  });
});
