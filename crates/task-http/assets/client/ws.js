// @ts-check
/**
 * @file Every live stream of a client over one WebSocket (`GET /api/ws`), behind the same
 * `openStream(path, handlers)` seam as SSE: the services and the React adapter cannot tell the
 * transports apart. Each SSE path becomes a subscription; each `event` message is handed on as
 * the SSE message it wraps. When the upgrade fails (no WebSocket in this runtime, a proxy
 * that does not pass upgrades, a refusal), every subscription moves to SSE for good, without the
 * callers noticing. After a dropped connection the socket reconnects and resubscribes, task
 * subscriptions from the last position seen (version, and the last partial output's seq), so
 * nothing is missed or repeated.
 */

/**
 * @typedef {import('./sse.js').StreamHandlers} StreamHandlers
 * @typedef {import('./sse.js').StreamHandle} StreamHandle
 */

/** The wait before reconnecting a dropped socket; the same as SSE's default `retry:`. */
export const WS_RETRY_MS = 3000;

/**
 * The subscription an SSE path stands for, or `null` for a path the socket does not carry.
 * @param {string} path
 * @returns {{ topic: 'task', taskId: string } | { topic: 'tasks', userId?: string } | null}
 */
export function topicOf(path) {
  const url = new URL(path, 'http://x');
  if (url.pathname === '/api/subscribeToTask') {
    const taskId = url.searchParams.get('taskId');
    return taskId ? { topic: 'task', taskId } : null;
  }
  if (url.pathname === '/api/subscribeToTasks') {
    const userId = url.searchParams.get('userId');
    return userId ? { topic: 'tasks', userId } : { topic: 'tasks' };
  }
  return null;
}

/**
 * The `ws:` / `wss:` address of `/api/ws` for a client whose API lives at `baseUrl` ('' for
 * the page's own origin).
 * @param {string} baseUrl
 * @returns {string | null}
 */
export function socketUrl(baseUrl) {
  const origin = baseUrl || (globalThis.location ? globalThis.location.origin : '');
  if (!origin) return null;
  const url = new URL('/api/ws', origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.href;
}

/**
 * A shared socket that carries every stream opened through it.
 *
 * @param {{
 *   url: string,
 *   WebSocket: any,
 *   fallback: (path: string, handlers: StreamHandlers) => StreamHandle,
 * }} options
 * @returns {{
 *   open: (path: string, handlers: StreamHandlers) => StreamHandle,
 *   transport: () => 'websocket' | 'sse',
 * }}
 */
export function createLiveSocket({ url, WebSocket: WebSocketImpl, fallback }) {
  /**
   * @typedef {{
   *   id: string,
   *   path: string,
   *   topic: NonNullable<ReturnType<typeof topicOf>>,
   *   handlers: StreamHandlers,
   *   lastVersion: number | null,
   *   lastSeq: number | null,
   *   closed: boolean,
   *   moved: StreamHandle | null,
   * }} Subscription
   */
  /** @type {Map<string, Subscription>} */
  const subscriptions = new Map();
  let counter = 0;
  /** @type {any} */
  let socket = null;
  /** Whether any socket ever opened: a failure before that means WebSocket is not available. */
  let everOpened = false;
  /** Once set, every stream goes to SSE. */
  let useFallback = false;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retryTimer = null;

  /** @param {Subscription} sub */
  const sendSubscribe = (sub) => {
    /** @type {Record<string, unknown>} */
    const message = { type: 'subscribe', id: sub.id, ...sub.topic };
    if (sub.topic.topic === 'task' && sub.lastVersion !== null) {
      message.lastVersion = sub.lastVersion;
      if (sub.lastSeq !== null) message.lastSeq = sub.lastSeq;
    }
    socket.send(JSON.stringify(message));
  };

  const connect = () => {
    retryTimer = null;
    if (subscriptions.size === 0) return;
    let opened = false;
    const current = new WebSocketImpl(url);
    socket = current;
    current.onopen = () => {
      opened = true;
      everOpened = true;
      for (const sub of subscriptions.values()) sendSubscribe(sub);
    };
    current.onmessage = (/** @type {{ data: unknown }} */ event) => {
      let message;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      const sub = message && typeof message.id === 'string' ? subscriptions.get(message.id) : undefined;
      if (!sub || sub.closed) return;
      switch (message.type) {
        case 'subscribed':
          if (sub.handlers.onOpen) sub.handlers.onOpen();
          break;
        case 'event': {
          if (typeof message.version === 'number') sub.lastVersion = message.version;
          if (typeof message.seq === 'number') sub.lastSeq = message.seq;
          // The id SSE would have sent: `<version>`, or `<version>.<seq>` once partials came.
          let id = sub.lastVersion === null ? '' : String(sub.lastVersion);
          if (id && sub.lastSeq !== null) id += `.${sub.lastSeq}`;
          if (sub.handlers.onMessage) sub.handlers.onMessage({ data: JSON.stringify(message.event), event: 'message', id });
          break;
        }
        case 'ended':
          // Nothing more will come: like a stream the server closed for good (a finished task
          // whose end the client has seen answers 204 on SSE).
          forget(sub);
          if (sub.handlers.onError) sub.handlers.onError({ fatal: true, message: 'The subscription ended' });
          break;
        case 'error':
          forget(sub);
          if (sub.handlers.onError) sub.handlers.onError({ fatal: true, message: String(message.error) });
          break;
        default:
          break;
      }
    };
    current.onclose = () => {
      if (socket !== current) return;
      socket = null;
      if (!opened && !everOpened) {
        // The upgrade failed: move every stream to SSE.
        useFallback = true;
        for (const sub of [...subscriptions.values()]) {
          subscriptions.delete(sub.id);
          if (!sub.closed) sub.moved = fallback(sub.path, sub.handlers);
        }
        return;
      }
      for (const sub of subscriptions.values()) {
        if (sub.handlers.onError) sub.handlers.onError({ fatal: false, message: 'The live connection was interrupted' });
      }
      if (subscriptions.size > 0) retryTimer = setTimeout(connect, WS_RETRY_MS);
    };
  };

  /** @param {Subscription} sub */
  const forget = (sub) => {
    sub.closed = true;
    subscriptions.delete(sub.id);
    if (subscriptions.size === 0) closeSocket();
  };

  const closeSocket = () => {
    if (retryTimer !== null) clearTimeout(retryTimer);
    retryTimer = null;
    if (socket) {
      const current = socket;
      socket = null;
      current.close();
    }
  };

  return {
    transport: () => (useFallback ? 'sse' : 'websocket'),
    open(path, handlers) {
      const topic = topicOf(path);
      if (useFallback || !topic) return fallback(path, handlers);
      counter += 1;
      /** @type {Subscription} */
      const sub = { id: `s${counter}`, path, topic, handlers, lastVersion: null, lastSeq: null, closed: false, moved: null };
      subscriptions.set(sub.id, sub);
      if (socket === null && retryTimer === null) connect();
      else if (socket && socket.readyState === 1) sendSubscribe(sub);
      return {
        close() {
          if (sub.moved) {
            sub.moved.close();
            return;
          }
          if (sub.closed) return;
          const open = socket && socket.readyState === 1;
          forget(sub);
          if (open && socket) socket.send(JSON.stringify({ type: 'unsubscribe', id: sub.id }));
        },
      };
    },
  };
}
