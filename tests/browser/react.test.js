/**
 * @file The React adapter (`assets/client/react.js`) with React and react-dom from npm: its pure
 * reducer, and the provider and hooks rendered in jsdom against the real `task-http` binary.
 */

import assert from 'node:assert/strict';
import { register } from 'node:module';
import { after, before, describe, it } from 'node:test';

import { JSDOM } from 'jsdom';

import { createClient } from '../../crates/task-http/assets/client/api.js';
import { startServer } from './lib/server.js';
import { Recorder, eventually } from './lib/wait.js';

register('./lib/react-hooks.js', import.meta.url);

const dom = new JSDOM('<!doctype html><html><body><div id="root"></div></body></html>', { url: 'http://localhost/' });
Object.assign(globalThis, { window: dom.window, document: dom.window.document });
if (!globalThis.navigator) Object.assign(globalThis, { navigator: dom.window.navigator });

const React = await import('react');
const { createRoot } = await import('react-dom/client');
const { renderToString } = await import('react-dom/server');
const { BackgroundTaskProvider, MAX_NOTIFICATIONS, initialTaskState, taskReducer, useBackgroundTasks, useTask } = await import(
  '../../crates/task-http/assets/client/react.js'
);

const h = React.createElement;

/**
 * A task as the API serves it, with the fields the reducer reads.
 * @param {string} id
 * @param {string} status
 * @param {number} [version]
 */
const task = (id, status, version = 1) =>
  /** @type {any} */ ({ id, status, version, label: `label ${id}`, task_type: 'sleep', error: status === 'failed' ? 'boom' : null });

describe('taskReducer', () => {
  it('raises a notification only for a task seen running that has now finished', () => {
    let state = taskReducer(initialTaskState, { type: 'tasks', tasks: [task('a', 'completed'), task('b', 'processing')] });
    assert.deepEqual(state.notifications, [], 'a first load of finished tasks notifies nobody');
    state = taskReducer(state, { type: 'tasks', tasks: [task('a', 'completed'), task('b', 'failed', 2), task('c', 'completed')] });
    assert.equal(state.notifications.length, 1, 'c was never seen running');
    const [note] = state.notifications;
    assert.deepEqual(
      { id: note.id, taskId: note.taskId, kind: note.kind, message: note.message },
      { id: 'b:2', taskId: 'b', kind: 'failed', message: 'label b failed: boom' },
    );
    state = taskReducer(state, { type: 'dismiss', id: 'b:2' });
    assert.deepEqual(state.notifications, []);
  });

  it('names completions and cancellations, and keeps at most MAX_NOTIFICATIONS', () => {
    const running = Array.from({ length: MAX_NOTIFICATIONS + 5 }, (_, i) => task(`t${i}`, 'processing'));
    let state = taskReducer(initialTaskState, { type: 'tasks', tasks: running });
    state = taskReducer(state, {
      type: 'tasks',
      tasks: running.map((t, i) => task(t.id, i % 2 ? 'cancelled' : 'completed', 2)),
    });
    assert.equal(state.notifications.length, MAX_NOTIFICATIONS);
    assert.equal(state.notifications.at(-1)?.taskId, `t${MAX_NOTIFICATIONS + 4}`, 'the newest are kept');
    assert.equal(state.notifications.find((n) => n.taskId === 't23')?.message, 'label t23 was cancelled');
    assert.equal(state.notifications.find((n) => n.taskId === 't24')?.message, 'label t24 completed');
  });

  it('records the session, the list mode and errors', () => {
    const user = { email: 'a@b.se', role: /** @type {const} */ ('user'), auth: 'session' };
    let state = taskReducer(initialTaskState, { type: 'error', error: 'offline' });
    state = taskReducer(state, { type: 'session', user });
    assert.equal(state.user, user);
    assert.equal(state.error, null);
    const live = taskReducer(state, { type: 'mode', mode: 'live' });
    assert.equal(live.mode, 'live');
    assert.equal(taskReducer(live, { type: 'mode', mode: 'live' }), live, 'no change, same state');
    assert.equal(initialTaskState.mode, 'idle');
  });

  it('refuses hooks outside a provider', () => {
    const Orphan = () => h('p', null, useBackgroundTasks().tasks.length);
    assert.throws(() => renderToString(h(Orphan)), /inside <BackgroundTaskProvider>/);
  });
});

