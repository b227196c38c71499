// @ts-check
/**
 * @file A live list of tasks: one snapshot from `/api/getBackgroundTasks`, then the changes from
 * the `/api/subscribeToTasks` stream merged in, re-read whenever the stream asks for it
 * (`resync`) or reconnects. When the stream cannot be had, the list is polled instead.
 */

/**
 * @typedef {import('./index.js').Task} Task
 * @typedef {import('./index.js').TasklaneClient} TasklaneClient
 * @typedef {import('./index.js').ListSubscriptionOptions} ListSubscriptionOptions
 * @typedef {import('./index.js').ListMode} ListMode
 */

/** How often a user's list is polled when the live stream is unavailable. */
export const USER_POLL_INTERVAL_MS = 5000;
/** How often the all-tasks list is polled when the live stream is unavailable. */
export const ALL_POLL_INTERVAL_MS = 3000;
/** How many tasks a list keeps: the server's default page size. */
export const DEFAULT_LIST_LIMIT = 100;
/** Interrupted stream connections in a row (never opened in between) before polling instead. */
export const MAX_STREAM_FAILURES = 3;

/**
 * Whether `a` is a later state of a task than `b`: by `version`, else by `updated_at`.
 * @param {Task} a
 * @param {Task} b
 */
export function isNewer(a, b) {
  if (typeof a.version === 'number' && typeof b.version === 'number') return a.version > b.version;
  return (a.updated_at || 0) >= (b.updated_at || 0);
}

/**
 * A copy of `tasks`, newest first (by creation time, then id).
 * @param {Iterable<Task>} tasks
 * @returns {Task[]}
 */
export function sortNewestFirst(tasks) {
  return [...tasks].sort(
    (a, b) => (b.created_at || 0) - (a.created_at || 0) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
  );
}

/**
 * Keeps `callback` supplied with the current list (newest first) until the returned cleanup is
 * called.
 *
 * @param {TasklaneClient} client
 * @param {(tasks: Task[]) => void} callback
 * @param {ListSubscriptionOptions & { userId?: string | null, pollIntervalMs: number }} options
 * @returns {() => void} cleanup
 */
export function subscribeToTaskList(client, callback, options) {
  const userId = options.userId || null;
  const limit = options.limit || DEFAULT_LIST_LIMIT;
  /** @type {Map<string, Task>} */
  let tasks = new Map();
  // Stream changes are numbered so a snapshot that was requested before a change cannot undo it.
  let changeSeq = 0;
  /** @type {Map<string, number>} task id -> seq of its last streamed update */
  const touched = new Map();
  /** @type {Map<string, number>} task id -> seq of its streamed deletion */
  const deleted = new Map();
  let latestRequested = 0;
  let latestApplied = 0;
  let stopped = false;
  let streamFailures = 0;
  /** @type {ListMode} */
  let mode = 'connecting';
  /** @type {import('./sse.js').StreamHandle | null} */
  let stream = null;
  /** @type {ReturnType<typeof setInterval> | null} */
  let pollTimer = null;

  /** @param {ListMode} next */
  const setMode = (next) => {
    if (mode === next) return;
    mode = next;
    if (options.onModeChange) options.onModeChange(next);
  };

  /** @param {Task} task */
  const belongs = (task) => !userId || task.user_id === userId;

  const emit = () => {
    if (stopped) return;
    const sorted = sortNewestFirst(tasks.values()).filter(belongs).slice(0, limit);
    // Forget what fell off the end, so a long-lived page does not grow without bound.
    if (tasks.size > sorted.length) tasks = new Map(sorted.map((task) => [task.id, task]));
    callback(sorted);
  };

  const refresh = async () => {
    const requestedAt = changeSeq;
    const ticket = ++latestRequested;
    try {
      const list = await client.listTasks({ userId: userId || undefined, limit });
      if (stopped || ticket < latestApplied) return;
      latestApplied = ticket;
      /** @type {Map<string, Task>} */
      const next = new Map();
      for (const task of list) {
        if ((deleted.get(task.id) ?? -1) > requestedAt) continue;
        next.set(task.id, task);
      }
      for (const [id, task] of tasks) {
        if ((touched.get(id) ?? -1) <= requestedAt) continue;
        const listed = next.get(id);
        if (!listed || isNewer(task, listed)) next.set(id, task);
      }
      tasks = next;
      for (const [id, seq] of touched) if (seq <= requestedAt) touched.delete(id);
      for (const [id, seq] of deleted) if (seq <= requestedAt) deleted.delete(id);
      emit();
    } catch (error) {
      if (!stopped && options.onError) options.onError(/** @type {Error} */ (error));
    }
  };

  /** @param {any} change */
  const applyChange = (change) => {
    if (!change || typeof change !== 'object') return;
    if (change.type === 'update' && change.task && typeof change.task.id === 'string') {
      const current = tasks.get(change.task.id);
      touched.set(change.task.id, ++changeSeq);
      deleted.delete(change.task.id);
      if (!current || isNewer(change.task, current)) tasks.set(change.task.id, change.task);
      emit();
    } else if (change.type === 'deleted' && typeof change.taskId === 'string') {
      deleted.set(change.taskId, ++changeSeq);
      touched.delete(change.taskId);
      if (tasks.delete(change.taskId)) emit();
    } else if (change.type === 'resync') {
      refresh();
    }
  };

  const startPolling = () => {
    if (stopped || pollTimer !== null) return;
    if (stream) stream.close();
    stream = null;
    setMode('polling');
    refresh();
    pollTimer = setInterval(refresh, options.pollIntervalMs);
  };

  const canStream = options.stream !== false;
  if (canStream) {
    stream = client.openStream('/api/subscribeToTasks', {
      onOpen() {
        streamFailures = 0;
        setMode('live');
        // Changes made while no stream was open are only in a fresh snapshot.
        refresh();
      },
      onMessage(message) {
        let change;
        try {
          change = JSON.parse(message.data);
        } catch {
          return;
        }
        applyChange(change);
      },
      onError(error) {
        if (error.fatal || ++streamFailures >= MAX_STREAM_FAILURES) {
          startPolling();
        } else {
          setMode('connecting');
        }
      },
    });
    // Show something at once even if the stream is slow to open.
    refresh();
  } else {
    startPolling();
  }

  return () => {
    stopped = true;
    if (stream) stream.close();
    if (pollTimer !== null) clearInterval(pollTimer);
    stream = null;
    pollTimer = null;
  };
}
