// The plugin dependency graph, drawn live: cytoscape draws, dagre lays out (dependencies on
// top, arrows point from a plugin to what it requires); the critical chain comes from the
// server (the same computation as 'mfx analyze critical-chain').
import { on, openStream, el, condition } from "./stream.js";

const plugins = new Map(); // name -> PluginManifest
let chain = [];
let cy = null;
let selected = null;
let detailStream = null;
const renderedAt = {}; // name -> {rv, t}: when the page showed a version (for the benchmark)

export function stateOf(obj) {
  if (condition(obj, "Stalled")?.status === "True") return "Stalled";
  if (condition(obj, "Ready")?.status === "True") {
    return condition(obj, "Healthy")?.status === "False" ? "Unhealthy" : "Ready";
  }
  return "NotReady";
}

function label(name, obj) {
  const state = stateOf(obj);
  if (state === "NotReady") {
    const reason = condition(obj, "Ready")?.reason;
    return `${name}\nNot Ready${reason ? ` · ${reason}` : ""}`;
  }
  return `${name}\n${state}`;
}

function dependencies(obj) {
  return ((obj.spec || {}).dependencies || []).map((d) => ({ name: d.name, optional: !!d.optional }));
}

function elements() {
  const nodes = [];
  const edges = [];
  const missing = new Set();
  for (const [name, obj] of plugins) {
    nodes.push({ group: "nodes", data: { id: name, label: label(name, obj), state: stateOf(obj), rv: obj.metadata.resourceVersion } });
    for (const dep of dependencies(obj)) {
      if (!plugins.has(dep.name)) missing.add(dep.name);
      edges.push({ group: "edges", data: { id: `${name}->${dep.name}`, source: name, target: dep.name, optional: dep.optional ? "yes" : "no" } });
    }
  }
  for (const name of missing) nodes.push({ group: "nodes", data: { id: name, label: `${name}\nmissing`, state: "Missing" } });
  return [...nodes, ...edges];
}

function cssVar(name, fallback) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function style() {
  const fg = cssVar("--foreground", "#e6e6e6");
  return [
    { selector: "node", style: {
      "shape": "round-rectangle", "width": "label", "height": "label", "padding": "12px", "label": "data(label)",
      "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", "font-size": 13,
      "color": "#111", "background-color": "#9aa0a6", "border-width": 2, "border-color": "#00000040" } },
    { selector: 'node[state = "Ready"]', style: { "background-color": cssVar("--success", "#3fb96b") } },
    { selector: 'node[state = "Unhealthy"]', style: { "background-color": cssVar("--warning", "#e8a33d") } },
    { selector: 'node[state = "NotReady"]', style: { "background-color": "#d9c85b" } },
    { selector: 'node[state = "Stalled"]', style: { "background-color": cssVar("--error", "#e05252"), "color": "#fff" } },
    { selector: 'node[state = "Missing"]', style: { "background-color": "#2a2f3a", "color": fg, "border-style": "dashed", "border-color": fg } },
    { selector: "node.chain", style: { "border-width": 4, "border-color": cssVar("--accent", "#8ab4f8") } },
    { selector: "node:selected", style: { "border-width": 4, "border-color": fg } },
    { selector: "edge", style: {
      "width": 2, "line-color": "#7d8590", "target-arrow-color": "#7d8590", "target-arrow-shape": "triangle",
      // straight: one edge per pair of plugins, so bezier's bundling of parallel edges
      // would only cost time (a tenth of a second at 500 plugins).
      "curve-style": "straight", "arrow-scale": 1.1 } },
    { selector: 'edge[optional = "yes"]', style: { "line-style": "dashed" } },
    { selector: "edge.chain", style: { "width": 4, "line-color": cssVar("--accent", "#8ab4f8"), "target-arrow-color": cssVar("--accent", "#8ab4f8") } },
  ];
}

// dagre's default ranking (network simplex) draws the tidiest small graphs but takes half
// a second at 500 plugins; longest-path ranks a big one in half that time.
const BIG_GRAPH = 150;
function layout() {
  const started = performance.now();
  const ranker = cy.nodes().length > BIG_GRAPH ? "longest-path" : "network-simplex";
  cy.layout({ name: "dagre", ranker, rankDir: "BT", nodeSep: 24, rankSep: 50, animate: false, fit: false }).run();
  cy.fit(cy.nodes(), 24); // the nodes' box holds the edges of a layered drawing: no edge geometry needed
  readableZoom();
  performance.measure("mfx:layout", { start: started }); // what a big graph's first load spends here
}

function markChain() {
  cy.elements().removeClass("chain");
  chain.forEach((name, i) => {
    cy.getElementById(name).addClass("chain");
    if (i + 1 < chain.length) cy.getElementById(`${name}->${chain[i + 1]}`).addClass("chain");
  });
}

