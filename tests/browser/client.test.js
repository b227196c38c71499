/**
 * @file The JS client (`crates/task-http/assets/client/`) against the real `task-http` binary:
 * bearer-token auth, the fetch-based SSE reader, task following, waiting, live lists and the
 * fallback to polling.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';

import { ApiError, createClient } from '../../crates/task-http/assets/client/api.js';
import { createBackgroundTaskService } from '../../crates/task-http/assets/client/backgroundTaskService.js';
import { TaskFailedError, createTaskService } from '../../crates/task-http/assets/client/taskService.js';
import { ALL_POLL_INTERVAL_MS, USER_POLL_INTERVAL_MS } from '../../crates/task-http/assets/client/taskList.js';
import { startServer } from './lib/server.js';
import { Recorder, withTimeout } from './lib/wait.js';

/** @type {import('./lib/server.js').TestServer} */
let server;
/** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
let alice;
/** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
let bob;
/** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
let admin;

before(async () => {
  server = await startServer();
  const client = async (/** @type {string} */ email, superuser = false) =>
    createClient({ baseUrl: server.baseUrl, token: await server.addUser(email, { superuser }) });
  alice = await client('alice@tasklane.test');
  bob = await client('bob@tasklane.test');
  admin = await client('admin@tasklane.test', true);
});

after(async () => {
  await server?.stop();
});

/**
 * A `sleep` task of `ms` milliseconds in `steps` steps.
 * @param {import('../../crates/task-http/assets/client/index.js').TasklaneClient} client
 */
const sleepTask = (client, ms = 300, steps = 3, extra = {}) =>
  client.createTask({ task_type: 'sleep', params: { ms, steps }, label: `sleep ${ms} ms`, ...extra });

describe('api', () => {
  it('says who is signed in', async () => {
    // `limits` are the server's defaults (the binary's flags), alice having none of her own.
    assert.deepEqual(await alice.me(), {
      email: 'alice@tasklane.test', role: 'user', auth: 'bearer',
      limits: { rate: '600/min', burst: 100, max_queued: 100, max_running: null },
    });
    assert.equal((await admin.me()).role, 'superuser');
  });

  it('rejects with ApiError carrying the status and the server message', async () => {
    const stranger = createClient({ baseUrl: server.baseUrl, token: 'tl_not_a_real_token' });
    const error = await stranger.me().then(() => null, (e) => e);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 401);
    assert.ok(error.message.length > 0 && !error.message.startsWith('HTTP'), error.message);

    const invalid = await alice.startGeneration(/** @type {any} */ ({ amount: 0, category: 'x', ageGroup: 'adults', difficulty: 'easy', provider: 'offline' })).then(
      () => null,
      (e) => e,
    );
    assert.equal(invalid.status, 400);
    assert.match(invalid.message, /amount/);
  });

  it('creates, reads, cancels and retries tasks, alone and in bulk', async () => {
    const task = await sleepTask(alice, 60_000, 600);
    assert.equal(task.task_type, 'sleep');
    assert.equal((await alice.getTask(task.id)).id, task.id);
    const cancelled = await alice.cancelTask(task.id);
    assert.ok(cancelled.status === 'cancelled' || cancelled.cancel_requested, JSON.stringify(cancelled));
    await createTaskService(alice).waitForCompletion(task.id).catch(() => {});
    assert.equal((await alice.getTask(task.id)).status, 'cancelled');
    const retried = await alice.retryTask(task.id);
    assert.equal(retried.status, 'pending');

    const other = await sleepTask(alice, 60_000, 600);
    const outcome = await alice.bulk('cancel', [task.id, other.id, 'task_1_doesnotexist']);
    assert.equal(outcome.action, 'cancel');
    assert.deepEqual(
      outcome.results.map((result) => [result.taskId, result.ok]),
      [
        [task.id, true],
        [other.id, true],
        ['task_1_doesnotexist', false],
      ],
    );
    assert.equal(outcome.results[2].status, 404);
  });

  it('hides other users’ tasks', async () => {
    const task = await sleepTask(bob, 10);
    const error = await alice.getTask(task.id).then(() => null, (e) => e);
    assert.equal(error?.status, 404);
  });
});

