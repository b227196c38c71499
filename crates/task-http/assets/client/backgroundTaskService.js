// @ts-check
/**
 * @file The old front end's `backgroundTaskService`, same signatures: fetch a user's tasks,
 * follow one task live, and keep a user's (or everyone's) task list live. The module-level
 * functions use the client from `configure()` in `api.js`;
 * {@link createBackgroundTaskService} binds them to another client.
 */

import { getClient } from './api.js';
import { ALL_POLL_INTERVAL_MS, USER_POLL_INTERVAL_MS, subscribeToTaskList } from './taskList.js';

/**
 * @typedef {import('./index.js').Task} Task
 * @typedef {import('./index.js').TasklaneClient} TasklaneClient
 * @typedef {import('./index.js').TaskErrorDetails} TaskErrorDetails
 * @typedef {import('./index.js').ListSubscriptionOptions} ListSubscriptionOptions
 * @typedef {import('./index.js').BackgroundTaskService} BackgroundTaskService
 */

/**
 * Follows one task over `/api/subscribeToTask`: `onUpdate(task)` for every change,
 * `onPartial(item, index)` for every partial output the task stores (for a generation, each
 * question as it arrives; replayed in order for a late subscriber), then either
 * `onComplete(task)` or `onError(message, details)` once, after which the stream is closed. The
 * returned cleanup closes it early; no callback runs after cleanup.
 *
 * @param {TasklaneClient} client
 * @param {string} taskId
 * @param {((task: Task) => void) | null | undefined} onUpdate
 * @param {((task: Task) => void) | null | undefined} onComplete
 * @param {((message: string, details: TaskErrorDetails) => void) | null | undefined} onError
 * @param {((item: unknown, index: number) => void) | null | undefined} [onPartial]
 * @returns {() => void}
 */
export function followTask(client, taskId, onUpdate, onComplete, onError, onPartial) {
  let finished = false;
  /** @type {Task | null} */
  let lastTask = null;

  /** @param {string} message @param {Omit<TaskErrorDetails, 'task'>} details */
  const fail = (message, details) => {
    if (finished) return;
    finished = true;
    stream.close();
    if (onError) onError(message, { ...details, task: lastTask });
  };

  const stream = client.openStream(`/api/subscribeToTask?taskId=${encodeURIComponent(taskId)}`, {
    onMessage(message) {
      if (finished) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      switch (event && event.type) {
        case 'update':
          lastTask = event.task;
          if (onUpdate) onUpdate(event.task);
          break;
        case 'complete':
          finished = true;
          stream.close();
          if (onComplete) onComplete(event.task);
          break;
        case 'error':
          fail(String(event.error || 'Task failed'), { type: 'error' });
          break;
        case 'timeout':
          fail(String(event.error || 'Task monitoring timeout'), { type: 'timeout' });
          break;
        case 'partial':
          if (onPartial && typeof event.index === 'number') onPartial(event.item, event.index);
          break;
        default:
          break;
      }
    },
    onError(error) {
      // Interruptions are retried by the stream itself; only a refusal ends the subscription.
      if (!error.fatal || finished) return;
      if (error.status !== undefined) {
        fail(error.message, { type: 'unavailable', status: error.status });
        return;
      }
      // EventSource does not say why it was refused: ask the REST endpoint, which does.
      client.getTask(taskId).then(
        (task) => {
          if (finished) return;
          lastTask = task;
          if (task.status === 'completed') {
            finished = true;
            if (onComplete) onComplete(task);
          } else {
            const ended = task.status === 'failed' || task.status === 'cancelled';
            fail(ended ? task.error || `Task ${task.status}` : error.message, { type: ended ? 'error' : 'unavailable' });
          }
        },
        (/** @type {any} */ cause) => fail(cause.message, { type: 'unavailable', status: cause.status }),
      );
    },
  });

  return () => {
    finished = true;
    stream.close();
  };
}

/**
 * The service bound to a client (or, without one, to the `configure()`d default at each call).
 * @param {TasklaneClient} [client]
 * @returns {BackgroundTaskService}
 */
export function createBackgroundTaskService(client) {
  const current = () => client || getClient();
  return {
    fetchUserTasks: (userId, options = {}) =>
      current().listTasks({ userId: userId || undefined, limit: options.limit }),
    subscribeToTask: (taskId, onUpdate, onComplete, onError, onPartial) =>
      followTask(current(), taskId, onUpdate, onComplete, onError, onPartial),
    subscribeToUserTasks: (userId, callback, options = {}) =>
      subscribeToTaskList(current(), callback, {
        pollIntervalMs: USER_POLL_INTERVAL_MS,
        ...options,
        userId,
      }),
    subscribeToAllTasks: (callback, options = {}) =>
      subscribeToTaskList(current(), callback, {
        pollIntervalMs: ALL_POLL_INTERVAL_MS,
        ...options,
        userId: null,
      }),
  };
}

const defaultService = createBackgroundTaskService();

/**
 * A user's tasks, newest first. A superuser may name any user; without `userId` the caller's own.
 * @type {BackgroundTaskService['fetchUserTasks']}
 */
export const fetchUserTasks = defaultService.fetchUserTasks;

/**
 * Follows one task live until it completes, fails, is cancelled or monitoring times out.
 * @type {BackgroundTaskService['subscribeToTask']}
 */
export const subscribeToTask = defaultService.subscribeToTask;

/**
 * Keeps `callback` supplied with a user's tasks (newest first), live over `/api/subscribeToTasks`,
 * polling every 5 s when the stream is unavailable.
 * @type {BackgroundTaskService['subscribeToUserTasks']}
 */
export const subscribeToUserTasks = defaultService.subscribeToUserTasks;

/**
 * Keeps `callback` supplied with every user's tasks (superusers), live, polling every 3 s when
 * the stream is unavailable.
 * @type {BackgroundTaskService['subscribeToAllTasks']}
 */
export const subscribeToAllTasks = defaultService.subscribeToAllTasks;
