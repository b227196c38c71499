// @ts-check
/**
 * @file The tasklane HTTP API as functions. In a browser page served by tasklane nothing needs
 * configuring: requests go to the same origin with the session cookie. Elsewhere (Node, another
 * origin) call {@link configure} or {@link createClient} with a `baseUrl` and a bearer `token`.
 */

import { errorMessage, openFetchEventStream } from './sse.js';
import { createLiveSocket, socketUrl } from './ws.js';

/**
 * @typedef {import('./sse.js').StreamHandlers} StreamHandlers
 * @typedef {import('./sse.js').StreamHandle} StreamHandle
 * @typedef {import('./index.js').Task} Task
 * @typedef {import('./index.js').ClientOptions} ClientOptions
 * @typedef {import('./index.js').TasklaneClient} TasklaneClient
 */

/** A non-2xx answer from the API, carrying its status and the server's `{"error"}` message. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {number} status
   */
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    /** The HTTP status code. */
    this.status = status;
  }
}

/**
 * A client bound to one server and one identity.
 * @param {ClientOptions} [options]
 * @returns {TasklaneClient}
 */
export function createClient(options = {}) {
  const baseUrl = (options.baseUrl || '').replace(/\/+$/, '');
  const token = options.token || null;
  const credentials = options.credentials || 'same-origin';
  const fetchImpl = options.fetch || globalThis.fetch.bind(globalThis);
  // EventSource cannot send an Authorization header, so a token forces the fetch reader.
  const EventSourceImpl =
    options.EventSource !== undefined
      ? options.EventSource
      : token
        ? null
        : /** @type {any} */ (globalThis).EventSource || null;

  /** @param {string} path */
  const url = (path) => baseUrl + path;

  /**
   * Opens a stream over SSE (`EventSource`, or the fetch reader).
   * @param {string} path
   * @param {StreamHandlers} handlers
   * @returns {StreamHandle}
   */
  const openSse = (path, handlers) => {
    if (EventSourceImpl) return openNativeEventStream(EventSourceImpl, url(path), credentials, handlers);
    return openFetchEventStream(url(path), {
      ...handlers,
      fetch: fetchImpl,
      headers: authHeaders(),
      credentials,
    });
  };

  // A WebSocket cannot send an Authorization header either, so a token keeps SSE; so does a
  // runtime without WebSocket (Node 20).
  const WebSocketImpl =
    options.WebSocket !== undefined ? options.WebSocket : /** @type {any} */ (globalThis).WebSocket || null;
  const wsUrl = options.transport === 'websocket' && !token && WebSocketImpl ? socketUrl(baseUrl) : null;
  const liveSocket = wsUrl ? createLiveSocket({ url: wsUrl, WebSocket: WebSocketImpl, fallback: openSse }) : null;

  /** @returns {Record<string, string>} */
  const authHeaders = () => (token ? { Authorization: `Bearer ${token}` } : {});

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async function request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Accept: 'application/json', ...authHeaders() };
    /** @type {RequestInit} */
    const init = { method, headers, credentials, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetchImpl(url(path), init);
    if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
    if (response.status === 204) return null;
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  /**
   * @param {string} path
   * @param {Record<string, string | number | undefined | null>} query
   */
  const withQuery = (path, query) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
    }
    const text = params.toString();
    return text ? `${path}?${text}` : path;
  };

  /** @param {string} taskId */
  const taskPath = (taskId) => `/api/tasks/${encodeURIComponent(taskId)}`;

  return {
    baseUrl,
    url,
    me: () => request('GET', '/api/me'),
    login: (secret) => request('POST', '/api/login', { token: secret }),
    logout: () => request('POST', '/api/logout', {}),
    startGeneration: (params) => request('POST', '/api/generateAIQuestions', params),
    startValidation: (params) => request('POST', '/api/validateQuestions', params),
    startEmojiRegeneration: (params) => request('POST', '/api/regenerateEmojis', params),
    createTask: (spec) => request('POST', '/api/tasks', spec),
    getTask: (taskId) => request('GET', taskPath(taskId)),
    listTasks: (query = {}) =>
      request('GET', withQuery('/api/getBackgroundTasks', { userId: query.userId, limit: query.limit })),
    queryTasks: (query = {}) => request('GET', withQuery('/api/tasks', { ...query })),
    taskCounts: () => request('GET', '/api/tasks/counts'),
    getWorkflow: (workflowId) => request('GET', `/api/workflows/${encodeURIComponent(workflowId)}`),
    cancelTask: (taskId) => request('POST', `${taskPath(taskId)}/cancel`, {}),
    retryTask: (taskId) => request('POST', `${taskPath(taskId)}/retry`, {}),
    bulk: (action, taskIds) => request('POST', '/api/tasks/bulk', { action, taskIds }),
    listQuestions: (query = {}) => request('GET', withQuery('/api/questions', query)),
    transport: () => (liveSocket ? liveSocket.transport() : 'sse'),
    openStream(path, handlers) {
      return liveSocket ? liveSocket.open(path, handlers) : openSse(path, handlers);
    },
  };
}