describe('subscribeToTask', () => {
  it('reports every step, then completion, over the fetch-based reader', async () => {
    const task = await sleepTask(alice, 400, 4);
    const service = createBackgroundTaskService(alice);
    const updates = new Recorder();
    const finished = new Promise((resolve, reject) => {
      service.subscribeToTask(task.id, updates.push, resolve, (message) => reject(new Error(message)));
    });
    const done = /** @type {any} */ (await withTimeout(finished, 15_000, () => 'no complete event'));
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { slept_ms: 400, steps: 4 });
    const progress = updates.values.map((t) => /** @type {any} */ (t).progress);
    assert.ok(progress.length >= 2, `only ${progress.length} updates`);
    assert.deepEqual(progress, [...progress].sort((a, b) => a - b), 'progress never goes back');
    assert.ok(updates.values.some((t) => /** @type {any} */ (t).description === 'Step 2 of 4'));
  });

  it('reports each generated question as a partial, in order, before completion', async () => {
    const params = { amount: 5, category: 'Historia', ageGroup: 'adults', difficulty: 'medium', provider: 'offline' };
    const { taskId } = /** @type {any} */ (await alice.startGeneration(params));
    const service = createBackgroundTaskService(alice);
    /** @type {{ item: any, index: number }[]} */
    const partials = [];
    const finished = new Promise((resolve, reject) => {
      service.subscribeToTask(taskId, null, resolve, (message) => reject(new Error(message)), (item, index) =>
        partials.push({ item, index }),
      );
    });
    const done = /** @type {any} */ (await withTimeout(finished, 15_000, () => 'no complete event'));
    assert.deepEqual(
      partials.map((p) => p.index),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      partials.map((p) => p.item.text),
      done.result.questions.map((/** @type {any} */ q) => q.text),
    );
  });

  it('reports an unknown task as unavailable with the 404', async () => {
    const service = createBackgroundTaskService(alice);
    const [message, details] = await withTimeout(
      new Promise((resolve) => service.subscribeToTask('task_1_doesnotexist', null, null, (...args) => resolve(args))),
      10_000,
      () => 'no error',
    );
    assert.equal(details.type, 'unavailable');
    assert.equal(details.status, 404);
    assert.ok(message.length > 0);
  });

  it('stops calling back after cleanup', async () => {
    const task = await sleepTask(alice, 600, 6);
    const service = createBackgroundTaskService(alice);
    const updates = new Recorder();
    const cleanup = service.subscribeToTask(task.id, updates.push, updates.push, updates.push);
    await updates.until(() => true, 'a first update');
    cleanup();
    const seen = updates.values.length;
    // The task keeps running for a while; its completion must not reach a closed subscription.
    await createTaskService(alice).waitForCompletion(task.id);
    assert.equal(updates.values.length, seen);
  });
});

