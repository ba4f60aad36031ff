// AudioSinks from their watch: state (the Ready condition's reason), xruns, latency.
import { on, el, condition } from "./stream.js";

const sinks = new Map();

function render() {
  const rows = [...sinks.values()].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map((obj) => {
    const spec = obj.spec || {};
    const status = obj.status || {};
    const ready = condition(obj, "Ready");
    const actual = status.actual || {};
    const latency = status.latencySeconds;
    return el("tr", { "data-sink": obj.metadata.name, class: `status-${String(ready?.status || "unknown").toLowerCase()}` },
      el("td", {}, obj.metadata.name, spec.default ? el("span", { class: "badge" }, "default") : ""),
      el("td", {}, spec.device || ""),
      el("td", {}, el("span", { class: `dot ${ready?.status === "True" ? "ready" : "stalled"}` }), ready?.status || "Unknown"),
      el("td", { title: ready?.message || "" }, ready?.reason || ""),
      el("td", {}, `${actual.rate || spec.rate || ""} Hz ${actual.format || spec.format || ""}`),
      el("td", { class: status.xruns ? "warn" : "" }, status.xruns ?? 0),
      el("td", {}, latency === undefined ? "" : `${(latency * 1000).toFixed(1)} ms`));
  });
  document.getElementById("sink-rows").replaceChildren(...rows);
  document.getElementById("sinks-empty").hidden = rows.length > 0;
}

export function startSinks() {
  on("sinks", {
    list: (data) => { sinks.clear(); for (const obj of data.items) sinks.set(obj.metadata.name, obj); render(); },
    change: (event) => {
      if (event.type === "DELETED") sinks.delete(event.object.metadata.name);
      else sinks.set(event.object.metadata.name, event.object);
      render();
    },
  });
}
