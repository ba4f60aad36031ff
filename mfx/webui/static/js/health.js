// Health sparklines per plugin (uPlot), from the samples the UI server takes of /metrics.
import { on, el } from "./stream.js";

const rings = new Map(); // name -> [{t, probeMs, failures, healthy}]
const charts = new Map(); // name -> {plot, value}
const RING = 60;

function series(ring) {
  // A failure count of 0 draws no bar at all.
  return [ring.map((p) => p.t), ring.map((p) => p.probeMs), ring.map((p) => (p.failures ? p.failures : null))];
}

function card(name) {
  const value = el("span", { class: "spark-value" });
  const box = el("div", { class: "spark-plot" });
  const node = el("div", { class: "card spark", "data-plugin": name }, el("div", { class: "spark-head" }, el("b", {}, name), value), box);
  document.getElementById("sparklines").append(node);
  new ResizeObserver(() => { const c = charts.get(name); if (c && box.clientWidth) c.plot.setSize({ width: box.clientWidth, height: 70 }); }).observe(box);
  const plot = new uPlot({
    width: Math.max(200, box.clientWidth || 300), height: 70, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: true }, y: { auto: true, range: (u, min, max) => [0, Math.max(1, max)] }, f: { range: [0, 3] } },
    axes: [{ show: false }, { show: false }, { show: false, scale: "f" }],
    series: [{}, { label: "probe ms", stroke: "#8ab4f8", width: 2, fill: "#8ab4f822", spanGaps: true },
      { label: "failures", stroke: "#e05252", width: 2, scale: "f", paths: uPlot.paths.bars({ size: [0.6, 6] }), fill: "#e0525288" }],
  }, series(rings.get(name)), box);
  charts.set(name, { plot, value, node });
}

function update(name) {
  const ring = rings.get(name);
  if (!charts.has(name)) card(name);
  const chart = charts.get(name);
  chart.plot.setData(series(ring));
  const last = ring[ring.length - 1] || {};
  const probe = [...ring].reverse().find((p) => p.probeMs !== null && p.probeMs !== undefined);
  const failed = ring.reduce((sum, p) => sum + (p.failures || 0), 0);
  chart.value.textContent = probe ? `probe ${probe.probeMs.toFixed(1)} ms · ${failed} failed`
    : `no health probe (spec.healthCheck)${failed ? ` · ${failed} failed` : ""}`;
  chart.node.classList.toggle("unhealthy", last.healthy === 0);
  // Without a probe there is nothing to draw: a one-line card, after those with a sparkline.
  chart.node.classList.toggle("no-probe", !probe && !failed);
  return Boolean(probe || failed);
}

function prune(names) {
  for (const name of [...rings.keys()]) if (!names.has(name)) rings.delete(name);
  for (const [name, chart] of charts) {
    if (!names.has(name)) { chart.plot.destroy(); chart.node.remove(); charts.delete(name); }
  }
}

// Charts are drawn only while the Health page shows: with hundreds of plugins, drawing every
// sparkline at every sample behind another page would stall the graph's live updates.
let frame = 0;
function visible() { return !document.getElementById("page-health").hidden; }
function draw() {
  frame = 0;
  if (!visible()) return;
  const drawn = [...rings.keys()].sort().map((name) => [name, update(name)]);
  const box = document.getElementById("sparklines");
  for (const [name] of [...drawn.filter(([, plotted]) => plotted), ...drawn.filter(([, plotted]) => !plotted)]) {
    box.append(charts.get(name).node);
  }
}
function drawSoon() { if (!frame) frame = requestAnimationFrame(draw); }

export function showHealth() { drawSoon(); }

export function startHealth() {
  on("health", {
    history: (data) => {
      document.getElementById("health-interval").textContent = String(data.interval);
      rings.clear();
      for (const [name, ring] of Object.entries(data.rings)) rings.set(name, ring);
      prune(new Set(rings.keys()));
      drawSoon();
    },
    sample: (points) => {
      for (const [name, p] of Object.entries(points)) {
        const ring = rings.get(name) || [];
        ring.push(p);
        while (ring.length > RING) ring.shift();
        rings.set(name, ring);
      }
      prune(new Set(Object.keys(points)));
      drawSoon();
    },
  });
}
