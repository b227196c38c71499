// @ts-check
/**
 * @file The superuser dashboard: every user's tasks, live. Counts per status, filters and text
 * search, an expandable detail row per task, cancel/retry per row and for a selection.
 */

import { bulk, cancelTask, retryTask } from '/client/api.js';
import { subscribeToAllTasks, subscribeToTask } from '/client/backgroundTaskService.js';

import { badge, byId, clear, h, progressBar, reconcile, setBadge, setProgress, toast } from './dom.js';
import { formatTime, isTerminal, percent, taskDuration, taskName } from './format.js';
import { questionItems, questionsOf, resultSummary } from './questions.js';
import { listErrorReporter, redirectIfSignedOut, startSession } from './session.js';

/** @typedef {import('../client/index.js').Task} Task */

const STATUSES = ['waiting', 'pending', 'processing', 'completed', 'failed', 'cancelled'];
const COLUMNS = 8;

const filters = {
  status: /** @type {HTMLSelectElement} */ (byId('filter-status')),
  type: /** @type {HTMLSelectElement} */ (byId('filter-type')),
  user: /** @type {HTMLSelectElement} */ (byId('filter-user')),
  search: /** @type {HTMLInputElement} */ (byId('filter-search')),
};
const selectAll = /** @type {HTMLInputElement} */ (byId('select-all'));
const bulkCancel = /** @type {HTMLButtonElement} */ (byId('bulk-cancel'));
const bulkRetry = /** @type {HTMLButtonElement} */ (byId('bulk-retry'));

/** @type {Task[]} */
let allTasks = [];
/** @type {Task[]} */
let shown = [];
const selected = new Set();
const expanded = new Set();
/** @type {Map<string, import('./dom.js').RowView & { tick: (now: number) => void }>} */
let views = new Map();

const canCancel = (/** @type {Task} */ task) => !isTerminal(task.status);
const canRetry = (/** @type {Task} */ task) => task.status === 'failed' || task.status === 'cancelled';

/**
 * @param {() => Promise<unknown>} action
 * @param {string} what
 */
async function act(action, what) {
  try {
    await action();
  } catch (error) {
    if (redirectIfSignedOut(error)) return;
    toast(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, 'error');
  }
}

/**
 * The detail row's content for `task`, with the partial output received so far while it runs.
 * @param {Task} task
 * @param {unknown[]} partial
 * @returns {HTMLElement}
 */
function details(task, partial) {
  /** @type {[string, string][]} */
  const facts = [
    ['Id', task.id],
    ['User', task.user_id],
    ['Type', task.task_type],
    ['Description', task.description || '—'],
    ['Attempt', `${task.attempt} of ${task.max_attempts}`],
    ['Created', formatTime(task.created_at)],
    ['Started', formatTime(task.started_at)],
    ['Finished', formatTime(task.completed_at)],
  ];
  if (task.error) facts.push(['Error', task.error]);
  const list = h(
    'dl',
    { class: 'facts' },
    facts.flatMap(([term, value]) => [h('dt', { text: term }), h('dd', { text: value })]),
  );
  const parts = [list, h('h3', { text: 'Parameters' }), h('pre', { class: 'json', text: JSON.stringify(task.params, null, 2) })];
  const questions = questionsOf(task.result);
  if (questions) {
    parts.push(h('h3', { text: resultSummary(task.result, questions.length) }));
    parts.push(h('ol', { class: 'question-list compact' }, questionItems(questions)));
  } else if (task.result !== null && task.result !== undefined) {
    parts.push(h('h3', { text: 'Result' }), h('pre', { class: 'json', text: JSON.stringify(task.result, null, 2) }));
  } else if (partial.length > 0) {
    const count = `${partial.length} ${partial.length === 1 ? 'question' : 'questions'} so far`;
    parts.push(h('h3', { text: count }));
    parts.push(h('ol', { class: 'question-list compact' }, questionItems(/** @type {any[]} */ (partial))));
  }
  return h('div', { class: 'details' }, parts);
}

/**
 * The two rows of one task: the summary row and its (collapsible) details.
 * @param {Task} initial
 */
