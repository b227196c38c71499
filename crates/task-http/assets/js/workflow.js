// @ts-check
/**
 * @file The workflow panel: a workflow's graph drawn as SVG (one box per node, placed in columns
 * by depth, edges as curves from parent to child), each box showing its node's live status and
 * progress from the workflow's stream (`/api/workflows/{id}/events`). Everything is built with
 * DOM calls and text nodes; no markup is parsed.
 */

import { getClient, getWorkflow } from '/client/api.js';

import { byId, clear } from './dom.js';
import { percent } from './format.js';
import { redirectIfSignedOut } from './session.js';

/** @typedef {import('../client/index.js').Task} Task */
/** @typedef {import('../client/index.js').WorkflowView} WorkflowView */

const SVG = 'http://www.w3.org/2000/svg';
const BOX_WIDTH = 190;
const BOX_HEIGHT = 58;
const COLUMN_GAP = 60;
const ROW_GAP = 18;
const MARGIN = 8;

/**
 * An SVG element with attributes.
 * @param {string} tag
 * @param {Record<string, string | number>} [attrs]
 * @param {(Element | string)[]} [children]
 * @returns {SVGElement}
 */
function svg(tag, attrs = {}, children = []) {
  const element = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(typeof child === 'string' ? document.createTextNode(child) : child);
  return element;
}

/**
 * Each node's column: the length of the longest path from a root to it.
 * @param {string[]} keys
 * @param {{ parent: string, child: string }[]} edges
 * @returns {Map<string, number>}
 */