describe('BackgroundTaskProvider against the server', () => {
  /** @type {import('./lib/server.js').TestServer} */
  let server;
  /** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
  let alice;
  /** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
  let bob;
  /** @type {import('../../crates/task-http/assets/client/index.js').TasklaneClient} */
  let admin;
  let adminToken = '';

  before(async () => {
    server = await startServer();
    alice = createClient({ baseUrl: server.baseUrl, token: await server.addUser('alice@tasklane.test') });
    bob = createClient({ baseUrl: server.baseUrl, token: await server.addUser('bob@tasklane.test') });
    adminToken = await server.addUser('admin@tasklane.test', { superuser: true });
    admin = createClient({ baseUrl: server.baseUrl, token: adminToken });
  });

  after(async () => {
    await server?.stop();
  });

  /**
   * Renders a provider for `client` with a probe that records every context value (and, with
   * `taskId`, every `useTask` result). Returns the recorders and an unmount function.
   * @param {any} client
   * @param {string | null} [taskId]
   */
  function mount(client, taskId = null) {
    const contexts = new Recorder();
    const followed = new Recorder();
    const notifications = new Recorder();
    function Probe() {
      const value = useBackgroundTasks();
      const one = useTask(taskId);
      React.useEffect(() => contexts.push(value), [value]);
      React.useEffect(() => followed.push(one), [one.task, one.error, one.done, one.items]);
      return h('ul', null, value.tasks.map((t) => h('li', { key: t.id }, t.label || t.id)));
    }
    const container = document.createElement('div');
    document.body.appendChild(container);
    const root = createRoot(container);
    root.render(h(BackgroundTaskProvider, { client, onNotification: notifications.push }, h(Probe)));
    return {
      contexts,
      followed,
      notifications,
      container,
      unmount: () => {
        root.unmount();
        container.remove();
      },
    };
  }

  it('keeps a user’s own tasks live and notifies when one finishes', async () => {
    const view = mount(alice);
    try {
      await view.contexts.until((v) => v.mode === 'live' && v.user?.email === 'alice@tasklane.test', 'a live session');
      const theirs = await bob.createTask({ task_type: 'noop', label: 'bob’s' });
      const mine = await alice.createTask({ task_type: 'sleep', params: { ms: 300, steps: 3 }, label: 'alice’s sleep' });
      await view.contexts.until((v) => v.tasks.some((t) => t.id === mine.id && t.status === 'processing'), 'my task running');
      const note = await view.notifications.until((n) => n.taskId === mine.id, 'a completion notification');
      assert.equal(note.kind, 'completed');
      assert.equal(note.message, 'alice’s sleep completed');
      const latest = view.contexts.last;
      assert.equal(latest.isSuperuser, false);
      assert.ok(latest.tasks.every((t) => t.user_id === 'alice@tasklane.test'));
      assert.ok(!latest.tasks.some((t) => t.id === theirs.id));
      assert.ok(view.container.textContent.includes('alice’s sleep'), 'the list rendered');
    } finally {
      view.unmount();
    }
  });

  it('gives a superuser every user’s tasks', async () => {
    const view = mount(admin);
    try {
      await view.contexts.until((v) => v.mode === 'live' && v.isSuperuser, 'a live superuser session');
      const theirs = await bob.createTask({ task_type: 'noop', label: 'seen by admin' });
      await view.contexts.until((v) => v.tasks.some((t) => t.id === theirs.id && t.status === 'completed'), 'bob’s task');
    } finally {
      view.unmount();
    }
  });

  it('useTask follows one task to its result, or to its error', async () => {
    const ok = await alice.createTask({ task_type: 'sleep', params: { ms: 300, steps: 3 } });
    const view = mount(alice, ok.id);
    try {
      const progressing = await view.followed.until((r) => r.task?.status === 'processing', 'progress');
      assert.equal(progressing.done, false);
      const done = await view.followed.until((r) => r.done, 'the end');
      assert.equal(done.task?.status, 'completed');
      assert.deepEqual(done.task?.result, { slept_ms: 300, steps: 3 });
      assert.equal(done.error, null);
    } finally {
      view.unmount();
    }
    const bad = await alice.createTask({ task_type: 'sleep', params: { ms: -5 } });
    const failing = mount(alice, bad.id);
    try {
      const done = await failing.followed.until((r) => r.done, 'the failure');
      assert.match(String(done.error), /invalid params\.ms/);
      assert.equal(done.task?.status, 'failed');
    } finally {
      failing.unmount();
    }
  });

  it('useTask exposes a generation’s questions as they arrive', async () => {
    const params = { amount: 4, category: 'Geografi', ageGroup: 'adults', difficulty: 'easy', provider: 'offline' };
    const { taskId } = /** @type {any} */ (await alice.startGeneration(params));
    const view = mount(alice, taskId);
    try {
      const done = await view.followed.until((r) => r.done, 'the end');
      assert.equal(done.task?.status, 'completed');
      assert.equal(done.items.length, 4);
      assert.deepEqual(
        done.items.map((/** @type {any} */ q) => q.text),
        done.task?.result.questions.map((/** @type {any} */ q) => q.text),
      );
    } finally {
      view.unmount();
    }
  });

  it('closes its stream on unmount', async () => {
    const openStreams = async () => {
      const response = await fetch(`${server.baseUrl}/metrics`, { headers: { Authorization: `Bearer ${adminToken}` } });
      const match = /^tasklane_sse_streams_open (\d+)$/m.exec(await response.text());
      assert.ok(match, 'the metrics report open streams');
      return Number(match[1]);
    };
    await eventually(async () => (await openStreams()) === 0, 'earlier tests’ streams to close');
    const view = mount(alice);
    await view.contexts.until((v) => v.mode === 'live', 'a live session');
    await eventually(async () => (await openStreams()) === 1, 'the provider’s stream');
    view.unmount();
    await eventually(async () => (await openStreams()) === 0, 'the stream to close after unmount');
  });
});
