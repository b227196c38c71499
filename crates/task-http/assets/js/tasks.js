// @ts-check
/**
 * @file The "my tasks" page: start a question generation, follow it live (progress bar and
 * description), then show the questions or the error; below, the user's task list, live, with a
 * toast whenever one of them finishes.
 */

import { cancelTask, retryTask, startGeneration } from '/client/api.js';
import { subscribeToTask, subscribeToUserTasks } from '/client/backgroundTaskService.js';

import { badge, byId, clear, h, progressBar, reconcile, setBadge, setProgress, toast } from './dom.js';
import { formatTime, isTerminal, percent, taskDuration, taskName, waitingText } from './format.js';
import { questionItems, questionsOf, resultSummary } from './questions.js';
import { listErrorReporter, redirectIfSignedOut, startSession } from './session.js';
import { showWorkflow } from './workflow.js';

/** @typedef {import('../client/index.js').Task} Task */

const form = /** @type {HTMLFormElement} */ (byId('generate-form'));
const submit = /** @type {HTMLButtonElement} */ (byId('generate-submit'));
const formError = byId('generate-error');
const current = {
  section: byId('current'),
  status: byId('current-status'),
  label: byId('current-label'),
  progress: byId('current-progress'),
  description: byId('current-description'),
  cancel: /** @type {HTMLButtonElement} */ (byId('current-cancel')),
  retry: /** @type {HTMLButtonElement} */ (byId('current-retry')),
  error: byId('current-error'),
  errorMessage: byId('current-error-message'),
  result: byId('current-result'),
  resultHeading: byId('current-result-heading'),
  questions: byId('question-list'),
};

/** The task shown in the "Generation" panel. */
let followedId = /** @type {string | null} */ (null);
let stopFollowing = () => {};

/** @param {string} message */
function showFormError(message) {
  formError.textContent = message;
  formError.hidden = !message;
}

/**
 * Shows `task`'s live state in the panel.
 * @param {Task} task
 */
function showState(task) {
  setBadge(current.status, task.status);
  current.label.textContent = taskName(task);
  setProgress(current.progress, percent(task), task.status);
  current.description.textContent = task.description || '';
  current.cancel.hidden = isTerminal(task.status);
  current.retry.hidden = !(task.status === 'failed' || task.status === 'cancelled');
}

/**
 * Follows `taskId` in the panel until it finishes, replacing whatever the panel showed.
 * @param {string} taskId
 */
function follow(taskId) {
  stopFollowing();
  followedId = taskId;
  current.section.hidden = false;
  current.error.hidden = true;
  current.result.hidden = true;
  clear(current.questions);
  setBadge(current.status, 'pending');
  current.label.textContent = taskId;
  current.description.textContent = 'Waiting for the server…';
  setProgress(current.progress, 0);
  current.cancel.hidden = false;
  current.retry.hidden = true;
  stopFollowing = subscribeToTask(
    taskId,
    (task) => showState(task),
    (task) => {
      showState(task);
      current.description.textContent = `Completed in ${taskDuration(task, Date.now())}`;
      const questions = questionsOf(task.result);
      current.resultHeading.textContent = questions ? resultSummary(task.result, questions.length) : 'Completed';
      clear(current.questions);
      if (questions) for (const item of questionItems(questions)) current.questions.appendChild(item);
      current.result.hidden = false;
    },
    (message, details) => {
      if (details.task) showState(details.task);
      setBadge(current.status, details.task ? details.task.status : details.type);
      current.progress.dataset.state = 'failed';
      current.errorMessage.textContent = message;
      current.error.hidden = false;
      current.cancel.hidden = true;
      current.retry.hidden = !details.task || !(details.task.status === 'failed' || details.task.status === 'cancelled');
    },
    (item, index) => {
      // Each question as the model finishes it; the completed result replaces the list.
      if (!item || typeof item !== 'object' || index !== current.questions.children.length) return;
      const [node] = questionItems([/** @type {any} */ (item)]);
      node.setAttribute('aria-label', `Question ${index + 1}`);
      current.questions.appendChild(node);
      current.resultHeading.textContent = `${index + 1} ${index === 0 ? 'question' : 'questions'} so far`;
      current.result.hidden = false;
    },
  );
  current.section.scrollIntoView({ block: 'nearest' });
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  showFormError('');
  const data = new FormData(form);
  const amount = Number(data.get('amount'));
  if (!Number.isInteger(amount) || amount < 1 || amount > 50) {
    showFormError('Amount must be a whole number from 1 to 50.');
    byId('amount').focus();
    return;
  }
  const category = String(data.get('category') || '').trim();
  if (!category) {
    showFormError('Enter a category.');
    byId('category').focus();
    return;
  }
  const then = String(data.get('then') || '');
  submit.disabled = true;
  try {
    const started = await startGeneration({
      amount,
      category,
      ageGroup: /** @type {any} */ (String(data.get('ageGroup'))),
      difficulty: /** @type {any} */ (String(data.get('difficulty'))),
      provider: String(data.get('provider')),
      ...(then ? { then: /** @type {any} */ (then.split(',')) } : {}),
    });
    follow(started.taskId);
    if (typeof started.workflowId === 'string') showWorkflow(started.workflowId);
  } catch (error) {
    if (redirectIfSignedOut(error)) return;
    showFormError(error instanceof Error ? error.message : String(error));
  } finally {
    submit.disabled = false;
  }
});