export function depths(keys, edges) {
  const depth = new Map(keys.map((key) => [key, 0]));
  // The graph is acyclic (the server refuses cycles), so at most `keys.length` passes settle it.
  for (let pass = 0; pass < keys.length; pass += 1) {
    let changed = false;
    for (const { parent, child } of edges) {
      const next = (depth.get(parent) ?? 0) + 1;
      if (next > (depth.get(child) ?? 0)) {
        depth.set(child, next);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return depth;
}

/** The open panel's stream, closed when another workflow is shown. */
/** @type {import('../client/index.js').StreamHandle | null} */
let stream = null;
let shownId = '';

/**
 * Shows workflow `workflowId` in the panel, live until every node is finished.
 * @param {string} workflowId
 */
export async function showWorkflow(workflowId) {
  if (stream) stream.close();
  stream = null;
  shownId = workflowId;
  const panel = byId('workflow');
  panel.hidden = false;
  byId('workflow-summary').textContent = 'Loading…';
  /** @type {WorkflowView} */
  let view;
  try {
    view = await getWorkflow(workflowId);
  } catch (error) {
    if (redirectIfSignedOut(error)) return;
    byId('workflow-summary').textContent = `Could not load the workflow: ${error instanceof Error ? error.message : String(error)}`;
    return;
  }
  if (shownId !== workflowId) return;
  const graph = drawGraph(view);
  const container = byId('workflow-graph');
  clear(container);
  container.appendChild(graph.element);
  const summary = () => {
    byId('workflow-summary').textContent = graph.summary();
  };
  summary();
  const mode = byId('workflow-mode');
  mode.textContent = 'Connecting…';
  stream = getClient().openStream(`/api/workflows/${encodeURIComponent(workflowId)}/events`, {
    onOpen() {
      mode.textContent = '● Live';
    },
    onMessage(message) {
      /** @type {any} */
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === 'event' && data.event && data.event.task) {
        graph.update(String(data.key), data.event.task);
        summary();
      } else if (data.type === 'finished') {
        mode.textContent = `Finished: ${data.status}`;
        if (stream) stream.close();
        stream = null;
      }
    },
    onError(error) {
      mode.textContent = error.fatal ? 'Live updates unavailable' : 'Reconnecting…';
    },
  });
  panel.scrollIntoView({ block: 'nearest' });
}

/**
 * The graph of `view` as an SVG element, with an `update` that redraws one node's state.
 * @param {WorkflowView} view
 */
function drawGraph(view) {
  const keys = view.nodes.map((node) => node.key);
  const depth = depths(keys, view.edges);
  /** @type {Map<number, number>} */
  const rowsInColumn = new Map();
  /** @type {Map<string, { x: number, y: number }>} */
  const place = new Map();
  for (const key of keys) {
    const column = depth.get(key) ?? 0;
    const row = rowsInColumn.get(column) ?? 0;
    rowsInColumn.set(column, row + 1);
    place.set(key, { x: MARGIN + column * (BOX_WIDTH + COLUMN_GAP), y: MARGIN + row * (BOX_HEIGHT + ROW_GAP) });
  }
  const columns = Math.max(1, ...[...depth.values()].map((d) => d + 1));
  const rows = Math.max(1, ...rowsInColumn.values());
  const width = 2 * MARGIN + columns * BOX_WIDTH + (columns - 1) * COLUMN_GAP;
  const height = 2 * MARGIN + rows * BOX_HEIGHT + (rows - 1) * ROW_GAP;
  const root = svg('svg', {
    class: 'workflow-svg',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'group',
    'aria-label': `Workflow with ${keys.length} steps`,
  });
  const defs = svg('defs', {}, [
    svg('marker', { id: 'wf-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' }, [
      svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'wf-arrow' }),
    ]),
  ]);
  root.appendChild(defs);
  for (const edge of view.edges) {
    const from = place.get(edge.parent);
    const to = place.get(edge.child);
    if (!from || !to) continue;
    const x1 = from.x + BOX_WIDTH;
    const y1 = from.y + BOX_HEIGHT / 2;
    const x2 = to.x;
    const y2 = to.y + BOX_HEIGHT / 2;
    const bend = (x2 - x1) / 2;
    root.appendChild(
      svg('path', {
        class: edge.run_on_failure ? 'wf-edge run-on-failure' : 'wf-edge',
        d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
        'marker-end': 'url(#wf-arrow)',
        'data-edge': `${edge.parent}->${edge.child}`,
      }),
    );
  }
  /** @type {Map<string, { task: Task | null, set: (task: Task | null) => void }>} */
  const boxes = new Map();
  for (const node of view.nodes) {
    const at = place.get(node.key) || { x: 0, y: 0 };
    const status = svg('text', { x: at.x + 10, y: at.y + 38, class: 'wf-status' });
    const fill = svg('rect', { x: at.x + 10, y: at.y + BOX_HEIGHT - 12, width: 0, height: 5, rx: 2, class: 'wf-progress-fill' });
    const title = svg('title');
    const group = svg('g', { class: 'wf-node', 'data-key': node.key, role: 'img' }, [
      title,
      svg('rect', { x: at.x, y: at.y, width: BOX_WIDTH, height: BOX_HEIGHT, rx: 6, class: 'wf-box' }),
      svg('text', { x: at.x + 10, y: at.y + 20, class: 'wf-key' }, [node.key]),
      status,
      svg('rect', { x: at.x + 10, y: at.y + BOX_HEIGHT - 12, width: BOX_WIDTH - 20, height: 5, rx: 2, class: 'wf-progress' }),
      fill,
    ]);
    const box = {
      task: /** @type {Task | null} */ (null),
      /** @param {Task | null} task */
      set(task) {
        if (task && box.task && typeof box.task.version === 'number' && task.version <= box.task.version) return;
        box.task = task;
        const state = task ? task.status : 'deleted';
        const done = task ? Math.round(percent(task)) : 0;
        group.setAttribute('data-status', state);
        group.setAttribute('aria-label', `${node.key}: ${state}, ${done}%`);
        status.textContent = task ? `${state} · ${done}%` : 'deleted';
        title.textContent = task ? `${task.task_type} ${task.id}` : node.key;
        fill.setAttribute('width', String(((BOX_WIDTH - 20) * done) / 100));
      },
    };
    box.set(node.task);
    boxes.set(node.key, box);
    root.appendChild(group);
  }
  return {
    element: root,
    /**
     * @param {string} key
     * @param {Task} task
     */
    update(key, task) {
      const box = boxes.get(key);
      if (box) box.set(task);
    },
    summary() {
      const counts = new Map();
      for (const box of boxes.values()) {
        const state = box.task ? box.task.status : 'deleted';
        counts.set(state, (counts.get(state) || 0) + 1);
      }
      return [...counts].map(([state, n]) => `${n} ${state}`).join(' · ');
    },
  };
}
