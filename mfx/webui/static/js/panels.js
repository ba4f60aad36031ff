// UIExtension plugins on the web: each Ready provider's render() text as a card (titled by
// its layout), re-rendered by the server at every player change and hot reload; their themes
// go into the theme menu, and a chosen palette becomes the page's CSS variables.
import { on, api, el } from "./stream.js";
import { restyleGraph } from "./graph.js";

const KEYS = ["primary", "secondary", "accent", "foreground", "background", "surface", "panel", "success", "warning", "error"];

function themeMenu(panels) {
  const select = document.getElementById("theme-select");
  const chosen = select.value;
  const options = [el("option", { value: "" }, "mfx dark")];
  for (const panel of panels) {
    for (const name of panel.themes || []) options.push(el("option", { value: `${panel.plugin}/${name}` }, `${name} (${panel.plugin})`));
  }
  select.replaceChildren(...options);
  select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "";
}

async function applyTheme(value) {
  const root = document.documentElement;
  for (const key of KEYS) root.style.removeProperty(`--${key}`);
  root.classList.remove("light");
  if (value) {
    const [plugin, ...rest] = value.split("/");
    const palette = await api("GET", `/ui/theme/${encodeURIComponent(plugin)}/${encodeURIComponent(rest.join("/"))}`);
    for (const key of KEYS) if (palette[key]) root.style.setProperty(`--${key}`, palette[key]);
    root.classList.toggle("light", palette.dark === false);
  }
  localStorage.setItem("mfx-theme", value);
  restyleGraph();
}

export function startPanels() {
  const select = document.getElementById("theme-select");
  select.addEventListener("change", () => applyTheme(select.value));
  let restored = false;
  on("panels", {
    panels: (data) => {
      const box = document.getElementById("panels");
      box.replaceChildren(...data.panels.map((panel) => el("section", { class: `card panel region-${panel.region}`, "data-panel": panel.plugin },
        el("h3", {}, panel.title),
        panel.problem ? el("p", { class: "problem" }, panel.problem) : el("pre", { class: "panel-text" }, panel.text))));
      box.hidden = data.panels.length === 0;
      themeMenu(data.panels);
      const saved = localStorage.getItem("mfx-theme");
      if (!restored && saved && [...select.options].some((o) => o.value === saved)) {
        restored = true;
        select.value = saved;
        applyTheme(saved);
      }
    },
  });
}
