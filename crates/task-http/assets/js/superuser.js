// @ts-check
/**
 * @file The superuser dashboard: every user's tasks, live. Counts per status come from the
 * server (every task of the database); filters and text search run on the server, one page at a
 * time through the whole history; the live list stream patches the page shown. An expandable
 * detail row per task, cancel/retry per row and for a selection.
 */

import { bulk, cancelTask, getClient, queryTasks, retryTask, taskCounts } from '/client/api.js';
import { subscribeToTask } from '/client/backgroundTaskService.js';
import { isNewer, sortNewestFirst } from '/client/taskList.js';

import { badge, byId, clear, h, progressBar, reconcile, setBadge, setProgress, toast } from './dom.js';
import { formatTime, isTerminal, percent, taskDuration, taskName } from './format.js';
import { questionItems, questionsOf, resultSummary } from './questions.js';
import { listErrorReporter, redirectIfSignedOut, startSession } from './session.js';

/** @typedef {import('../client/index.js').Task} Task */

/** @type {import('../client/index.js').TaskStatus[]} */
const STATUSES = ['waiting', 'pending', 'processing', 'completed', 'failed', 'cancelled'];
const COLUMNS = 8;
/** Tasks per page. */
const PAGE_SIZE = 100;
/**
 * How long after a live change the counts are asked for again: longer than the server's 2 s
 * between counts, so an answer asked for this long after the last change includes it.
 */
const COUNTS_DELAY_MS = 2200;
/** How long typing in a text filter may pause before the page is loaded for it. */
const TYPING_DELAY_MS = 300;
/** Stream failures in a row (never opened in between) before the page is polled instead. */
const MAX_STREAM_FAILURES = 3;
const POLL_INTERVAL_MS = 3000;

const filters = {
  status: /** @type {HTMLSelectElement} */ (byId('filter-status')),
  type: /** @type {HTMLSelectElement} */ (byId('filter-type')),
  user: /** @type {HTMLInputElement} */ (byId('filter-user')),
  search: /** @type {HTMLInputElement} */ (byId('filter-search')),
};
const selectAll = /** @type {HTMLInputElement} */ (byId('select-all'));
const bulkCancel = /** @type {HTMLButtonElement} */ (byId('bulk-cancel'));
const bulkRetry = /** @type {HTMLButtonElement} */ (byId('bulk-retry'));

/** The page shown: the server's answer for the filters, patched by the live stream. */
/** @type {Map<string, Task>} */
let pageTasks = new Map();
/** @type {Task[]} */
let shown = [];
/** The cursor of each page seen so far (page 1 has none), so "Newer" goes back exactly. */
/** @type {(string | null)[]} */
let cursors = [null];
/** The page asked for, and the page shown (they differ while a request is out). */
let pageIndex = 0;
let shownIndex = 0;
/** @type {string | null} */
let nextCursor = null;
/** Requests of pages are numbered; only the newest one's answer is shown. */
let loadTicket = 0;
/** Live changes received while a page request is in flight, merged into its answer. */
/** @type {Map<string, Task> | null} */
let arrivedWhileLoading = null;
/** @type {import('../client/index.js').TaskCounts | null} */
let counts = null;
const usersSeen = new Set();
/** Pending application of what is typed in a text filter. */
/** @type {ReturnType<typeof setTimeout> | null} */
let typingTimer = null;
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

/**
 * Refills the type filter's options with the types the server counted, keeping the choice.
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

/** Suggestions for the user filter: every user seen on a page or the live stream. */
function fillUserSuggestions() {
  const list = byId('user-options');
  if (list.childElementCount === usersSeen.size) return;
  clear(list);
  for (const user of [...usersSeen].sort()) list.appendChild(h('option', { attrs: { value: user } }));
}

