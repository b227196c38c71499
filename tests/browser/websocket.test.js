/**
 * @file Live updates over one WebSocket in Chromium: the dashboards (`/tasks` and
 * `/superuser/tasks`) carry every subscription of the page over a single `/api/ws` connection and
 * open no SSE stream; when the upgrade fails, the same pages fall back to SSE by themselves and
 * still update live.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { createClient } from '../../crates/task-http/assets/client/api.js';
import { launchBrowser, logIn, recordProgress, recordedProgress, withPage } from './lib/browser.js';
import { startServer } from './lib/server.js';

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('playwright-core').Browser} */
let browser;
const tokens = { alice: '', admin: '' };

before(async () => {
  [server, browser] = await Promise.all([startServer({ env: { TASKLANE_OFFLINE_DELAY_MS: '300' } }), launchBrowser()]);
  tokens.alice = await server.addUser('alice@tasklane.test');
  tokens.admin = await server.addUser('admin@tasklane.test', { superuser: true });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/**
 * Records the page's WebSockets (with the messages each received) and its SSE requests.
 * @param {import('playwright-core').Page} page
 */
function watchTransports(page) {
  /** @type {{ url: string, received: string[], refused: boolean }[]} */
  const sockets = [];
  /** @type {string[]} */
  const sse = [];
  page.on('websocket', (socket) => {
    const entry = { url: socket.url(), received: /** @type {string[]} */ ([]), refused: false };
    sockets.push(entry);
    socket.on('framereceived', (frame) => entry.received.push(String(frame.payload)));
    socket.on('socketerror', () => {
      entry.refused = true;
    });
  });
  page.on('request', (request) => {
    const { pathname } = new URL(request.url());
    if (pathname.startsWith('/api/subscribeTo')) sse.push(pathname);
  });
  return { sockets, sse };
}

/** Makes the page's WebSockets ask for a path the server does not have, so every upgrade fails. */
const BREAK_UPGRADES = () => {
  const Real = window.WebSocket;
  /** @type {any} */ (window).WebSocket = class extends Real {
    /** @param {string | URL} url @param {string | string[]} [protocols] */
    constructor(url, protocols) {
      super(String(url).replace('/api/ws', '/api/no-websocket-here'), protocols);
    }
  };
};

/**
 * Generates questions on `/tasks` and waits for the result, with the bar moving live.
 * @param {import('playwright-core').Page} page
 * @param {string} category unique per test, so the list row is this test's
 */
async function generate(page, category) {
  await page.getByLabel('Amount', { exact: true }).fill('5');
  await page.getByLabel('Category', { exact: true }).fill(category);
  await page.getByLabel('Provider', { exact: true }).selectOption('offline');
  await recordProgress(page, '#current-progress');
  await page.getByRole('button', { name: 'Generate' }).click();
  await page.locator('#current-result').waitFor({ timeout: 60_000 });
  const values = await recordedProgress(page);
  assert.ok(values.some((v) => v > 0 && v < 100), `the bar moved through intermediate values: ${values}`);
  assert.deepEqual(values, [...values].sort((a, b) => a - b), `the bar never went back: ${values}`);
  const row = page.locator('#task-rows tr', { hasText: `5 frågor om ${category}` });
  await row.locator('.badge', { hasText: 'completed' }).waitFor();
}

describe('live updates over WebSocket', () => {
  it('/tasks follows a generation (with its questions as they arrive) and the list over one WebSocket', async () => {
    await withPage(browser, 'websocket tasks', async (watched) => {
      const { page } = watched;
      const seen = watchTransports(page);
      await logIn(page, server.baseUrl, tokens.alice);
      await generate(page, 'Geografi');
      const live = seen.sockets.filter((socket) => new URL(socket.url).pathname === '/api/ws');
      assert.equal(live.length, 1, `one WebSocket for the page: ${JSON.stringify(seen.sockets.map((s) => s.url))}`);
      assert.deepEqual(seen.sse, [], 'no SSE stream was opened');
      const messages = live[0].received.map((text) => JSON.parse(text));
      const subscribed = messages.filter((message) => message.type === 'subscribed');
      assert.ok(subscribed.length >= 2, 'the list and the generation share the socket');
      assert.ok(
        messages.some((message) => message.type === 'event' && message.event.type === 'complete'),
        'the completion arrived over the socket',
      );
      const partials = messages.filter((message) => message.type === 'event' && message.event.type === 'partial');
      assert.deepEqual(
        partials.map((message) => message.event.index),
        [0, 1, 2, 3, 4],
        'each question arrived over the socket as a partial, in order',
      );
      assert.ok(
        partials.every((message, n) => message.seq === n + 1 && typeof message.version === 'number'),
        'partials carry their position (version and seq) for resuming',
      );
      assert.deepEqual(watched.problems, []);
    });
  });

  it('/superuser/tasks shows another user’s task live over the WebSocket', async () => {
    await withPage(browser, 'websocket superuser', async (watched) => {
      const { page } = watched;
      const seen = watchTransports(page);
      await logIn(page, server.baseUrl, tokens.admin);
      await page.goto(`${server.baseUrl}/superuser/tasks`);
      await page.getByText('● Live').waitFor();
      const alice = createClient({ baseUrl: server.baseUrl, token: tokens.alice });
      const task = await alice.createTask({ task_type: 'sleep', params: { ms: 120_000, steps: 1000 }, label: 'alice’s long job' });
      const row = page.locator(`tr[data-task-id="${task.id}"]`);
      await row.locator('.badge', { hasText: 'processing' }).waitFor();
      await alice.cancelTask(task.id);
      await row.locator('.badge', { hasText: 'cancelled' }).waitFor();
      assert.deepEqual(seen.sse, [], 'no SSE stream was opened');
      assert.ok(seen.sockets.length >= 1, 'the dashboard uses the WebSocket');
      assert.deepEqual(watched.problems, []);
    });
  });

  it('falls back to SSE when the upgrade fails, and stays live', async () => {
    await withPage(
      browser,
      'websocket fallback',
      async (watched) => {
        const { page } = watched;
        await page.addInitScript(BREAK_UPGRADES);
        const seen = watchTransports(page);
        await logIn(page, server.baseUrl, tokens.alice);
        await generate(page, 'Astronomi');
        assert.ok(seen.sockets.length >= 1, 'the page tried a WebSocket first');
        assert.ok(seen.sse.includes('/api/subscribeToTasks'), `the list moved to SSE: ${seen.sse}`);
        assert.ok(seen.sse.includes('/api/subscribeToTask'), `the generation moved to SSE: ${seen.sse}`);
      },
      // Chromium logs the refused handshake on the console.
      { allowProblems: /WebSocket connection to .* failed/ },
    );
  });
});