describe('waitForCompletion', () => {
  it('resolves with the completed task and its result', async () => {
    const task = await alice.createTask({ task_type: 'noop' });
    const done = await createTaskService(alice).waitForCompletion(task.id);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result, { ok: true });
  });

  it('rejects with the task’s error when it fails', async () => {
    const task = await alice.createTask({ task_type: 'sleep', params: { ms: -1 } });
    const error = await createTaskService(alice).waitForCompletion(task.id).then(() => null, (e) => e);
    assert.ok(error instanceof TaskFailedError, String(error));
    assert.equal(error.type, 'error');
    assert.equal(error.taskStatus, 'failed');
    assert.match(error.message, /invalid params\.ms/);
    assert.equal(error.taskId, task.id);
  });

  it('rejects when the task is cancelled', async () => {
    const task = await sleepTask(alice, 60_000, 600);
    const updates = new Recorder();
    // Settled into a value at once: the rejection may come before the test awaits it.
    const outcome = createTaskService(alice)
      .waitForCompletion(task.id, { onUpdate: updates.push })
      .then(() => null, (e) => e);
    await updates.until((t) => /** @type {any} */ (t).status === 'processing', 'the task to start');
    await alice.cancelTask(task.id);
    const error = await outcome;
    assert.ok(error instanceof TaskFailedError, String(error));
    assert.equal(error.taskStatus, 'cancelled');
    assert.ok(error.message.length > 0);
  });

  it('rejects with type "timeout" when monitoring times out', async () => {
    const short = await startServer({ args: ['--monitor-timeout', '300ms'] });
    try {
      const client = createClient({ baseUrl: short.baseUrl, token: await short.addUser('t@tasklane.test') });
      const task = await sleepTask(client, 30_000, 10);
      const error = await createTaskService(client).waitForCompletion(task.id).then(() => null, (e) => e);
      assert.ok(error instanceof TaskFailedError, String(error));
      assert.equal(error.type, 'timeout');
      assert.equal(error.message, 'Task monitoring timeout');
      await client.cancelTask(task.id);
    } finally {
      await short.stop();
    }
  });

  it('stops waiting when its signal aborts', async () => {
    const task = await sleepTask(alice, 60_000, 600);
    const controller = new AbortController();
    const waiting = createTaskService(alice).waitForCompletion(task.id, { signal: controller.signal });
    controller.abort(new Error('user left'));
    await assert.rejects(waiting, /user left/);
    await alice.cancelTask(task.id);
  });
});

describe('fetchUserTasks', () => {
  it('lists one’s own tasks newest first; a superuser may name anyone', async () => {
    const first = await sleepTask(bob, 10);
    const second = await sleepTask(bob, 10);
    const bobs = await createBackgroundTaskService(bob).fetchUserTasks('bob@tasklane.test');
    assert.ok(bobs.every((task) => task.user_id === 'bob@tasklane.test'));
    const ids = bobs.map((task) => task.id);
    assert.ok(ids.indexOf(second.id) < ids.indexOf(first.id), 'newest first');
    const viaAdmin = await createBackgroundTaskService(admin).fetchUserTasks('bob@tasklane.test');
    assert.deepEqual(new Set(viaAdmin.map((t) => t.id)), new Set(ids));
    const error = await createBackgroundTaskService(alice).fetchUserTasks('bob@tasklane.test').then(() => null, (e) => e);
    assert.equal(error?.status, 403);
  });
});