/** The count buttons, made once and updated in place so focus survives live updates. */
const countViews = STATUSES.map((status) => {
  const number = h('span', { class: 'count-number', text: '…' });
  const button = h(
    'button',
    {
      class: 'count',
      attrs: { type: 'button', 'data-status': status, 'aria-pressed': 'false' },
      on: {
        click: () => {
          filters.status.value = filters.status.value === status ? '' : status;
          reload();
        },
      },
    },
    [number, h('span', { class: 'count-label', text: status })],
  );
  byId('status-counts').appendChild(h('li', {}, [button]));
  return { status, number, button };
});
const totalCount = h('span', { class: 'count-number', attrs: { 'data-count': 'total' }, text: '…' });
byId('status-counts').appendChild(
  h('li', {}, [h('span', { class: 'count total' }, [totalCount, h('span', { class: 'count-label', text: 'total' })])]),
);

const numberFormat = new Intl.NumberFormat('en');

function renderCounts() {
  for (const view of countViews) {
    view.number.textContent = counts ? numberFormat.format(counts.byStatus[view.status] || 0) : '…';
    view.button.setAttribute('aria-pressed', String(filters.status.value === view.status));
  }
  totalCount.textContent = counts ? numberFormat.format(counts.total) : '…';
  if (counts) fillOptions(filters.type, Object.keys(counts.byType));
}

/** How many tasks match the filters, when the counts tell (no filter, or only status or type). */
function matchingCount() {
  if (!counts || applied.userId || applied.q) return null;
  const status = applied.status;
  const type = applied.type;
  if (status && type) return null;
  if (status) return counts.byStatus[/** @type {import('../client/index.js').TaskStatus} */ (status)] ?? 0;
  if (type) return counts.byType[type] ?? 0;
  return counts.total;
}

function renderPager() {
  // Paging waits for the page asked for: the next one's cursor is only known once it is shown,
  // and until then the rows are the previous query's.
  const loading = arrivedWhileLoading !== null;
  const first = shownIndex * PAGE_SIZE + 1;
  const matching = matchingCount();
  const range = shown.length ? `${numberFormat.format(first)}–${numberFormat.format(first + shown.length - 1)}` : '0';
  byId('page-info').textContent = loading
    ? 'Loading…'
    : `Page ${shownIndex + 1} · tasks ${range}` + (matching === null ? '' : ` of ${numberFormat.format(matching)}`);
  /** @type {HTMLButtonElement} */ (byId('page-newer')).disabled = loading || shownIndex === 0;
  /** @type {HTMLButtonElement} */ (byId('page-older')).disabled = loading || nextCursor === null;
}

function updateSelection() {
  const known = new Set(shown.map((task) => task.id));
  for (const id of selected) if (!known.has(id)) selected.delete(id);
  byId('selection-count').textContent = `${selected.size} selected`;
  const chosen = shown.filter((task) => selected.has(task.id));
  bulkCancel.disabled = !chosen.some(canCancel);
  bulkRetry.disabled = !chosen.some(canRetry);
  const shownSelected = chosen.length;
  selectAll.checked = shown.length > 0 && shownSelected === shown.length;
  selectAll.indeterminate = shownSelected > 0 && shownSelected < shown.length;
}

function renderAll() {
  renderCounts();
  shown = sortNewestFirst(pageTasks.values());
  const filtered = Boolean(applied.status || applied.type || applied.userId || applied.q);
  byId('list-empty').hidden = shown.length > 0;
  byId('list-empty').textContent = filtered || shownIndex > 0 ? 'No tasks match the filters.' : 'No tasks yet.';
  byId('task-table').hidden = shown.length === 0;
  views = /** @type {any} */ (reconcile(byId('task-rows'), shown, (task) => task.id, taskRows));
  fillUserSuggestions();
  renderPager();
  updateSelection();
}

/** The filters as `GET /api/tasks` parameters. */
function currentQuery() {
  return {
    status: filters.status.value || undefined,
    type: filters.type.value || undefined,
    userId: filters.user.value.trim().toLowerCase() || undefined,
    q: filters.search.value.trim() || undefined,
  };
}

/**
 * The filters of the page asked for: set when they are applied, so live changes are matched
 * against the page's query, not against text still being typed.
 */
let applied = currentQuery();

/**
 * Whether a task the live stream sent belongs under the current filters, as the server would
 * decide (`q`: case-insensitive, in label and description).
 * @param {Task} task
 */
