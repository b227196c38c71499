/**
 * @file The WebSocket transport of the JS client (`client/ws.js`) against a scripted socket:
 * SSE paths become subscriptions, events are handed on as the SSE messages they wrap, a dropped
 * connection resubscribes from the last version seen, and a failed upgrade moves every stream to
 * SSE. (The real socket is exercised in Chromium by websocket.test.js.)
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { WS_RETRY_MS, createLiveSocket, socketUrl, topicOf } from '../../crates/task-http/assets/client/ws.js';

/** A WebSocket whose other end is the test. */
class ScriptedSocket {
  /** @type {ScriptedSocket[]} */
  static made = [];

  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    /** @type {any[]} */
    this.sent = [];
    this.closed = false;
    /** @type {any} */ this.onopen = null;
    /** @type {any} */ this.onmessage = null;
    /** @type {any} */ this.onclose = null;
    ScriptedSocket.made.push(this);
  }

  /** @param {string} text */
  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close() {
    this.closed = true;
    this.readyState = 3;
  }

  open() {
    this.readyState = 1;
    this.onopen({});
  }

  /** @param {unknown} message */
  receive(message) {
    this.onmessage({ data: JSON.stringify(message) });
  }

  drop() {
    this.readyState = 3;
    this.onclose({});
  }
}

/** A stream's callbacks, recorded. */
function recorder() {
  /** @type {any[]} */
  const log = [];
  return {
    log,
    handlers: {
      onOpen: () => log.push('open'),
      onMessage: (/** @type {any} */ m) => log.push({ data: JSON.parse(m.data), id: m.id }),
      onError: (/** @type {any} */ e) => log.push({ error: e.message, fatal: e.fatal }),
    },
  };
}

describe('client/ws.js', () => {
  it('maps SSE paths to topics and addresses', () => {
    assert.deepEqual(topicOf('/api/subscribeToTask?taskId=task_1'), { topic: 'task', taskId: 'task_1' });
    assert.deepEqual(topicOf('/api/subscribeToTasks'), { topic: 'tasks' });
    assert.deepEqual(topicOf('/api/subscribeToTasks?userId=a%40b'), { topic: 'tasks', userId: 'a@b' });
    assert.equal(topicOf('/api/subscribeToTask'), null);
    assert.equal(topicOf('/api/tasks'), null);
    assert.equal(socketUrl('http://127.0.0.1:8080'), 'ws://127.0.0.1:8080/api/ws');
    assert.equal(socketUrl('https://tasks.example/'), 'wss://tasks.example/api/ws');
  });

  it('carries streams over one socket and resumes from the last version after a drop', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    ScriptedSocket.made = [];
    /** @type {string[]} */
    const fellBack = [];
    const live = createLiveSocket({
      url: 'ws://x/api/ws',
      WebSocket: ScriptedSocket,
      fallback: (path) => {
        fellBack.push(path);
        return { close() {} };
      },
    });
    const task = recorder();
    const list = recorder();
    const taskStream = live.open('/api/subscribeToTask?taskId=task_1', task.handlers);
    live.open('/api/subscribeToTasks', list.handlers);
    assert.equal(ScriptedSocket.made.length, 1, 'one socket for both');
    const [socket] = ScriptedSocket.made;
    socket.open();
    assert.deepEqual(socket.sent, [
      { type: 'subscribe', id: 's1', topic: 'task', taskId: 'task_1' },
      { type: 'subscribe', id: 's2', topic: 'tasks' },
    ]);
    socket.receive({ type: 'subscribed', id: 's1' });
    socket.receive({ type: 'event', id: 's1', version: 4, event: { type: 'update', task: { id: 'task_1' } } });
    socket.receive({ type: 'event', id: 's2', event: { type: 'resync' } });
    assert.deepEqual(task.log, ['open', { data: { type: 'update', task: { id: 'task_1' } }, id: '4' }]);
    assert.deepEqual(list.log, [{ data: { type: 'resync' }, id: '' }]);

    socket.drop();
    assert.deepEqual(task.log.at(-1), { error: 'The live connection was interrupted', fatal: false });
    // The client reconnects after its retry delay (mocked time).
    t.mock.timers.tick(WS_RETRY_MS - 1);
    assert.equal(ScriptedSocket.made.length, 1);
    t.mock.timers.tick(1);
    assert.equal(ScriptedSocket.made.length, 2);
    const again = ScriptedSocket.made[1];
    again.open();
    assert.deepEqual(again.sent, [
      { type: 'subscribe', id: 's1', topic: 'task', taskId: 'task_1', lastVersion: 4 },
      { type: 'subscribe', id: 's2', topic: 'tasks' },
    ]);
    taskStream.close();
    assert.deepEqual(again.sent.at(-1), { type: 'unsubscribe', id: 's1' });
    again.receive({ type: 'error', id: 's2', error: 'no' });
    assert.deepEqual(list.log.at(-1), { error: 'no', fatal: true });
    assert.ok(again.closed, 'the socket closes when nothing is subscribed');
    assert.deepEqual(fellBack, []);
  });

  it('hands partials on with their <version>.<seq> id and resumes from both after a drop', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    ScriptedSocket.made = [];
    const live = createLiveSocket({ url: 'ws://x/api/ws', WebSocket: ScriptedSocket, fallback: () => ({ close() {} }) });
    const task = recorder();
    live.open('/api/subscribeToTask?taskId=task_1', task.handlers);
    const [socket] = ScriptedSocket.made;
    socket.open();
    socket.receive({ type: 'subscribed', id: 's1' });
    socket.receive({ type: 'event', id: 's1', version: 2, event: { type: 'update', task: { id: 'task_1' } } });
    const partial = { type: 'partial', taskId: 'task_1', item: { text: 'Q?' }, index: 0 };
    socket.receive({ type: 'event', id: 's1', version: 2, seq: 1, event: partial });
    socket.receive({ type: 'event', id: 's1', version: 3, seq: 1, event: { type: 'update', task: { id: 'task_1' } } });
    assert.deepEqual(task.log.slice(1).map((/** @type {any} */ entry) => entry.id), ['2', '2.1', '3.1']);
    assert.deepEqual(task.log[2].data, partial);

    socket.drop();
    t.mock.timers.tick(WS_RETRY_MS);
    const again = ScriptedSocket.made[1];
    again.open();
    assert.deepEqual(again.sent, [
      { type: 'subscribe', id: 's1', topic: 'task', taskId: 'task_1', lastVersion: 3, lastSeq: 1 },
    ]);
  });

  it('moves every stream to SSE when the upgrade fails', () => {
    ScriptedSocket.made = [];
    /** @type {string[]} */
    const fellBack = [];
    const live = createLiveSocket({
      url: 'ws://x/api/ws',
      WebSocket: ScriptedSocket,
      fallback: (path) => {
        fellBack.push(path);
        return { close() {} };
      },
    });
    live.open('/api/subscribeToTask?taskId=task_1', recorder().handlers);
    live.open('/api/subscribeToTasks', recorder().handlers);
    assert.equal(live.transport(), 'websocket');
    ScriptedSocket.made[0].drop();
    assert.deepEqual(fellBack, ['/api/subscribeToTask?taskId=task_1', '/api/subscribeToTasks']);
    assert.equal(live.transport(), 'sse');
    live.open('/api/subscribeToTasks?userId=a', recorder().handlers);
    assert.equal(ScriptedSocket.made.length, 1, 'no further upgrade attempts');
    assert.equal(fellBack.length, 3);
  });
});