function redraw() {
  const wanted = elements();
  const ids = new Set(wanted.map((e) => e.data.id));
  let topology = false;
  cy.batch(() => {
    cy.elements().forEach((e) => { if (!ids.has(e.id())) { e.remove(); topology = true; } });
    const added = [];
    for (const item of wanted) {
      const have = cy.getElementById(item.data.id);
      if (have.empty()) added.push(item); else have.data(item.data);
    }
    if (added.length) { cy.add(added); topology = true; } // one call: hundreds of adds cost more one by one
  });
  if (topology) layout();
  markChain();
  const now = Date.now();
  for (const [name, obj] of plugins) {
    const rv = obj.metadata.resourceVersion;
    if (!renderedAt[name] || renderedAt[name].rv !== rv) renderedAt[name] = { rv, t: now };
  }
  renderList();
  if (selected) renderDetail();
  document.body.dataset.graphNodes = String(plugins.size);
}

function listItem(name) {
  const state = stateOf(plugins.get(name));
  return el("li", { "data-plugin": name, "data-state": state, onclick: () => select(name) },
    el("span", { class: `dot ${state.toLowerCase()}` }), name, el("span", { class: "muted" }, ` ${state === "NotReady" ? "Not Ready" : state}`));
}

function renderList() {
  document.getElementById("plugin-list").replaceChildren(...[...plugins.keys()].sort().map(listItem));
}

// One object changed: touch only its node, its edges and its list row (a big graph is not
// rebuilt at every change); lay out again only when nodes or edges came or went.
function nodeData(name) {
  const obj = plugins.get(name);
  return obj ? { id: name, label: label(name, obj), state: stateOf(obj), rv: obj.metadata.resourceVersion }
    : { id: name, label: `${name}\nmissing`, state: "Missing", rv: null };
}

// What one change costs: its node's data (cytoscape restyles that node and draws it in its
// next frame), its edges when the dependencies changed, and a layout only when nodes or
// edges came or went. The list row and the detail pane are DOM work: a burst of changes
// updates them once, in the next animation frame.
const dirtyRows = new Set();
let rowsFrame = 0;
function flushRows() {
  rowsFrame = 0;
  const names = [...dirtyRows];
  dirtyRows.clear();
  const list = document.getElementById("plugin-list");
  const rows = new Map([...list.children].map((row) => [row.dataset.plugin, row]));
  if (names.some((name) => plugins.has(name) !== rows.has(name))) renderList();
  else for (const name of names) rows.get(name)?.replaceWith(listItem(name));
  if (selected && names.includes(selected)) renderDetail();
  document.body.dataset.graphNodes = String(plugins.size);
}

function applyChange(type, obj) {
  const name = obj.metadata.name;
  if (type === "DELETED") plugins.delete(name); else plugins.set(name, obj);
  let topology = false;
  let orphans = false; // an edge or node went: a "missing" dependency may be left unused
  cy.batch(() => {
    const node = cy.getElementById(name);
    const wanted = new Map(type === "DELETED" ? [] : dependencies(obj).map((d) => [`${name}->${d.name}`, d]));
    node.outgoers("edge").forEach((edge) => { if (!wanted.has(edge.id())) { edge.remove(); topology = orphans = true; } });
    if (type === "DELETED" && node.nonempty() && node.incomers("edge").length === 0) { node.remove(); topology = true; }
    else if (node.empty()) { cy.add({ group: "nodes", data: nodeData(name) }); topology = true; }
    else node.data(nodeData(name));
    for (const [id, dep] of wanted) {
      if (cy.getElementById(dep.name).empty()) { cy.add({ group: "nodes", data: nodeData(dep.name) }); topology = true; }
      const edge = cy.getElementById(id);
      const optional = dep.optional ? "yes" : "no";
      if (edge.empty()) { cy.add({ group: "edges", data: { id, source: name, target: dep.name, optional } }); topology = true; }
      else if (edge.data("optional") !== optional) edge.data("optional", optional);
    }
    if (orphans) cy.nodes('[state = "Missing"]').forEach((n) => { if (n.incomers("edge").length === 0) n.remove(); });
  });
  if (topology) { layout(); markChain(); }
  renderedAt[name] = { rv: type === "DELETED" ? null : obj.metadata.resourceVersion, t: Date.now() };
  dirtyRows.add(name);
  if (!rowsFrame) rowsFrame = requestAnimationFrame(flushRows);
}

function select(name) {
  selected = name;
  cy.elements().unselect();
  cy.getElementById(name).select();
  if (detailStream) detailStream.close();
  document.getElementById("detail-events").replaceChildren();
  document.getElementById("detail-log").textContent = "";
  detailStream = openStream(`/ui/stream/plugin/${encodeURIComponent(name)}`, {
    "events.items": (data) => addEvents(data.items, data.replace),
    "log.line": (line) => addLog(line),
  });
  renderDetail();
}