function taskRows(initial) {
  let task = initial;
  const detailId = `details-${task.id}`;
  const check = /** @type {HTMLInputElement} */ (
    h('input', {
      attrs: { type: 'checkbox' },
      on: {
        change: () => {
          if (check.checked) selected.add(task.id);
          else selected.delete(task.id);
          updateSelection();
        },
      },
    })
  );
  const toggleName = h('span', { class: 'task-name' });
  const toggle = h(
    'button',
    {
      class: 'row-toggle',
      attrs: { type: 'button', 'aria-expanded': 'false', 'aria-controls': detailId },
      on: {
        click: () => {
          if (expanded.has(task.id)) expanded.delete(task.id);
          else expanded.add(task.id);
          render(task);
        },
      },
    },
    [h('span', { class: 'chevron', attrs: { 'aria-hidden': 'true' } }), toggleName],
  );
  const idText = h('span', { class: 'task-id' });
  const user = h('td', { class: 'user' });
  const type = h('td', {});
  const status = badge(task.status);
  const bar = progressBar('Progress');
  const progressText = h('span', { class: 'progress-text' });
  const description = h('span', { class: 'progress-description' });
  const duration = h('td', { class: 'nowrap duration' });
  const cancel = h('button', {
    class: 'button small danger',
    text: 'Cancel',
    attrs: { type: 'button' },
    on: { click: () => act(() => cancelTask(task.id), 'Cancel') },
  });
  const retry = h('button', {
    class: 'button small',
    text: 'Retry',
    attrs: { type: 'button' },
    on: { click: () => act(() => retryTask(task.id), 'Retry') },
  });
  const row = h('tr', { class: 'task-row', attrs: { 'data-task-id': task.id } }, [
    h('td', { class: 'check-col' }, [check]),
    h('td', {}, [toggle, idText]),
    user,
    type,
    h('td', {}, [status]),
    h('td', { class: 'progress-cell' }, [h('div', { class: 'progress-line' }, [bar, progressText]), description]),
    duration,
    h('td', { class: 'actions' }, [cancel, retry]),
  ]);
  const detailCell = h('td', { attrs: { colspan: COLUMNS } });
  const detailRow = h('tr', { class: 'detail-row', attrs: { id: detailId }, hidden: true }, [detailCell]);
  let renderedVersion = -1;
  /** The task's partial output (a generation's questions so far), followed while the row is open. */
  let partial = /** @type {unknown[]} */ ([]);
  let stopPartial = /** @type {(() => void) | null} */ (null);

  /** Follows the running task's partial output while its details are open. */
  function followPartial() {
    const open = expanded.has(task.id);
    if (open && !stopPartial && !isTerminal(task.status)) {
      stopPartial = subscribeToTask(task.id, null, null, null, (item, index) => {
        if (index !== partial.length) return;
        partial = [...partial, item];
        renderedVersion = -1;
        render(task);
      });
    } else if (!open && stopPartial) {
      stopPartial();
      stopPartial = null;
      partial = [];
    }
  }

  /** @param {Task} next */
  function render(next) {
    task = next;
    const name = taskName(next);
    toggleName.textContent = name;
    idText.textContent = next.id;
    user.textContent = next.user_id;
    type.textContent = next.task_type;
    setBadge(status, next.status);
    setProgress(bar, percent(next), next.status);
    bar.setAttribute('aria-label', `Progress of ${name}`);
    progressText.textContent = `${Math.round(percent(next))}%`;
    description.textContent = isTerminal(next.status) ? '' : next.description || '';
    check.checked = selected.has(next.id);
    check.setAttribute('aria-label', `Select ${name}`);
    cancel.hidden = !canCancel(next);
    cancel.setAttribute('aria-label', `Cancel ${name}`);
    retry.hidden = !canRetry(next);
    retry.setAttribute('aria-label', `Retry ${name}`);
    const open = expanded.has(next.id);
    toggle.setAttribute('aria-expanded', String(open));
    detailRow.hidden = !open;
    // The details can be large (a result with 50 questions): rebuild them only when they changed.
    if (open && renderedVersion !== next.version) {
      clear(detailCell);
      detailCell.appendChild(details(next, partial));
      renderedVersion = next.version;
    }
    followPartial();
    tick(Date.now());
  }

  /** @param {number} now */
  function tick(now) {
    duration.textContent = taskDuration(task, now);
  }

  return { nodes: [row, detailRow], update: render, tick };
}

/** @param {Task} task */
function matches(task) {
  if (filters.status.value && task.status !== filters.status.value) return false;
  if (filters.type.value && task.task_type !== filters.type.value) return false;
  if (filters.user.value && task.user_id !== filters.user.value) return false;
  const needle = filters.search.value.trim().toLowerCase();
  if (!needle) return true;
  return [task.id, task.label, task.description, task.user_id, task.task_type, task.error, task.status]
    .some((field) => typeof field === 'string' && field.toLowerCase().includes(needle));
}

/**
 * Refills a filter's options with the values seen, keeping the current choice.
 * @param {HTMLSelectElement} select
 * @param {string[]} values
 */
function fillOptions(select, values) {
  const chosen = select.value;
  const wanted = [...new Set([...values, ...(chosen ? [chosen] : [])])].sort();
  const existing = [...select.options].slice(1).map((option) => option.value);
  if (existing.join('\n') === wanted.join('\n')) return;
  while (select.options.length > 1) select.remove(1);
  for (const value of wanted) select.appendChild(h('option', { text: value, attrs: { value } }));
  select.value = chosen;
}

