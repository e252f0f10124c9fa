// A small line chart drawn as inline SVG (no charting library): the selected period and the
// comparison period by day of period, with a table of the same numbers for screen readers.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 220;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** lines: [{name, className, values: [number|null]}]; returns an <svg> element. */
export function lineChart({ lines, title, format }) {
  const count = Math.max(1, ...lines.map((line) => line.values.length));
  const all = lines.flatMap((line) => line.values).filter((v) => v !== null && Number.isFinite(v));
  const max = Math.max(1, ...all);
  const x = (i) => PAD.left + (count === 1 ? 0 : (i / (count - 1)) * (WIDTH - PAD.left - PAD.right));
  const y = (v) => HEIGHT - PAD.bottom - (v / max) * (HEIGHT - PAD.top - PAD.bottom);
  const svg = el("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title, class: "chart",
  });
  svg.append(el("title", {}, title));
  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    svg.append(el("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    svg.append(el("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, format(value)));
  }
  for (const i of [0, count - 1]) {
    svg.append(el("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle", class: "axis" }, String(i + 1)));
  }
  for (const line of lines) {
    const points = line.values
      .map((v, i) => (v === null || !Number.isFinite(v) ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`))
      .filter(Boolean);
    svg.append(el("polyline", { points: points.join(" "), class: `line ${line.className}`, "data-series": line.className }));
  }
  return svg;
}
