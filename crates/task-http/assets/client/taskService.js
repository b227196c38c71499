// @ts-check
/**
 * @file The old front end's `taskService`: follow a task, or wait for it as a promise.
 */

import { getClient } from './api.js';
import { followTask } from './backgroundTaskService.js';

/**
 * @typedef {import('./index.js').Task} Task
 * @typedef {import('./index.js').TasklaneClient} TasklaneClient
 * @typedef {import('./index.js').TaskErrorDetails} TaskErrorDetails
 * @typedef {import('./index.js').WaitOptions} WaitOptions
 * @typedef {import('./index.js').TaskService} TaskService
 */

/**
 * Why a task did not complete: its error message (`message`), whether it failed, was
 * cancelled, timed out or could not be followed (`type`), and its last known state.
 */
export class TaskFailedError extends Error {
  /**
   * @param {string} taskId
   * @param {string} message
   * @param {TaskErrorDetails} details
   */
  constructor(taskId, message, details) {
    super(message);
    this.name = 'TaskFailedError';
    /** The task that did not complete. */
    this.taskId = taskId;
    /** `error` (failed or cancelled), `timeout` (monitoring limit) or `unavailable`. */
    this.type = details.type;
    /** The task's last known state, when the stream sent one. */
    this.task = details.task;
    /** `failed` or `cancelled` when known. */
    this.taskStatus = details.task ? details.task.status : undefined;
    /** The HTTP status when the stream was refused. */
    this.status = details.status;
  }
}

/**
 * The service bound to a client (or, without one, to the `configure()`d default at each call).
 * @param {TasklaneClient} [client]
 * @returns {TaskService}
 */
export function createTaskService(client) {
  const current = () => client || getClient();
  return {
    subscribeToTask: (taskId, onUpdate, onComplete, onError, onPartial) =>
      followTask(current(), taskId, onUpdate, onComplete, onError, onPartial),
    waitForCompletion: (taskId, options = {}) =>
      new Promise((resolve, reject) => {
        const { signal, onUpdate } = options;
        if (signal && signal.aborted) {
          reject(signal.reason);
          return;
        }
        const onAbort = () => {
          cleanup();
          reject(signal && signal.reason);
        };
        const cleanup = followTask(
          current(),
          taskId,
          onUpdate,
          (task) => {
            if (signal) signal.removeEventListener('abort', onAbort);
            resolve(task);
          },
          (message, details) => {
            if (signal) signal.removeEventListener('abort', onAbort);
            reject(new TaskFailedError(taskId, message, details));
          },
        );
        if (signal) signal.addEventListener('abort', onAbort, { once: true });
      }),
  };
}

const defaultService = createTaskService();

/**
 * Follows one task live: `onUpdate` per change, then `onComplete` or `onError` once.
 * @type {TaskService['subscribeToTask']}
 */
export const subscribeToTask = defaultService.subscribeToTask;

/**
 * Resolves with the completed task; rejects with a {@link TaskFailedError} carrying the task's
 * error when it fails, is cancelled, or monitoring times out.
 * @type {TaskService['waitForCompletion']}
 */
export const waitForCompletion = defaultService.waitForCompletion;
