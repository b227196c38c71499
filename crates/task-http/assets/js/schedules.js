// @ts-check
/**
 * @file The schedules page: the caller's schedules (a superuser's: everyone's) with their next
 * run and last run status, and pause, resume and run-now buttons. Live: every change to the
 * caller's tasks (pushed over the task stream) and every passing fire time reloads the list.
 */

import { subscribeToUserTasks } from '/client/backgroundTaskService.js';

import { badge, byId, clear, h, toast } from './dom.js';
import { formatTime } from './format.js';
import { listErrorReporter, redirectIfSignedOut, startSession } from './session.js';

/**
 * @typedef {{ scheduled_at: number, kind: string, task_id: string | null, status: string | null }} Run
 * @typedef {{ id: string, user_id: string, name: string, expression: string, timezone: string,
 *   task_type: string, paused: boolean, next_fire_times: number[], last_runs: Run[] }} Schedule
 */

/**
 * Calls the schedules API with the session cookie.
 * @param {string} method
 * @param {string} path
 * @returns {Promise<any>}
 */
async function call(method, path) {
  const response = await fetch(path, { method, credentials: 'same-origin', headers: { Accept: 'application/json' } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = Object.assign(new Error(body.error || `HTTP ${response.status}`), { status: response.status });
    throw error;
  }
  return body;
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let nextTimer;
let loading = false;
let again = false;

/** Reloads the list; calls that arrive during a load make one more load after it. */
async function reload() {
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  try {
    const { schedules } = await call('GET', '/api/schedules');
    show(schedules);
  } catch (error) {
    if (!redirectIfSignedOut(error)) toast(`Could not load schedules: ${/** @type {Error} */ (error).message}`, 'error');
  } finally {
    loading = false;
    if (again) {
      again = false;
      void reload();
    }
  }
}

/**
 * One schedule's row.
 * @param {Schedule} schedule
 */
function row(schedule) {
  const last = schedule.last_runs[0];
  const lastText = last
    ? [formatTime(last.scheduled_at), ' ', last.kind === 'skipped' ? badge('skipped') : badge(last.status || 'deleted')]
    : ['—'];
  const act = (/** @type {string} */ action, /** @type {string} */ done) => async () => {
    try {
      await call('POST', `/api/schedules/${encodeURIComponent(schedule.id)}/${action}`);
      toast(`${schedule.name}: ${done}`);
      await reload();
    } catch (error) {
      if (!redirectIfSignedOut(error)) toast(`${schedule.name}: ${/** @type {Error} */ (error).message}`, 'error');
    }
  };
  return h('tr', { attrs: { 'data-schedule-id': schedule.id } }, [
    h('th', { attrs: { scope: 'row' } }, [h('span', { class: 'schedule-name', text: schedule.name }), h('div', { class: 'muted small', text: schedule.user_id })]),
    h('td', {}, [h('code', { text: schedule.expression }), h('div', { class: 'muted small', text: schedule.timezone })]),
    h('td', { text: schedule.task_type }),
    h('td', { class: 'schedule-state', text: schedule.paused ? 'Paused' : 'Active' }),
    h('td', { class: 'schedule-next', text: schedule.next_fire_times.length ? formatTime(schedule.next_fire_times[0]) : '—' }),
    h('td', { class: 'schedule-last' }, lastText),
    h('td', { class: 'actions' }, [
      schedule.paused
        ? h('button', { class: 'button', text: 'Resume', attrs: { type: 'button' }, on: { click: act('resume', 'resumed') } })
        : h('button', { class: 'button', text: 'Pause', attrs: { type: 'button' }, on: { click: act('pause', 'paused') } }),
      h('button', { class: 'button subtle', text: 'Run now', attrs: { type: 'button' }, on: { click: act('run-now', 'task created') } }),
    ]),
  ]);
}

/**
 * Shows the schedules and wakes up at the soonest next run to show its outcome.
 * @param {Schedule[]} schedules
 */
function show(schedules) {
  byId('list-empty').hidden = schedules.length > 0;
  byId('schedule-table').hidden = schedules.length === 0;
  const rows = byId('schedule-rows');
  clear(rows);
  for (const schedule of schedules) rows.appendChild(row(schedule));
  clearTimeout(nextTimer);
  const soonest = Math.min(...schedules.flatMap((s) => s.next_fire_times.slice(0, 1)));
  if (Number.isFinite(soonest)) {
    // The scheduler fires at the time; the task it creates is pushed over the stream. This timer
    // only moves "Next run" on for times that create no task of the caller's (skipped runs).
    nextTimer = setTimeout(() => void reload(), Math.max(soonest - Date.now(), 0) + 1000);
  }
}

const user = await startSession();
if (user) {
  await reload();
  const errors = listErrorReporter('your tasks', (message) => toast(message, 'error'));
  subscribeToUserTasks(
    user.email,
    () => {
      errors.onLoaded();
      void reload();
    },
    {
      onModeChange: (mode) => {
        byId('list-mode').textContent = mode === 'live' ? 'Live' : mode === 'polling' ? 'Refreshing every 5 s' : '';
      },
      onError: errors.onError,
    },
  );
}
