// @ts-check
/**
 * @file The login page: trades a pasted API token for a session cookie, then opens `/tasks`.
 */

import { login } from '/client/api.js';

import { byId } from './dom.js';

const form = /** @type {HTMLFormElement} */ (byId('login-form'));
const input = /** @type {HTMLInputElement} */ (byId('token'));
const error = byId('login-error');
const submit = /** @type {HTMLButtonElement} */ (byId('login-submit'));

/** @param {string} message */
function showError(message) {
  error.textContent = message;
  error.hidden = false;
  input.setAttribute('aria-invalid', 'true');
  input.focus();
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = input.value.trim();
  if (!token) {
    showError('Paste your API token first.');
    return;
  }
  submit.disabled = true;
  error.hidden = true;
  try {
    await login(token);
    window.location.assign('/tasks');
  } catch (cause) {
    showError(cause instanceof Error ? cause.message : String(cause));
    submit.disabled = false;
  }
});

input.focus();
