// The page: four views behind tabs (the URL's #hash), each fed by its own live stream.
import { startGraph, resizeGraph } from "./graph.js";
import { startPlayer } from "./player.js";
import { startSinks } from "./sinks.js";
import { startHealth, showHealth } from "./health.js";
import { startPanels } from "./panels.js";
import { connect } from "./stream.js";

function show() {
  const page = (location.hash || "#graph").slice(1);
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== `page-${page}`;
  for (const tab of document.querySelectorAll(".tabs a")) tab.classList.toggle("active", tab.dataset.page === page);
  if (page === "graph") resizeGraph();
  if (page === "health") showHealth();
}

window.addEventListener("hashchange", show);
show();
startGraph();
startPlayer();
startSinks();
startHealth();
startPanels();
connect();
show();