describe('live lists', () => {
  it('subscribeToUserTasks shows a new task and its progress live', async () => {
    const lists = new Recorder();
    const modes = new Recorder();
    const cleanup = createBackgroundTaskService(alice).subscribeToUserTasks('alice@tasklane.test', lists.push, {
      onModeChange: modes.push,
    });
    try {
      await modes.until((mode) => mode === 'live', 'the live stream');
      const task = await sleepTask(alice, 500, 5, { label: 'watched live' });
      const running = await lists.until(
        (list) => list.some((t) => t.id === task.id && t.status === 'processing' && t.progress > 0),
        'the task running',
      );
      assert.equal(running[0].id, task.id, 'the newest task comes first');
      assert.ok(running.every((t) => t.user_id === 'alice@tasklane.test'));
      await lists.until((list) => list.some((t) => t.id === task.id && t.status === 'completed'), 'the task completed');
      assert.deepEqual(modes.values.filter((m) => m === 'polling'), []);
    } finally {
      cleanup();
    }
  });

  it('subscribeToAllTasks shows another user’s task to a superuser, and deletions', async () => {
    const lists = new Recorder();
    const modes = new Recorder();
    const cleanup = createBackgroundTaskService(admin).subscribeToAllTasks(lists.push, { onModeChange: modes.push });
    try {
      await modes.until((mode) => mode === 'live', 'the live stream');
      const task = await sleepTask(bob, 60_000, 600, { label: 'bob’s long task' });
      await lists.until((list) => list.some((t) => t.id === task.id && t.status === 'processing'), 'bob’s task running');
      await bob.cancelTask(task.id);
      await lists.until((list) => list.some((t) => t.id === task.id && t.status === 'cancelled'), 'bob’s task cancelled');
      const outcome = await admin.bulk('delete', [task.id]);
      assert.ok(outcome.results[0].ok, JSON.stringify(outcome));
      await lists.until((list) => !list.some((t) => t.id === task.id), 'bob’s task deleted');
    } finally {
      cleanup();
    }
  });

  it('falls back to polling when the stream endpoint fails', async () => {
    let streamRequests = 0;
    /** @type {typeof fetch} */
    const brokenStream = async (input, init) => {
      if (String(input).includes('/api/subscribeToTasks')) {
        streamRequests += 1;
        return new Response(JSON.stringify({ error: 'stream unavailable' }), {
          status: 503,
          headers: { 'content-type': 'application/json' },
        });
      }
      return fetch(input, init);
    };
    const client = createClient({ baseUrl: server.baseUrl, token: await server.addUser('carol@tasklane.test'), fetch: brokenStream });
    const lists = new Recorder();
    const modes = new Recorder();
    const cleanup = createBackgroundTaskService(client).subscribeToUserTasks('carol@tasklane.test', lists.push, {
      onModeChange: modes.push,
      pollIntervalMs: 100,
    });
    try {
      await modes.until((mode) => mode === 'polling', 'the switch to polling');
      const task = await sleepTask(client, 10);
      await lists.until((list) => list.some((t) => t.id === task.id && t.status === 'completed'), 'the polled task');
      assert.equal(streamRequests, 1, 'a refused stream is not retried');
    } finally {
      cleanup();
    }
  });

  it('polls every 5 s for a user and every 3 s for all tasks', async () => {
    assert.equal(USER_POLL_INTERVAL_MS, 5000);
    assert.equal(ALL_POLL_INTERVAL_MS, 3000);
    for (const [subscribe, interval] of /** @type {const} */ ([
      ['subscribeToUserTasks', USER_POLL_INTERVAL_MS],
      ['subscribeToAllTasks', ALL_POLL_INTERVAL_MS],
    ])) {
      let listRequests = 0;
      /** @type {typeof fetch} */
      const counting = async (input) => {
        if (String(input).includes('/api/subscribeToTasks')) return new Response('{"error":"gone"}', { status: 404 });
        listRequests += 1;
        return new Response('[]', { status: 200, headers: { 'content-type': 'application/json' } });
      };
      const client = createClient({ baseUrl: 'http://127.0.0.1:9', token: 't', fetch: counting });
      mock.timers.enable({ apis: ['setInterval'] });
      const modes = new Recorder();
      const service = createBackgroundTaskService(client);
      const cleanup =
        subscribe === 'subscribeToUserTasks'
          ? service.subscribeToUserTasks('u', () => {}, { onModeChange: modes.push })
          : service.subscribeToAllTasks(() => {}, { onModeChange: modes.push });
      try {
        await modes.until((mode) => mode === 'polling', 'polling');
        const atSwitch = listRequests;
        mock.timers.tick(interval - 1);
        assert.equal(listRequests, atSwitch, `${subscribe} polled before ${interval} ms`);
        mock.timers.tick(1);
        assert.equal(listRequests, atSwitch + 1, `${subscribe} did not poll at ${interval} ms`);
        mock.timers.tick(interval);
        assert.equal(listRequests, atSwitch + 2);
      } finally {
        cleanup();
        mock.timers.reset();
      }
    }
  });
});
