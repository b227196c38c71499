/**
 * @file Waiting on events in tests, always with a bound: a recorder of callback values that
 * resolves a waiter the moment a matching value arrives.
 */

/**
 * Collects the values a callback receives, and lets a test await the first one matching a
 * predicate (including values that arrived before the wait began).
 * @template T
 */
export class Recorder {
  constructor() {
    /** @type {T[]} */
    this.values = [];
    /** @type {{ predicate: (value: T) => boolean, resolve: (value: T) => void }[]} */
    this.waiters = [];
    /** The callback to hand to the code under test. */
    this.push = (/** @type {T} */ value) => {
      this.values.push(value);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.predicate(value)) return true;
        waiter.resolve(value);
        return false;
      });
    };
  }

  /** The latest value, if any. */
  get last() {
    return this.values[this.values.length - 1];
  }

  /**
   * The first value (already seen or still to come) for which `predicate` holds.
   * @param {(value: T) => boolean} predicate
   * @param {string} what shown when the wait times out
   * @param {number} [timeoutMs]
   * @returns {Promise<T>}
   */
  until(predicate, what, timeoutMs = 15_000) {
    const seen = this.values.find(predicate);
    if (seen !== undefined) return Promise.resolve(seen);
    return withTimeout(
      new Promise((resolve) => this.waiters.push({ predicate, resolve })),
      timeoutMs,
      () => `timed out waiting for ${what}; last value: ${JSON.stringify(this.last)?.slice(0, 2000)}`,
    );
  }
}

/**
 * `promise`, or a rejection after `timeoutMs`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} timeoutMs
 * @param {() => string} message
 * @returns {Promise<T>}
 */
export function withTimeout(promise, timeoutMs, message) {
  /** @type {ReturnType<typeof setTimeout>} */
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Re-checks an asynchronous condition (every 50 ms) until it holds, for state that announces
 * no event (such as a server's metrics); fails after `timeoutMs`.
 * @param {() => Promise<boolean> | boolean} condition
 * @param {string} what
 * @param {number} [timeoutMs]
 */
export async function eventually(condition, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
