// @ts-check
/**
 * @file The superuser's analytics page: throughput, queue wait and run-time percentiles and
 * cost over time, the per-group table and the failure reasons, from `GET /api/analytics`.
 * Reloads every 10 seconds while the tab is visible (the rollups behind it move every few
 * seconds), and at once when the range or grouping changes.
 */

import { ApiError } from '/client/api.js';

import { drawChart } from './charts.js';
import { byId, clear, h, toast } from './dom.js';
import { formatDuration } from './format.js';
import { listErrorReporter, startSession } from './session.js';

/**
 * @typedef {{ p50: number | null, p95: number | null, p99: number | null }} Percentiles
 * @typedef {{
 *   bucketStart?: number, group: string, completed: number, failed: number, cancelled: number,
 *   successRate: number | null, attempts: number, retries: number, timeouts: number,
 *   waitMs: Percentiles, runMs: Percentiles, inputTokens: number, outputTokens: number,
 *   costUsd: number,
 * }} Summary
 * @typedef {{
 *   from: number, to: number, bucket: 'minute' | 'hour' | 'day', groupBy: string,
 *   foldedThrough: number | null, relativeError: number, series: Summary[], totals: Summary[],
 *   failures: { reason: string, count: number }[], unpriced: string[],
 * }} Answer
 */

const REFRESH_MS = 10_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** @type {Record<string, { range: number, bucket: string }>} */
const PRESETS = {
  hour: { range: HOUR, bucket: 'minute' },
  day: { range: DAY, bucket: 'hour' },
  week: { range: 7 * DAY, bucket: 'hour' },
  month: { range: 30 * DAY, bucket: 'day' },
};
const BUCKET_MS = { minute: 60_000, hour: HOUR, day: DAY };
/** @type {Record<string, string>} */
const GROUP_NAMES = { type: 'task type', provider: 'provider', model: 'model', user: 'user', none: 'everything' };

const count = new Intl.NumberFormat();
const usd = (/** @type {number} */ value) => `$${value < 10 ? value.toFixed(4) : value.toFixed(2)}`;
/** A duration for an axis or a cell; below 10 ms with one decimal, so small ticks differ. */
const ms = (/** @type {number | null | undefined} */ value) =>
  value !== null && value !== undefined && value < 10 ? `${value.toFixed(1)} ms` : (value === null || value === undefined ? '–' : formatDuration(value));
