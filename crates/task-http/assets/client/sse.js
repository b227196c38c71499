// @ts-check
/**
 * @file Server-Sent Events over `fetch`, for runtimes without `EventSource` (Node 20) and for
 * bearer-token auth, which `EventSource` cannot send. Follows the WHATWG event-stream parsing
 * rules, resumes with `Last-Event-ID` after a dropped connection and honours the server's
 * `retry:` delay, like a browser's `EventSource` does.
 */

/**
 * @typedef {{ data: string, event: string, id: string }} SseMessage
 * @typedef {{ fatal: boolean, status?: number, message: string }} StreamError
 * @typedef {{
 *   onOpen?: () => void,
 *   onMessage?: (message: SseMessage) => void,
 *   onError?: (error: StreamError) => void,
 * }} StreamHandlers
 * @typedef {{ close: () => void }} StreamHandle
 */

/** The reconnect delay until the server sends `retry:`; the same default browsers use. */
export const DEFAULT_RETRY_MS = 3000;

/**
 * An incremental event-stream parser: feed it decoded text chunks in order, get whole messages.
 */
export class SseParser {
  /**
   * @param {(message: SseMessage) => void} onMessage called once per dispatched message
   * @param {(ms: number) => void} [onRetry] called when the server sets a reconnect delay
   */
  constructor(onMessage, onRetry) {
    this.onMessage = onMessage;
    this.onRetry = onRetry;
    /** The id of the last message that carried one; sent back as `Last-Event-ID`. */
    this.lastEventId = '';
    this.buffer = '';
    this.data = '';
    this.hasData = false;
    this.eventType = '';
    this.afterCr = false;
  }

  /**
   * Parses the next piece of the stream.
   * @param {string} chunk
   */
  push(chunk) {
    let text = chunk;
    // A CR ended the previous chunk: an LF opening this one belongs to the same line break.
    if (this.afterCr) {
      this.afterCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      if (cr === -1 && lf === -1) break;
      let end;
      let next;
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        end = cr;
        if (cr === this.buffer.length - 1) {
          this.afterCr = true;
          next = cr + 1;
        } else {
          next = this.buffer[cr + 1] === '\n' ? cr + 2 : cr + 1;
        }
      } else {
        end = lf;
        next = lf + 1;
      }
      this.line(this.buffer.slice(start, end));
      start = next;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** @param {string} line */
  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data += value + '\n';
        this.hasData = true;
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value) && this.onRetry) this.onRetry(Number(value));
        break;
      default:
        break;
    }
  }

  dispatch() {
    const event = this.eventType || 'message';
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data;
    const hasData = this.hasData;
    this.data = '';
    this.hasData = false;
    this.eventType = '';
    if (hasData) this.onMessage({ data, event, id: this.lastEventId });
  }
}

/**
 * Opens an event stream with `fetch`. Reconnects after a dropped connection (reporting a
 * non-fatal error first); stops for good on a non-2xx answer or a wrong content type (a fatal
 * error carrying the status and the server's `{"error"}` message).
 *
 * @param {string} url
 * @param {StreamHandlers & {
 *   fetch: typeof fetch,
 *   headers?: Record<string, string>,
 *   credentials?: RequestCredentials,
 * }} options
 * @returns {StreamHandle}
 */
export function openFetchEventStream(url, options) {
  const { fetch: fetchImpl, headers = {}, credentials, onOpen, onMessage, onError } = options;
  let closed = false;
  let retryMs = DEFAULT_RETRY_MS;
  /** @type {AbortController | null} */
  let controller = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retryTimer = null;
  const parser = new SseParser(
    (message) => {
      if (!closed && onMessage) onMessage(message);
    },
    (ms) => {
      retryMs = ms;
    },
  );

  /** @param {StreamError} error */
  const report = (error) => {
    if (!closed && onError) onError(error);
  };

  const connect = async () => {
    retryTimer = null;
    if (closed) return;
    controller = new AbortController();
    /** @type {Record<string, string>} */
    const requestHeaders = { Accept: 'text/event-stream', ...headers };
    if (parser.lastEventId) requestHeaders['Last-Event-ID'] = parser.lastEventId;
    try {
      const response = await fetchImpl(url, {
        headers: requestHeaders,
        credentials,
        cache: 'no-store',
        signal: controller.signal,
      });
      const contentType = response.headers.get('content-type') || '';
      if (!response.ok || !contentType.startsWith('text/event-stream') || !response.body) {
        const message = await errorMessage(response);
        closed = true;
        if (onError) onError({ fatal: true, status: response.status, message });
        return;
      }
      if (!closed && onOpen) onOpen();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
        if (closed) {
          await reader.cancel().catch(() => {});
          return;
        }
      }
      parser.push(decoder.decode());
      report({ fatal: false, message: 'The event stream ended' });
    } catch (error) {
      if (closed) return;
      report({ fatal: false, message: describe(error) });
    }
    if (!closed) retryTimer = setTimeout(connect, retryMs);
  };

  connect();
  return {
    close() {
      closed = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      if (controller) controller.abort();
    },
  };
}

/**
 * The `{"error"}` message of a failed response, or its status line.
 * @param {Response} response
 * @returns {Promise<string>}
 */
export async function errorMessage(response) {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text);
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // Not JSON: fall through to the status line.
  }
  return `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  if (error instanceof Error) {
    const cause = /** @type {{ cause?: unknown }} */ (error).cause;
    return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}
