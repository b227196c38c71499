/**
 * @file The client's fetch-based SSE reader: the event-stream parser on tricky input, and
 * reconnection with `Last-Event-ID` against the real server after the connection drops.
 */

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { createClient } from '../../crates/task-http/assets/client/api.js';
import { SseParser, openFetchEventStream } from '../../crates/task-http/assets/client/sse.js';
import { startServer } from './lib/server.js';
import { Recorder } from './lib/wait.js';

/**
 * Parses `chunks` in order; returns the messages and retry values.
 * @param {string[]} chunks
 */
function parse(chunks) {
  /** @type {import('../../crates/task-http/assets/client/sse.js').SseMessage[]} */
  const messages = [];
  /** @type {number[]} */
  const retries = [];
  const parser = new SseParser((message) => messages.push(message), (ms) => retries.push(ms));
  for (const chunk of chunks) parser.push(chunk);
  return { messages, retries, lastEventId: parser.lastEventId };
}

describe('SseParser', () => {
  const check = (/** @type {string[]} */ chunks, /** @type {object[]} */ expected) =>
    assert.deepEqual(parse(chunks).messages, expected, JSON.stringify(chunks));

  it('parses messages however the stream is split', () => {
    const text = 'id: 1\ndata: {"a":1}\n\nid: 2\ndata: {"a":2}\n\n';
    const expected = [
      { data: '{"a":1}', event: 'message', id: '1' },
      { data: '{"a":2}', event: 'message', id: '2' },
    ];
    check([text], expected);
    check([...text], expected);
    for (let cut = 1; cut < text.length; cut += 1) check([text.slice(0, cut), text.slice(cut)], expected);
  });

  it('accepts CRLF and CR line endings, even split between chunks', () => {
    const expected = [{ data: 'x', event: 'message', id: '' }, { data: 'y', event: 'message', id: '' }];
    check(['data: x\r\n\r\ndata: y\r\n\r\n'], expected);
    check(['data: x\r', '\n\r', '\ndata: y\r\n', '\r\n'], expected);
    check(['data: x\r\rdata: y\r\r'], expected);
  });

  it('joins multi-line data, skips comments and keeps the last id', () => {
    const { messages, retries, lastEventId } = parse([
      ': keep-alive\n\n',
      'retry: 2500\n',
      'event: custom\ndata: line one\ndata:line two\nid: 7\n\n',
      'id: 8\n\n',
      'retry: soon\ndata\n\n',
    ]);
    assert.deepEqual(messages, [
      { data: 'line one\nline two', event: 'custom', id: '7' },
      { data: '', event: 'message', id: '8' },
    ]);
    assert.deepEqual(retries, [2500], 'a non-numeric retry is ignored');
    assert.equal(lastEventId, '8', 'an id line without data still sets the id');
  });
});

describe('openFetchEventStream against the server', () => {
  /** @type {import('./lib/server.js').TestServer} */
  let server;
  let token = '';

  before(async () => {
    server = await startServer();
    token = await server.addUser('reader@tasklane.test');
  });

  after(async () => {
    await server?.stop();
  });

  it('reconnects after a dropped connection and resumes after the last id without duplicates', async () => {
    const client = createClient({ baseUrl: server.baseUrl, token });
    const task = await client.createTask({ task_type: 'sleep', params: { ms: 800, steps: 8 } });
    /** @type {(string | null)[]} */
    const lastEventIds = [];
    /**
     * The first connection is cut after its first message; every answer is told to retry in
     * 20 ms so the test does not wait the default 3 s.
     * @type {typeof fetch}
     */
    const flaky = async (input, init) => {
      lastEventIds.push(new Headers(init?.headers).get('last-event-id'));
      const response = await fetch(input, init);
      const cut = lastEventIds.length === 1;
      const reader = /** @type {ReadableStream<Uint8Array>} */ (response.body).getReader();
      const encoder = new TextEncoder();
      const decoder = new TextDecoder();
      let seen = '';
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(encoder.encode('retry: 20\n\n'));
        },
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) {
            controller.close();
            return;
          }
          seen += decoder.decode(value, { stream: true });
          const end = seen.indexOf('\n\n', seen.indexOf('data:'));
          if (cut && end !== -1) {
            controller.enqueue(encoder.encode(seen.slice(0, end + 2).replace(/^retry:.*\n/m, '')));
            await reader.cancel();
            controller.close();
            return;
          }
          if (!cut) controller.enqueue(value);
        },
      });
      return new Response(body, { status: response.status, headers: response.headers });
    };
    const messages = new Recorder();
    const errors = new Recorder();
    const stream = openFetchEventStream(`${server.baseUrl}/api/subscribeToTask?taskId=${task.id}`, {
      fetch: flaky,
      headers: { Authorization: `Bearer ${token}` },
      onMessage: messages.push,
      onError: errors.push,
    });
    try {
      await messages.until((m) => JSON.parse(m.data).type === 'complete', 'the complete event');
    } finally {
      stream.close();
    }
    assert.equal(errors.values.length, 1, 'one interruption was reported');
    assert.equal(errors.values[0].fatal, false);
    assert.equal(lastEventIds.length, 2, 'one reconnect');
    assert.equal(lastEventIds[0], null);
    assert.equal(lastEventIds[1], messages.values[0].id, 'the reconnect names the last id seen');
    const ids = messages.values.map((m) => Number(m.id));
    assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), `ids only increase: ${ids}`);
  });

  it('reports a refused stream once, as fatal, with the status and message', async () => {
    const errors = new Recorder();
    let requests = 0;
    const stream = openFetchEventStream(`${server.baseUrl}/api/subscribeToTask?taskId=task_1_unknown`, {
      fetch: (input, init) => {
        requests += 1;
        return fetch(input, init);
      },
      headers: { Authorization: `Bearer ${token}` },
      onError: errors.push,
    });
    const error = await errors.until(() => true, 'an error');
    stream.close();
    assert.equal(error.fatal, true);
    assert.equal(error.status, 404);
    assert.ok(error.message && !error.message.startsWith('HTTP'), error.message);
    assert.equal(requests, 1);
  });
});