/**
 * Opens a stream with an `EventSource` implementation. It reconnects by itself; an error while
 * it is `CLOSED` means the server refused the stream (non-2xx), which is fatal.
 *
 * @param {any} EventSourceImpl
 * @param {string} href
 * @param {RequestCredentials} credentials
 * @param {StreamHandlers} handlers
 * @returns {StreamHandle}
 */
function openNativeEventStream(EventSourceImpl, href, credentials, handlers) {
  const source = new EventSourceImpl(href, { withCredentials: credentials === 'include' });
  let closed = false;
  source.onopen = () => {
    if (!closed && handlers.onOpen) handlers.onOpen();
  };
  source.onmessage = (/** @type {MessageEvent} */ event) => {
    if (!closed && handlers.onMessage) {
      handlers.onMessage({ data: String(event.data), event: 'message', id: event.lastEventId || '' });
    }
  };
  source.onerror = () => {
    if (closed) return;
    const fatal = source.readyState === 2;
    if (fatal) closed = true;
    if (handlers.onError) {
      handlers.onError({
        fatal,
        message: fatal ? 'The server refused the event stream' : 'The event stream was interrupted',
      });
    }
  };
  return {
    close() {
      closed = true;
      source.close();
    },
  };
}

let defaultClient = createClient();

/**
 * Replaces the client the module-level functions (here and in the services) use.
 * @param {ClientOptions} options
 * @returns {TasklaneClient}
 */
export function configure(options) {
  defaultClient = createClient(options);
  return defaultClient;
}

/** The client the module-level functions use. */
export function getClient() {
  return defaultClient;
}

/** @type {TasklaneClient['me']} */
export const me = () => defaultClient.me();
/** @type {TasklaneClient['login']} */
export const login = (secret) => defaultClient.login(secret);
/** @type {TasklaneClient['logout']} */
export const logout = () => defaultClient.logout();
/** @type {TasklaneClient['startGeneration']} */
export const startGeneration = (params) => defaultClient.startGeneration(params);
/** @type {TasklaneClient['startValidation']} */
export const startValidation = (params) => defaultClient.startValidation(params);
/** @type {TasklaneClient['startEmojiRegeneration']} */
export const startEmojiRegeneration = (params) => defaultClient.startEmojiRegeneration(params);
/** @type {TasklaneClient['createTask']} */
export const createTask = (spec) => defaultClient.createTask(spec);
/** @type {TasklaneClient['getTask']} */
export const getTask = (taskId) => defaultClient.getTask(taskId);
/** @type {TasklaneClient['listTasks']} */
export const listTasks = (query) => defaultClient.listTasks(query);
/** @type {TasklaneClient['queryTasks']} */
export const queryTasks = (query) => defaultClient.queryTasks(query);
/** @type {TasklaneClient['taskCounts']} */
export const taskCounts = () => defaultClient.taskCounts();
/** @type {TasklaneClient['getWorkflow']} */
export const getWorkflow = (workflowId) => defaultClient.getWorkflow(workflowId);
/** @type {TasklaneClient['cancelTask']} */
export const cancelTask = (taskId) => defaultClient.cancelTask(taskId);
/** @type {TasklaneClient['retryTask']} */
export const retryTask = (taskId) => defaultClient.retryTask(taskId);
/** @type {TasklaneClient['bulk']} */
export const bulk = (action, taskIds) => defaultClient.bulk(action, taskIds);
/** @type {TasklaneClient['listQuestions']} */
export const listQuestions = (query) => defaultClient.listQuestions(query);
