// @ts-check
/**
 * @file DOM helpers for the pages. Everything that shows a user's or a model's string goes
 * through text nodes (`textContent`, `createTextNode`); nothing here parses markup, so a
 * question like `<img src=x onerror=alert(1)>` is shown as those characters and runs nothing.
 */

/**
 * @typedef {{
 *   class?: string,
 *   text?: string,
 *   attrs?: Record<string, string | number | boolean | null | undefined>,
 *   on?: Record<string, (event: any) => void>,
 *   hidden?: boolean,
 * }} ElementOptions
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * Creates an element. Strings become text nodes; attributes are set one by one and event
 * handler attributes (`on...`) are refused, so data can never become code.
 * @param {string} tag
 * @param {ElementOptions} [options]
 * @param {Child[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, options = {}, children = []) {
  const element = document.createElement(tag);
  if (options.class) element.className = options.class;
  if (options.text !== undefined) element.textContent = options.text;
  if (options.hidden) element.hidden = true;
  for (const [name, value] of Object.entries(options.attrs || {})) {
    if (/^on/i.test(name)) throw new Error(`refusing event handler attribute ${name}`);
    if (value === null || value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const [event, handler] of Object.entries(options.on || {})) element.addEventListener(event, handler);
  append(element, children);
  return element;
}

/**
 * Appends children, strings as text.
 * @param {Node} parent
 * @param {Child[]} children
 */
export function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

/**
 * Removes every child of `element`.
 * @param {Element} element
 */
export function clear(element) {
  while (element.firstChild) element.removeChild(element.firstChild);
}

/**
 * The element with this id; throws when the page lacks it (a page/script mismatch).
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id}`);
  return /** @type {T} */ (element);
}

/**
 * A progress bar: `role=progressbar` with `aria-valuenow`, and a fill sized through the CSSOM
 * (allowed by the CSP, unlike `style` attributes).
 * @param {string} label accessible name
 * @returns {HTMLElement}
 */
export function progressBar(label) {
  return h('div', { class: 'progress', attrs: { role: 'progressbar', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 } }, [
    h('div', { class: 'progress-fill' }),
  ]);
}

/**
 * Sets a progress bar (from {@link progressBar} or the page's markup) to `percent`.
 * @param {HTMLElement} bar
 * @param {number} percent 0..100
 * @param {string} [state] a modifier class: `completed`, `failed`, `cancelled`...
 */
export function setProgress(bar, percent, state) {
  const value = Math.max(0, Math.min(100, Math.round(percent)));
  bar.setAttribute('aria-valuenow', String(value));
  bar.setAttribute('aria-valuetext', `${value}%`);
  const fill = /** @type {HTMLElement | null} */ (bar.querySelector('.progress-fill'));
  if (fill) fill.style.width = `${value}%`;
  bar.dataset.state = state || '';
}

/**
 * A status badge.
 * @param {string} status
 */
export function badge(status) {
  const element = h('span', { class: 'badge' });
  setBadge(element, status);
  return element;
}

/**
 * @param {HTMLElement} element
 * @param {string} status
 */
export function setBadge(element, status) {
  element.textContent = status;
  element.dataset.status = status;
}

/**
 * Shows a toast in the page's live region (`#toasts`, `aria-live=polite`) for a while.
 * @param {string} message
 * @param {'success' | 'error' | 'info'} [kind]
 */
export function toast(message, kind = 'info') {
  const container = byId('toasts');
  const item = h('div', { class: `toast ${kind}` }, [h('span', { text: message })]);
  const close = h('button', {
    class: 'toast-close',
    text: '×',
    attrs: { type: 'button', 'aria-label': 'Dismiss notification' },
    on: { click: () => item.remove() },
  });
  item.appendChild(close);
  container.appendChild(item);
  setTimeout(() => item.remove(), 8000);
}

/**
 * @typedef {{ nodes: Node[], update: (item: any) => void }} RowView
 */

/** @type {WeakMap<Element, Map<string, RowView>>} */
const rowViews = new WeakMap();

/**
 * Keeps `container`'s children in step with `items` without rebuilding them: existing views are
 * updated in place (so focus, expanded rows and checkboxes survive live updates), new ones are
 * created, gone ones removed, and nodes moved only when the order changed.
 * @template T
 * @param {Element} container
 * @param {T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => RowView} create
 * @returns {Map<string, RowView>} the current views by key
 */
export function reconcile(container, items, keyOf, create) {
  const previous = rowViews.get(container) || new Map();
  /** @type {Map<string, RowView>} */
  const next = new Map();
  for (const item of items) {
    const key = keyOf(item);
    let view = previous.get(key);
    if (view) {
      view.update(item);
    } else {
      view = create(item);
      view.update(item);
    }
    next.set(key, view);
  }
  for (const [key, view] of previous) {
    if (!next.has(key)) for (const node of view.nodes) node.parentNode && node.parentNode.removeChild(node);
  }
  let cursor = container.firstChild;
  for (const view of next.values()) {
    for (const node of view.nodes) {
      if (node === cursor) {
        cursor = cursor.nextSibling;
      } else {
        container.insertBefore(node, cursor);
      }
    }
  }
  rowViews.set(container, next);
  return next;
}