/** The count buttons, made once and updated in place so focus survives live updates. */
const countViews = STATUSES.map((status) => {
  const number = h('span', { class: 'count-number', text: '0' });
  const button = h(
    'button',
    {
      class: 'count',
      attrs: { type: 'button', 'data-status': status, 'aria-pressed': 'false' },
      on: {
        click: () => {
          filters.status.value = filters.status.value === status ? '' : status;
          renderAll();
        },
      },
    },
    [number, h('span', { class: 'count-label', text: status })],
  );
  byId('status-counts').appendChild(h('li', {}, [button]));
  return { status, number, button };
});
const totalCount = h('span', { class: 'count-number', text: '0' });
byId('status-counts').appendChild(
  h('li', {}, [h('span', { class: 'count total' }, [totalCount, h('span', { class: 'count-label', text: 'total' })])]),
);

function renderCounts() {
  const counts = new Map();
  for (const task of allTasks) counts.set(task.status, (counts.get(task.status) || 0) + 1);
  for (const view of countViews) {
    view.number.textContent = String(counts.get(view.status) || 0);
    view.button.setAttribute('aria-pressed', String(filters.status.value === view.status));
  }
  totalCount.textContent = String(allTasks.length);
}

function updateSelection() {
  const known = new Set(allTasks.map((task) => task.id));
  for (const id of selected) if (!known.has(id)) selected.delete(id);
  byId('selection-count').textContent = `${selected.size} selected`;
  const chosen = allTasks.filter((task) => selected.has(task.id));
  bulkCancel.disabled = !chosen.some(canCancel);
  bulkRetry.disabled = !chosen.some(canRetry);
  const shownSelected = shown.filter((task) => selected.has(task.id)).length;
  selectAll.checked = shown.length > 0 && shownSelected === shown.length;
  selectAll.indeterminate = shownSelected > 0 && shownSelected < shown.length;
}

function renderAll() {
  fillOptions(filters.type, [...new Set(allTasks.map((task) => task.task_type))]);
  fillOptions(filters.user, [...new Set(allTasks.map((task) => task.user_id))]);
  renderCounts();
  shown = allTasks.filter(matches);
  byId('list-empty').hidden = shown.length > 0;
  byId('list-empty').textContent = allTasks.length ? 'No tasks match the filters.' : 'No tasks yet.';
  byId('task-table').hidden = shown.length === 0;
  views = /** @type {any} */ (reconcile(byId('task-rows'), shown, (task) => task.id, taskRows));
  updateSelection();
}

/**
 * Runs a bulk action on the selected tasks it applies to, and reports the outcome.
 * @param {'cancel' | 'retry'} action
 * @param {(task: Task) => boolean} applies
 */
async function runBulk(action, applies) {
  const ids = allTasks.filter((task) => selected.has(task.id) && applies(task)).map((task) => task.id);
  if (!ids.length) return;
  const status = byId('bulk-result');
  status.textContent = `${action === 'cancel' ? 'Cancelling' : 'Retrying'} ${ids.length}…`;
  try {
    const outcome = await bulk(action, ids);
    status.textContent = describeBulk(action, ids.length, outcome);
    selected.clear();
    renderAll();
  } catch (error) {
    if (redirectIfSignedOut(error)) return;
    status.textContent = `${action} failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * "3 of 3 cancelled", from the per-id outcomes the server returns.
 * @param {string} action
 * @param {number} asked
 * @param {any} outcome
 */
function describeBulk(action, asked, outcome) {
  const results = outcome && Array.isArray(outcome.results) ? outcome.results : null;
  if (!results) return `${action}: ${asked} requested`;
  const ok = results.filter((/** @type {any} */ result) => result && (result.ok === true)).length;
  return `${ok} of ${asked} ${action === 'cancel' ? 'cancelled' : 'retried'}`;
}

bulkCancel.addEventListener('click', () => runBulk('cancel', canCancel));
bulkRetry.addEventListener('click', () => runBulk('retry', canRetry));
selectAll.addEventListener('change', () => {
  for (const task of shown) {
    if (selectAll.checked) selected.add(task.id);
    else selected.delete(task.id);
  }
  renderAll();
});
for (const control of [filters.status, filters.type, filters.user]) control.addEventListener('change', renderAll);
filters.search.addEventListener('input', renderAll);
byId('filters').addEventListener('submit', (event) => event.preventDefault());

// Durations of running tasks tick every second without waiting for a change from the server.
setInterval(() => {
  const now = Date.now();
  for (const task of shown) {
    if (!isTerminal(task.status)) {
      const view = views.get(task.id);
      if (view) view.tick(now);
    }
  }
}, 1000);

const MODE_TEXT = { live: '● Live', polling: 'Live stream unavailable: refreshing every 3 s', connecting: 'Connecting…', idle: '' };

const user = await startSession();
if (user) {
  const errors = listErrorReporter('tasks', (message) => toast(message, 'error'));
  subscribeToAllTasks(
    (tasks) => {
      errors.onLoaded();
      allTasks = tasks;
      renderAll();
    },
    {
      limit: 500,
      onModeChange: (mode) => {
        byId('list-mode').textContent = MODE_TEXT[mode];
      },
      onError: errors.onError,
    },
  );
}
