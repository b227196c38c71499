// @ts-check
/**
 * @file The signed-in header shared by the pages: who is logged in, the superuser link and the
 * logout button. Sends the visitor to `/login` when there is no session.
 */

import { ApiError, configure, logout, me } from '/client/api.js';

import { byId } from './dom.js';

/** @typedef {import('../client/index.js').Me} Me */

/**
 * Loads the session and fills in the header.
 * @returns {Promise<Me | null>} the user, or `null` while the browser is sent to `/login`
 */
export async function startSession() {
  // Every live view of the page shares one WebSocket; the client falls back to SSE by itself
  // when the upgrade fails.
  configure({ transport: 'websocket' });
  byId('logout').addEventListener('click', async () => {
    try {
      await logout();
    } finally {
      window.location.assign('/login');
    }
  });
  let user;
  try {
    user = await me();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      window.location.assign('/login');
      return null;
    }
    throw error;
  }
  byId('session-user').textContent = user.role === 'superuser' ? `${user.email} (superuser)` : user.email;
  byId('session-limits').textContent = limitsText(user.limits);
  for (const element of document.querySelectorAll('[data-superuser-only]')) {
    /** @type {HTMLElement} */ (element).hidden = user.role !== 'superuser';
  }
  return user;
}

/**
 * The caller's limits in a few words: "Limits: 600/min (burst 100), 100 queued, 4 running".
 * @param {Me['limits']} limits
 * @returns {string}
 */
export function limitsText(limits) {
  if (!limits) {
    return '';
  }
  const parts = [limits.rate ? `${limits.rate} (burst ${limits.burst})` : 'no rate limit', `${limits.max_queued} queued`];
  if (limits.max_running !== null && limits.max_running !== undefined) {
    parts.push(`${limits.max_running} running`);
  }
  return `Limits: ${parts.join(', ')}`;
}

/**
 * Sends the browser to `/login` when `error` says the session is gone (401).
 * @param {unknown} error
 * @returns {boolean} whether it did
 */
export function redirectIfSignedOut(error) {
  if (error instanceof ApiError && error.status === 401) {
    window.location.assign('/login');
    return true;
  }
  return false;
}

/**
 * An `onError` for live lists: a lost session goes to `/login`; other failures are shown once
 * until the list loads again, not on every poll.
 * @param {string} what e.g. "your tasks"
 * @param {(message: string) => void} show
 * @returns {{ onError: (error: Error) => void, onLoaded: () => void }}
 */
export function listErrorReporter(what, show) {
  let reported = false;
  return {
    onError(error) {
      if (redirectIfSignedOut(error) || reported) return;
      reported = true;
      show(`Could not load ${what}: ${error.message}`);
    },
    onLoaded() {
      reported = false;
    },
  };
}
