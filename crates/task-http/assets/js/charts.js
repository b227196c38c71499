// @ts-check
/**
 * @file Small SVG charts for the analytics page: time on the x axis, one or more series as
 * lines, or one series as bars. Hand-written rather than a vendored chart library because it
 * needs about 150 lines, loads nothing else and sets no inline style (the pages' CSP forbids
 * it): every colour comes from classes in analytics.css. Labels are text nodes.
 */

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 56, right: 12, top: 10, bottom: 26 };

/**
 * @typedef {{ x: number, y: number | null }} Point
 * @typedef {{ name: string, points: Point[] }} Series
 * @typedef {{
 *   from: number, to: number, bucket: number,
 *   series: Series[], bars?: boolean,
 *   format: (value: number) => string,
 * }} ChartSpec
 */

/**
 * @param {string} tag
 * @param {Record<string, string | number>} attrs
 * @param {string} [text]
 */
function svg(tag, attrs, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * A round upper bound for the y axis: 1, 2 or 5 times a power of ten.
 * @param {number} max
 */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

/**
 * A time label fitting the bucket: minutes and hours as `14:05`, days as `Mar 3`.
 * @param {number} at
 * @param {number} bucket
 */
function timeLabel(at, bucket) {
  const date = new Date(at);
  if (bucket >= 86_400_000) return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

/**
 * Draws `spec` into `container`, replacing what was there, with a legend for several series.
 * @param {HTMLElement} container
 * @param {ChartSpec} spec
 */
export function drawChart(container, spec) {
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img' });
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const span = Math.max(1, spec.to - spec.from);
  const xOf = (/** @type {number} */ at) => PAD.left + ((at - spec.from) / span) * innerW;
  /** @type {number[]} */
  const values = spec.series.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y])));
  const top = niceMax(Math.max(0, ...values));
  const yOf = (/** @type {number} */ value) => PAD.top + innerH - (value / top) * innerH;

  for (let i = 0; i <= 4; i += 1) {
    const value = (top * i) / 4;
    const y = yOf(value);
    root.append(svg('line', { class: i === 0 ? 'axis' : 'grid', x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y }));
    root.append(svg('text', { class: 'tick', x: PAD.left - 6, y: y + 4, 'text-anchor': 'end' }, spec.format(value)));
  }
  for (let i = 0; i <= 4; i += 1) {
    const at = spec.from + (span * i) / 4;
    const anchor = i === 0 ? 'start' : i === 4 ? 'end' : 'middle';
    root.append(svg('text', { class: 'tick', x: xOf(at), y: HEIGHT - 8, 'text-anchor': anchor }, timeLabel(at, spec.bucket)));
  }

  if (values.length === 0) {
    root.append(svg('text', { class: 'empty', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle' }, 'No finished tasks in this range'));
  } else if (spec.bars) {
    const width = Math.max(1, (spec.bucket / span) * innerW - 2);
    for (const point of spec.series[0]?.points ?? []) {
      if (point.y === null || point.y <= 0) continue;
      const y = yOf(point.y);
      const bar = svg('rect', { class: 'bar', x: xOf(point.x) + 1, y, width, height: PAD.top + innerH - y });
      bar.append(svg('title', {}, `${timeLabel(point.x, spec.bucket)}: ${spec.format(point.y)}`));
      root.append(bar);
    }
  } else {
    spec.series.forEach((series, index) => {
      // A bucket without a value breaks the line rather than drawing it down to zero.
      let path = '';
      let drawing = false;
      for (const point of series.points) {
        if (point.y === null) {
          drawing = false;
          continue;
        }
        const x = xOf(point.x + spec.bucket / 2).toFixed(1);
        const y = yOf(point.y).toFixed(1);
        path += `${drawing ? 'L' : 'M'}${x},${y} `;
        drawing = true;
      }
      if (path) root.append(svg('path', { class: `line s${index % 4}`, d: path.trim() }));
      for (const point of series.points) {
        if (point.y === null) continue;
        const dot = svg('circle', { class: `s${index % 4}`, cx: xOf(point.x + spec.bucket / 2), cy: yOf(point.y), r: 2.5 });
        dot.append(svg('title', {}, `${series.name} ${timeLabel(point.x, spec.bucket)}: ${spec.format(point.y)}`));
        root.append(dot);
      }
    });
  }
  root.setAttribute('aria-label', spec.series.map((s) => s.name).join(', '));

  const legend = document.createElement('ul');
  legend.className = 'chart-legend';
  if (spec.series.length > 1) {
    spec.series.forEach((series, index) => {
      const item = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `swatch s${index % 4}`;
      item.append(swatch, document.createTextNode(series.name));
      legend.append(item);
    });
  }
  container.replaceChildren(root, legend);
}