function matches(task) {
  if (applied.status && task.status !== applied.status) return false;
  if (applied.type && task.task_type !== applied.type) return false;
  if (applied.userId && task.user_id !== applied.userId) return false;
  const needle = (applied.q || '').toLowerCase();
  if (!needle) return true;
  return [task.label, task.description].some((field) => typeof field === 'string' && field.toLowerCase().includes(needle));
}

/** Loads the page shown (again) from the server: after a filter change, paging, a reconnect or a resync. */
async function loadPage() {
  const ticket = ++loadTicket;
  arrivedWhileLoading = new Map();
  renderPager();
  try {
    const page = await queryTasks({ ...applied, limit: PAGE_SIZE, cursor: cursors[pageIndex] || undefined });
    if (ticket !== loadTicket) return;
    const next = new Map(page.tasks.map((task) => [task.id, task]));
    // A change that arrived while the request was out is newer than the page, or equal.
    for (const [id, task] of arrivedWhileLoading) {
      const listed = next.get(id);
      if (listed ? isNewer(task, listed) : belongsOnPage(task, next)) next.set(id, task);
      if (!matches(task)) next.delete(id);
    }
    arrivedWhileLoading = null;
    pageTasks = next;
    shownIndex = pageIndex;
    nextCursor = page.nextCursor;
    cursors = cursors.slice(0, pageIndex + 1);
    if (nextCursor) cursors.push(nextCursor);
    for (const task of page.tasks) usersSeen.add(task.user_id);
    errors.onLoaded();
    renderAll();
  } catch (error) {
    if (ticket === loadTicket) {
      arrivedWhileLoading = null;
      pageIndex = shownIndex;
      renderPager();
    }
    errors.onError(/** @type {Error} */ (error));
  }
}

/** Back to the first page for new filters. */
function reload() {
  // Typing still waiting to be applied is applied now, once.
  if (typingTimer !== null) clearTimeout(typingTimer);
  typingTimer = null;
  applied = currentQuery();
  pageIndex = 0;
  cursors = [null];
  selected.clear();
  renderCounts();
  loadPage();
}

/**
 * Whether a task that is not on the page belongs on it: only the first page takes new tasks,
 * and only those newer than its oldest (an older one belongs on a later page).
 * @param {Task} task
 * @param {Map<string, Task>} page
 */
function belongsOnPage(task, page) {
  if (pageIndex !== 0 || shownIndex !== 0 || !matches(task)) return false;
  if (page.size < PAGE_SIZE) return true;
  const oldest = sortNewestFirst(page.values()).at(-1);
  return !oldest || sortNewestFirst([task, oldest])[0] === task;
}

let renderQueued = false;
function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderAll();
  });
}

/** @type {ReturnType<typeof setTimeout> | null} */
let countsTimer = null;
let lastChangeAt = 0;
/**
 * Asks for the counts again after live changes: every `COUNTS_DELAY_MS` while changes keep
 * coming, and once more when that long has passed since the last one, so the last answer is
 * never older than the last change.
 */
function queueCounts() {
  lastChangeAt = Date.now();
  if (countsTimer !== null) return;
  const fire = () => {
    const askedAt = Date.now();
    countsTimer = lastChangeAt > askedAt - COUNTS_DELAY_MS ? setTimeout(fire, COUNTS_DELAY_MS) : null;
    loadCounts();
  };
  countsTimer = setTimeout(fire, COUNTS_DELAY_MS);
}

async function loadCounts() {
  try {
    counts = await taskCounts();
    renderCounts();
    renderPager();
  } catch (error) {
    errors.onError(/** @type {Error} */ (error));
  }
}

