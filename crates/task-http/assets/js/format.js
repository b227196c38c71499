// @ts-check
/**
 * @file How the pages show numbers, times and tasks.
 */

/** @typedef {import('../client/index.js').Task} Task */

/**
 * @param {string} status
 */
export const isTerminal = (status) => status === 'completed' || status === 'failed' || status === 'cancelled';

/**
 * The task's progress in percent of its `total`.
 * @param {Task} task
 */
export function percent(task) {
  if (task.status === 'completed') return 100;
  const total = task.total > 0 ? task.total : 100;
  return Math.max(0, Math.min(100, (task.progress / total) * 100));
}

/**
 * A short duration: `850 ms`, `12 s`, `3 min 04 s`, `2 h 05 min`.
 * @param {number} ms
 */
export function formatDuration(ms) {
  const value = Math.max(0, ms);
  if (value < 1000) return `${Math.round(value)} ms`;
  const seconds = Math.floor(value / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/**
 * What a task waiting for its parents shows: "waiting for N tasks".
 * @param {Task} task
 */
export function waitingText(task) {
  const count = task.waiting_for || 0;
  return count === 1 ? 'waiting for 1 task' : `waiting for ${count} tasks`;
}

/**
 * How long a task has run (ticking while it runs), or waited while pending.
 * @param {Task} task
 * @param {number} now
 */
export function taskDuration(task, now) {
  const start = task.started_at || task.created_at;
  if (task.status === 'waiting') return waitingText(task);
  if (task.status === 'pending') return `queued ${formatDuration(now - task.created_at)}`;
  const end = isTerminal(task.status) ? task.completed_at || task.updated_at : now;
  return formatDuration(end - start);
}

/**
 * A timestamp as local date and time.
 * @param {number | null | undefined} ms
 */
export function formatTime(ms) {
  if (!ms) return '—';
  const date = new Date(ms);
  const today = new Date();
  return date.toDateString() === today.toDateString() ? date.toLocaleTimeString() : date.toLocaleString();
}

/**
 * The name a task is shown under.
 * @param {Task} task
 */
export function taskName(task) {
  return task.label || task.description || task.task_type;
}