const rate = (/** @type {number | null | undefined} */ value) => (value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)}%`);

/** The query for the chosen preset and grouping. */
function currentQuery() {
  const preset = PRESETS[/** @type {HTMLSelectElement} */ (byId('range-preset')).value] ?? PRESETS.day;
  const groupBy = /** @type {HTMLSelectElement} */ (byId('range-group')).value;
  const to = Date.now();
  const params = new URLSearchParams({
    from: String(to - preset.range),
    to: String(to),
    bucket: preset.bucket,
    groupBy,
  });
  return { params, groupBy };
}

async function load() {
  const { params, groupBy } = currentQuery();
  /** @type {HTMLAnchorElement} */ (byId('csv-link')).href = `/api/analytics?${params}&format=csv`;
  const response = await fetch(`/api/analytics?${params}`, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  const body = await response.json();
  if (!response.ok) throw new ApiError(body.error || `HTTP ${response.status}`, response.status);
  render(body, groupBy);
}

/**
 * The range's buckets, and the series entries of each.
 * @param {Answer} answer
 */
function perBucket(answer) {
  const width = BUCKET_MS[answer.bucket];
  const buckets = [];
  for (let at = answer.from; at < answer.to; at += width) buckets.push(at);
  /** @type {Map<number, Summary[]>} */
  const byBucket = new Map(buckets.map((at) => [at, []]));
  for (const entry of answer.series) byBucket.get(entry.bucketStart ?? -1)?.push(entry);
  return { buckets, byBucket, width };
}

/**
 * The busiest group's percentile in each bucket: percentiles of different groups cannot be
 * added, so the wait and run charts follow the group with most tasks in each bucket.
 * @param {number[]} buckets
 * @param {Map<number, Summary[]>} byBucket
 * @param {'waitMs' | 'runMs'} field
 */
function percentileSeries(buckets, byBucket, field) {
  return /** @type {const} */ (['p50', 'p95', 'p99']).map((p) => ({
    name: p,
    points: buckets.map((at) => {
      const entries = byBucket.get(at) ?? [];
      /** @type {Summary | null} */
      let busiest = null;
      for (const entry of entries) if (!busiest || finished(entry) > finished(busiest)) busiest = entry;
      return { x: at, y: busiest ? busiest[field][p] : null };
    }),
  }));
}

const finished = (/** @type {Summary} */ s) => s.completed + s.failed + s.cancelled;

/**
 * @param {Answer} answer
 * @param {string} groupBy
 */
function render(answer, groupBy) {
  const { buckets, byBucket, width } = perBucket(answer);
  const sum = (/** @type {number} */ at, /** @type {(entry: Summary) => number} */ pick) => (byBucket.get(at) ?? []).reduce((total, e) => total + pick(e), 0);
  const base = { from: answer.from, to: answer.to, bucket: width };
  drawChart(byId('chart-throughput'), {
    ...base,
    format: (v) => count.format(Math.round(v)),
    series: [
      { name: 'completed', points: buckets.map((at) => ({ x: at, y: sum(at, (e) => e.completed) })) },
      { name: 'failed', points: buckets.map((at) => ({ x: at, y: sum(at, (e) => e.failed) })) },
      { name: 'cancelled', points: buckets.map((at) => ({ x: at, y: sum(at, (e) => e.cancelled) })) },
    ],
  });
  const hasTasks = answer.series.length > 0;
  drawChart(byId('chart-wait'), { ...base, format: ms, series: hasTasks ? percentileSeries(buckets, byBucket, 'waitMs') : [] });
  drawChart(byId('chart-run'), { ...base, format: ms, series: hasTasks ? percentileSeries(buckets, byBucket, 'runMs') : [] });
  drawChart(byId('chart-cost'), {
    ...base,
    bars: true,
    format: usd,
    series: hasTasks ? [{ name: 'cost', points: buckets.map((at) => ({ x: at, y: sum(at, (e) => e.costUsd) })) }] : [],
  });

  const totals = answer.totals;
  const all = totals.reduce(
    (t, e) => ({
      done: t.done + e.completed,
      failed: t.failed + e.failed,
      cancelled: t.cancelled + e.cancelled,
      retries: t.retries + e.retries,
      cost: t.cost + e.costUsd,
    }),
    { done: 0, failed: 0, cancelled: 0, retries: 0, cost: 0 },
  );
  const decided = all.done + all.failed;
  const headline = byId('headline');
  clear(headline);
  for (const [label, value] of [
    ['finished', count.format(all.done + all.failed + all.cancelled)],
    ['success rate', decided ? rate(all.done / decided) : '–'],
    ['failed', count.format(all.failed)],
    ['cancelled', count.format(all.cancelled)],
    ['retries', count.format(all.retries)],
    ['estimated cost', usd(all.cost)],
  ]) {
    headline.append(h('li', {}, [h('span', { class: 'value', text: value }), h('span', { class: 'label', text: label })]));
  }

  byId('group-name').textContent = GROUP_NAMES[groupBy] ?? groupBy;
  const rows = byId('group-rows');
  clear(rows);
  for (const group of totals) {
    rows.append(
      h('tr', {}, [
        h('th', { attrs: { scope: 'row' }, text: group.group || '(none)' }),
        h('td', { class: 'num', text: count.format(group.completed) }),
        h('td', { class: 'num', text: count.format(group.failed) }),
        h('td', { class: 'num', text: count.format(group.cancelled) }),
        h('td', { class: 'num', text: rate(group.successRate) }),
        h('td', { class: 'num', text: count.format(group.retries) }),
        h('td', { class: 'num', text: count.format(group.timeouts) }),
        h('td', { class: 'num', text: ms(group.waitMs.p95) }),
        h('td', { class: 'num', text: ms(group.runMs.p95) }),
        h('td', { class: 'num', text: `${count.format(group.inputTokens)} / ${count.format(group.outputTokens)}` }),
        h('td', { class: 'num', text: usd(group.costUsd) }),
      ]),
    );
  }

  const failures = byId('failure-list');
  clear(failures);
  byId('failures-empty').hidden = answer.failures.length > 0;
  for (const failure of answer.failures.slice(0, 15)) {
    failures.append(h('li', {}, [h('span', { class: 'failure-count', text: count.format(failure.count) }), failure.reason]));
  }
  const through = answer.foldedThrough ? new Date(answer.foldedThrough).toLocaleTimeString() : 'nothing yet';
  byId('freshness').textContent = `Counts tasks finished up to ${through}; percentiles within ±${answer.relativeError * 100}%`;
}

const errors = listErrorReporter('analytics', (message) => toast(message, 'error'));

async function refresh() {
  try {
    await load();
    errors.onLoaded();
  } catch (error) {
    errors.onError(/** @type {Error} */ (error));
  }
}

async function main() {
  const user = await startSession();
  if (!user) return;
  byId('range-preset').addEventListener('change', refresh);
  byId('range-group').addEventListener('change', refresh);
  await refresh();
  setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, REFRESH_MS);
}

main();
