// @ts-check
/**
 * @file React adapter, like the old `BackgroundTaskContext`: a provider that keeps the app's
 * task list live (the user's own tasks, or every task for a superuser), raises a notification
 * when a task it watched finishes, and hooks to read it. React is a peer dependency; no JSX, so
 * the file runs as it is in a browser or Node.
 */

import * as React from 'react';

import { getClient } from './api.js';
import { followTask } from './backgroundTaskService.js';
import { ALL_POLL_INTERVAL_MS, USER_POLL_INTERVAL_MS, subscribeToTaskList } from './taskList.js';

/**
 * @typedef {import('./index.js').Task} Task
 * @typedef {import('./index.js').TaskState} TaskState
 * @typedef {import('./index.js').TaskAction} TaskAction
 * @typedef {import('./index.js').TaskNotification} TaskNotification
 * @typedef {import('./index.js').BackgroundTaskContextValue} BackgroundTaskContextValue
 * @typedef {import('./react.js').BackgroundTaskProviderProps} BackgroundTaskProviderProps
 * @typedef {import('./index.js').UseTaskResult} UseTaskResult
 */

/** Notifications kept at most; the oldest are dropped first. */
export const MAX_NOTIFICATIONS = 20;

/** @type {TaskState} */
export const initialTaskState = Object.freeze({
  user: null,
  tasks: [],
  mode: 'idle',
  error: null,
  notifications: [],
});

/** @param {Task['status']} status */
const isTerminal = (status) => status === 'completed' || status === 'failed' || status === 'cancelled';

/**
 * The provider's state transitions, pure so they can be tested without rendering.
 * A notification is raised only for a task seen unfinished before and finished now, so loading
 * a page full of old finished tasks raises none.
 *
 * @param {TaskState} state
 * @param {TaskAction} action
 * @returns {TaskState}
 */
export function taskReducer(state, action) {
  switch (action.type) {
    case 'session':
      return { ...state, user: action.user, error: null };
    case 'tasks': {
      const before = new Map(state.tasks.map((task) => [task.id, task]));
      /** @type {TaskNotification[]} */
      const raised = [];
      for (const task of action.tasks) {
        const previous = before.get(task.id);
        if (previous && !isTerminal(previous.status) && isTerminal(task.status)) {
          raised.push(notificationFor(task));
        }
      }
      const notifications = raised.length
        ? [...state.notifications, ...raised].slice(-MAX_NOTIFICATIONS)
        : state.notifications;
      return { ...state, tasks: action.tasks, notifications, error: null };
    }
    case 'mode':
      return state.mode === action.mode ? state : { ...state, mode: action.mode };
    case 'error':
      return { ...state, error: action.error };
    case 'dismiss':
      return { ...state, notifications: state.notifications.filter((note) => note.id !== action.id) };
    default:
      return state;
  }
}

/**
 * @param {Task} task
 * @returns {TaskNotification}
 */
function notificationFor(task) {
  const name = task.label || task.task_type;
  const kind = /** @type {TaskNotification['kind']} */ (task.status);
  const message =
    kind === 'completed'
      ? `${name} completed`
      : kind === 'cancelled'
        ? `${name} was cancelled`
        : `${name} failed${task.error ? `: ${task.error}` : ''}`;
  return { id: `${task.id}:${task.version}`, taskId: task.id, kind, message, task };
}

const BackgroundTaskContext = React.createContext(/** @type {BackgroundTaskContextValue | null} */ (null));

/**
 * Keeps the signed-in user's tasks live for everything below it.
 * @param {BackgroundTaskProviderProps} props
 */
export function BackgroundTaskProvider(props) {
  const { children, client: givenClient, onNotification, limit } = props;
  const client = givenClient || getClient();
  const [state, dispatch] = React.useReducer(taskReducer, initialTaskState);
  const delivered = React.useRef(new Set());
  const notify = React.useRef(onNotification);
  notify.current = onNotification;

  React.useEffect(() => {
    let cleanup = () => {};
    let active = true;
    dispatch({ type: 'mode', mode: 'connecting' });
    client.me().then(
      (user) => {
        if (!active) return;
        dispatch({ type: 'session', user });
        const superuser = user.role === 'superuser';
        cleanup = subscribeToTaskList(client, (tasks) => dispatch({ type: 'tasks', tasks }), {
          userId: superuser ? null : user.email,
          pollIntervalMs: superuser ? ALL_POLL_INTERVAL_MS : USER_POLL_INTERVAL_MS,
          limit,
          onModeChange: (mode) => dispatch({ type: 'mode', mode }),
          onError: (error) => dispatch({ type: 'error', error: error.message }),
        });
      },
      (/** @type {Error} */ error) => {
        if (active) dispatch({ type: 'error', error: error.message });
      },
    );
    return () => {
      active = false;
      cleanup();
    };
  }, [client, limit]);

  React.useEffect(() => {
    for (const note of state.notifications) {
      if (delivered.current.has(note.id)) continue;
      delivered.current.add(note.id);
      if (notify.current) notify.current(note);
    }
  }, [state.notifications]);

  const value = React.useMemo(
    () => ({
      ...state,
      isSuperuser: !!state.user && state.user.role === 'superuser',
      client,
      dismissNotification: (/** @type {string} */ id) => dispatch({ type: 'dismiss', id }),
      getTask: (/** @type {string} */ taskId) => state.tasks.find((task) => task.id === taskId),
    }),
    [state, client],
  );
  return React.createElement(BackgroundTaskContext.Provider, { value }, children);
}

/**
 * The provider's state and helpers.
 * @returns {BackgroundTaskContextValue}
 */
export function useBackgroundTasks() {
  const value = React.useContext(BackgroundTaskContext);
  if (!value) throw new Error('useBackgroundTasks() must be used inside <BackgroundTaskProvider>');
  return value;
}

/**
 * One task, followed live over its own stream (progress, then result or error).
 * @param {string | null | undefined} taskId
 * @returns {UseTaskResult}
 */
export function useTask(taskId) {
  const { client, tasks } = useBackgroundTasks();
  const [followed, setFollowed] = React.useState(
    /** @type {{ taskId: string | null, task: Task | null, error: string | null, done: boolean, items: unknown[] }} */ ({
      taskId: null,
      task: null,
      error: null,
      done: false,
      items: [],
    }),
  );

  React.useEffect(() => {
    if (!taskId) return undefined;
    setFollowed({ taskId, task: null, error: null, done: false, items: [] });
    return followTask(
      client,
      taskId,
      (task) => setFollowed((current) => ({ ...current, taskId, task })),
      (task) => setFollowed((current) => ({ ...current, taskId, task, error: null, done: true })),
      (message, details) =>
        setFollowed((current) => ({
          ...current,
          taskId,
          task: details.task || current.task,
          error: message,
          done: true,
        })),
      (item, index) =>
        setFollowed((current) => {
          const items = current.items.slice();
          items[index] = item;
          return { ...current, items };
        }),
    );
  }, [client, taskId]);

  const listed = taskId ? tasks.find((task) => task.id === taskId) || null : null;
  const own = followed.taskId === taskId ? followed : null;
  // The list and the task's own stream both carry updates; show whichever is newer.
  let task = own && own.task ? own.task : listed;
  if (own && own.task && listed && listed.version > own.task.version) task = listed;
  return { task, error: own ? own.error : null, done: own ? own.done : false, items: own ? own.items : [] };
}