/** @param {any} change a message of the list stream */
function applyChange(change) {
  if (!change || typeof change !== 'object') return;
  if (change.type === 'update' && change.task && typeof change.task.id === 'string') {
    const task = /** @type {Task} */ (change.task);
    usersSeen.add(task.user_id);
    if (arrivedWhileLoading) {
      const known = arrivedWhileLoading.get(task.id);
      if (!known || isNewer(task, known)) arrivedWhileLoading.set(task.id, task);
    }
    const current = pageTasks.get(task.id);
    if (current) {
      if (!isNewer(task, current)) return;
      if (matches(task)) pageTasks.set(task.id, task);
      else pageTasks.delete(task.id);
    } else if (belongsOnPage(task, pageTasks)) {
      pageTasks.set(task.id, task);
    }
    queueRender();
    queueCounts();
  } else if (change.type === 'deleted' && typeof change.taskId === 'string') {
    if (arrivedWhileLoading) arrivedWhileLoading.delete(change.taskId);
    if (pageTasks.delete(change.taskId)) queueRender();
    queueCounts();
  } else if (change.type === 'resync') {
    loadPage();
    loadCounts();
  }
}

/**
 * Runs a bulk action on the selected tasks it applies to, and reports the outcome.
 * @param {'cancel' | 'retry'} action
 * @param {(task: Task) => boolean} applies
 */
async function runBulk(action, applies) {
  const ids = shown.filter((task) => selected.has(task.id) && applies(task)).map((task) => task.id);
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
for (const control of [filters.status, filters.type]) control.addEventListener('change', reload);
for (const input of [filters.search, filters.user]) {
  input.addEventListener('input', () => {
    if (typingTimer !== null) clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      typingTimer = null;
      reload();
    }, TYPING_DELAY_MS);
  });
}
byId('filters').addEventListener('submit', (event) => event.preventDefault());
byId('page-older').addEventListener('click', () => {
  if (nextCursor === null || arrivedWhileLoading !== null) return;
  pageIndex = shownIndex + 1;
  selected.clear();
  loadPage();
});
byId('page-newer').addEventListener('click', () => {
  if (shownIndex === 0 || arrivedWhileLoading !== null) return;
  pageIndex = shownIndex - 1;
  selected.clear();
  loadPage();
});

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
/** @param {keyof typeof MODE_TEXT} mode */
const setMode = (mode) => {
  byId('list-mode').textContent = MODE_TEXT[mode];
};

const errors = listErrorReporter('tasks', (message) => toast(message, 'error'));

/** How often the header's provider holds are read again. */
const HOLDS_INTERVAL_MS = 5000;

/**
 * Provider holds in force, as the tasks they hold back say it: "waiting for provider openai
 * (rate limited until 14:02:10 UTC)". Empty when there are none, or when the server keeps no
 * provider limits (404).
 * @returns {Promise<void>}
 */
async function loadHolds() {
  let text = '';
  try {
    const response = await fetch('/api/providers', { headers: { Accept: 'application/json' } });
    if (response.ok) {
      /** @type {{ providers: { provider: string, model: string, holdUntil: number | null }[] }} */
      const answer = await response.json();
      text = answer.providers
        .filter((p) => p.holdUntil !== null)
        .map((p) => {
          const until = new Date(p.holdUntil ?? 0).toISOString().slice(11, 19);
          return `waiting for provider ${p.provider} (rate limited until ${until} UTC)`;
        })
        .join('; ');
    }
  } catch {
    // The header line is a hint; the tasks' own descriptions say the same.
  }
  byId('provider-holds').textContent = text;
}

const user = await startSession();
if (user) {
  loadHolds();
  setInterval(loadHolds, HOLDS_INTERVAL_MS);
  setMode('connecting');
  let failures = 0;
  /** @type {import('../client/index.js').StreamHandle | null} */
  let stream = null;
  const poll = () => {
    if (stream) stream.close();
    stream = null;
    setMode('polling');
    setInterval(() => {
      loadPage();
      loadCounts();
    }, POLL_INTERVAL_MS);
  };
  stream = getClient().openStream('/api/subscribeToTasks', {
    onOpen() {
      failures = 0;
      setMode('live');
      // Changes made while no stream was open are only in a fresh page.
      loadPage();
      loadCounts();
    },
    onMessage(message) {
      try {
        applyChange(JSON.parse(message.data));
      } catch {
        // Not JSON: nothing to apply.
      }
    },
    onError(error) {
      if (error.fatal || ++failures >= MAX_STREAM_FAILURES) poll();
      else setMode('connecting');
    },
  });
  // Show something at once even if the stream is slow to open.
  loadPage();
  loadCounts();
}