function unselect() {
  selected = null;
  if (detailStream) { detailStream.close(); detailStream = null; }
  cy.elements().unselect();
  document.getElementById("detail-title").textContent = "Plugins";
  document.getElementById("detail-hint").hidden = false;
  document.getElementById("plugin-list").hidden = false;
  document.getElementById("detail-body").hidden = true;
}

function renderDetail() {
  const obj = plugins.get(selected);
  document.getElementById("detail-title").textContent = selected;
  document.getElementById("detail-hint").hidden = true;
  document.getElementById("plugin-list").hidden = true;
  document.getElementById("detail-body").hidden = false;
  if (!obj) {
    document.getElementById("detail-summary").textContent = "not applied (a dependency of another plugin)";
    document.getElementById("detail-conditions").replaceChildren();
    return;
  }
  const status = obj.status || {};
  document.getElementById("detail-summary").textContent =
    `${obj.spec.type} ${obj.spec.version} · restarts ${status.restartCount ?? 0}` +
    (status.runtime && status.runtime.generation !== undefined ? ` · runtime generation ${status.runtime.generation}` : "");
  // The message on a row of its own under its condition: beside the others, a long one
  // squeezed every column into words broken mid-way.
  document.getElementById("detail-conditions").replaceChildren(...(status.conditions || []).flatMap((c) => [
    el("tr", { "data-condition": c.type, class: `status-${String(c.status).toLowerCase()}` },
      el("td", {}, c.type), el("td", {}, c.status), el("td", {}, c.reason || "")),
    el("tr", { class: "condition-message" }, el("td", { colspan: "3" }, c.message || "")),
  ]));
}

function addEvents(items, replace) {
  const list = document.getElementById("detail-events");
  if (replace) list.replaceChildren();
  for (const e of items) {
    list.prepend(el("li", { class: e.type === "Warning" ? "warning" : "" },
      el("span", { class: "muted" }, `${(e.lastTimestamp || e.eventTime || "").replace("T", " ").slice(0, 19)} `),
      el("b", {}, e.reason || ""), ` ${e.message || ""}`));
  }
  while (list.children.length > 30) list.lastChild.remove();
}

function addLog(line) {
  const pre = document.getElementById("detail-log");
  const text = typeof line === "string" ? line : (line.message ?? line.line ?? JSON.stringify(line));
  const lines = (pre.textContent ? pre.textContent.split("\n") : []).concat(text);
  pre.textContent = lines.slice(-50).join("\n");
  pre.scrollTop = pre.scrollHeight;
}

export function startGraph() {
  cytoscape.use(cytoscapeDagre);
  cy = cytoscape({ container: document.getElementById("graph"), style: style(), minZoom: 0.1, maxZoom: 3, wheelSensitivity: 0.3 });
  cy.on("tap", "node", (event) => select(event.target.id()));
  cy.on("tap", (event) => { if (event.target === cy) unselect(); });
  // The graph's box changes with the window and when extension panels come or go: fit again.
  new ResizeObserver(() => resizeGraph()).observe(document.getElementById("graph"));
  window.mfx = Object.assign(window.mfx || {}, { cy, plugins, renderedAt, chain: () => chain });
  on("plugins", {
    list: (data) => {
      // A second list comes only when the watch could not resume (its resourceVersion was
      // compacted away): the page is brought back in line without a reload.
      document.body.dataset.graphLists = String(Number(document.body.dataset.graphLists || 0) + 1);
      const started = performance.now();
      plugins.clear();
      for (const obj of data.items) plugins.set(obj.metadata.name, obj);
      redraw();
      performance.measure("mfx:list", { start: started });
      document.body.dataset.graphDrawn = String(performance.now());
    },
    change: (event) => applyChange(event.type, event.object),
    chain: (data) => { chain = data.nodes; markChain(); },
  });
}

export function restyleGraph() {
  if (cy) cy.style(style());
}

// Fitted, a big graph's labels are too small to read: below that zoom, stay readable and
// centre on the top of the graph (the plugins everything depends on); wheel and drag move on.
const MIN_READABLE = 0.8;
function readableZoom() {
  if (cy.zoom() > 1.4) { cy.zoom(1.4); cy.center(); }
  if (cy.nodes().length && cy.zoom() < MIN_READABLE) {
    const top = cy.nodes().filter((n) => n.outgoers("edge").length === 0);
    cy.zoom(MIN_READABLE);
    cy.center(top.length ? top : undefined);
    const box = cy.nodes().renderedBoundingBox();
    cy.panBy({ x: 0, y: 24 - box.y1 });  // the top row at the top of the box
  }
}

export function resizeGraph() {
  if (cy) { cy.resize(); cy.fit(cy.nodes(), 24); readableZoom(); }
}