current.cancel.addEventListener('click', async () => {
  if (!followedId) return;
  current.cancel.disabled = true;
  try {
    await cancelTask(followedId);
  } catch (error) {
    if (!redirectIfSignedOut(error)) toast(error instanceof Error ? error.message : String(error), 'error');
  } finally {
    current.cancel.disabled = false;
  }
});

current.retry.addEventListener('click', async () => {
  if (!followedId) return;
  const taskId = followedId;
  try {
    await retryTask(taskId);
    follow(taskId);
  } catch (error) {
    if (!redirectIfSignedOut(error)) toast(error instanceof Error ? error.message : String(error), 'error');
  }
});

/**
 * A row of the task list, updated in place by live changes.
 * @param {Task} initial
 */
function taskRow(initial) {
  let task = initial;
  const name = h('span', { class: 'task-name' });
  const id = h('span', { class: 'task-id' });
  const status = badge(task.status);
  const waiting = h('span', { class: 'task-waiting' });
  const bar = progressBar(`Progress of ${taskName(task)}`);
  const created = h('td', { class: 'nowrap' });
  const view = h('button', {
    class: 'button small',
    text: 'View',
    attrs: { type: 'button' },
    on: { click: () => follow(task.id) },
  });
  const graph = h('button', {
    class: 'button small',
    text: 'Workflow',
    attrs: { type: 'button' },
    on: { click: () => task.workflow_id && showWorkflow(task.workflow_id) },
  });
  const row = h('tr', {}, [
    h('td', {}, [name, id]),
    h('td', {}, [status, waiting]),
    h('td', { class: 'progress-cell' }, [bar]),
    created,
    h('td', { class: 'actions' }, [view, graph]),
  ]);
  return {
    nodes: [row],
    /** @param {Task} next */
    update(next) {
      task = next;
      name.textContent = taskName(next);
      id.textContent = next.id;
      setBadge(status, next.status);
      waiting.textContent = next.status === 'waiting' ? waitingText(next) : '';
      setProgress(bar, percent(next), next.status);
      created.textContent = formatTime(next.created_at);
      view.setAttribute('aria-label', `View ${taskName(next)}`);
      graph.hidden = !next.workflow_id;
      graph.setAttribute('aria-label', `Workflow of ${taskName(next)}`);
      bar.setAttribute('aria-label', `Progress of ${taskName(next)}`);
    },
  };
}

/** The status each task had at the last update, to notice the moment one finishes. */
const lastStatus = new Map();
let firstList = true;

/** @param {Task[]} tasks */
function showList(tasks) {
  for (const task of tasks) {
    const before = lastStatus.get(task.id);
    if (!firstList && before && !isTerminal(before) && isTerminal(task.status)) {
      const name = taskName(task);
      if (task.status === 'completed') toast(`Finished: ${name}`, 'success');
      else if (task.status === 'cancelled') toast(`Cancelled: ${name}`, 'info');
      else toast(`Failed: ${name}${task.error ? ` — ${task.error}` : ''}`, 'error');
    }
    lastStatus.set(task.id, task.status);
  }
  firstList = false;
  byId('list-empty').hidden = tasks.length > 0;
  byId('task-table').hidden = tasks.length === 0;
  reconcile(byId('task-rows'), tasks, (task) => task.id, taskRow);
}

const MODE_TEXT = { live: 'Live', polling: 'Live stream unavailable: refreshing every 5 s', connecting: 'Connecting…', idle: '' };

const user = await startSession();
if (user) {
  const errors = listErrorReporter('your tasks', (message) => toast(message, 'error'));
  subscribeToUserTasks(
    user.email,
    (tasks) => {
      errors.onLoaded();
      showList(tasks);
    },
    {
      onModeChange: (mode) => {
        byId('list-mode').textContent = MODE_TEXT[mode];
      },
      onError: errors.onError,
    },
  );
}
