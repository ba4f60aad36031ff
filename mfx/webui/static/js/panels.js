// UIExtension plugins on the web: each Ready provider's render() text as a card in the region
// its layout() names (top, bottom, left or right of the main area), re-rendered by the server
// at every player change and hot reload; the keys it binds work on the page (the server asks
// its handle_input() and performs the action, as the terminal UI does); its themes go into
// the theme menu, and a chosen palette becomes the page's CSS variables.
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
    // Only primary is required: the dark theme's secondary and accent would be pale on a
    // light background, so the theme's primary stands in for them.
    for (const key of ["secondary", "accent"]) if (!palette[key]) root.style.setProperty(`--${key}`, palette.primary);
    root.classList.toggle("light", palette.dark === false);
  }
  localStorage.setItem("mfx-theme", value);
  restyleGraph();
}

const REGIONS = ["top", "bottom", "left", "right"];
let bound = []; // [{plugin, keys}] in the order the server sent them: the first binder wins

function card(panel) {
  const text = panel.problem ? el("p", { class: "problem" }, panel.problem) : el("pre", { class: "panel-text" }, panel.text);
  const rows = Math.max(1, panel.rows || 1);
  const node = el("section", { class: "card panel", "data-panel": panel.plugin, "data-region": panel.region },
    el("h3", {}, panel.title, panel.keys?.length ? el("span", { class: "panel-keys", title: "Keys this panel binds" }, ...panel.keys.map((k) => el("kbd", {}, keyLabel(k)))) : ""),
    text);
  // rows: a top or bottom panel's height in lines, a left or right one's width in columns.
  if (panel.region === "left" || panel.region === "right") node.style.width = `min(40vw, max(220px, calc(${rows}ch + 30px)))`;
  else text.style.maxHeight = `${rows * 1.45 + 0.2}em`;
  return node;
}

function place(panels) {
  for (const region of REGIONS) {
    const box = document.getElementById(`panels-${region}`);
    const mine = panels.filter((panel) => (REGIONS.includes(panel.region) ? panel.region : "bottom") === region);
    box.replaceChildren(...mine.map(card));
    box.hidden = mine.length === 0;
  }
  bound = panels.filter((panel) => panel.keys?.length && !panel.problem).map((panel) => ({ plugin: panel.plugin, keys: panel.keys }));
}

// A browser key as Textual names it (what keys() lists): "n", "N", "space", "minus",
// "ctrl+l", "f5", "up".
const NAMED = {
  " ": "space", "-": "minus", "=": "equals_sign", "+": "plus", ",": "comma", ".": "full_stop", "/": "slash",
  "?": "question_mark", "[": "left_square_bracket", "]": "right_square_bracket", ";": "semicolon", ":": "colon",
  "'": "apostrophe", '"': "quotation_mark", "!": "exclamation_mark", "#": "number_sign", "*": "asterisk",
  "<": "less_than_sign", ">": "greater_than_sign", "\\": "backslash", "`": "grave_accent", "~": "tilde", "@": "at",
  "$": "dollar_sign", "%": "percent_sign", "^": "circumflex_accent", "&": "ampersand", "(": "left_parenthesis",
  ")": "right_parenthesis", "_": "underscore", "{": "left_curly_bracket", "}": "right_curly_bracket", "|": "vertical_line",
  ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right", PageUp: "pageup", PageDown: "pagedown",
  Home: "home", End: "end", Enter: "enter", Escape: "escape", Tab: "tab", Backspace: "backspace", Delete: "delete", Insert: "insert",
};
export function keyName(event) {
  const printable = event.key.length === 1;
  const base = NAMED[event.key] || (printable ? event.key : event.key.toLowerCase());
  const mods = [event.ctrlKey && "ctrl", event.altKey && "alt", event.shiftKey && !printable && "shift"].filter(Boolean);
  return [...mods, base].join("+");
}
const SHOWN = { space: "Space", minus: "-", equals_sign: "=", plus: "+", comma: ",", full_stop: ".", slash: "/", question_mark: "?",
  left_square_bracket: "[", right_square_bracket: "]" };
function keyLabel(key) { return SHOWN[key] || key; }

function typing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

async function onKey(event) {
  if (event.metaKey || event.isComposing || typing(event.target)) return;
  const key = keyName(event);
  const binder = bound.find((b) => b.keys.includes(key));
  if (!binder) return;
  event.preventDefault();
  const done = await api("POST", `/ui/keys/${encodeURIComponent(binder.plugin)}`, { key });
  document.body.dataset.lastKey = `${binder.plugin} ${key} ${done.action ?? "none"}`;
}

export function startPanels() {
  const select = document.getElementById("theme-select");
  select.addEventListener("change", () => applyTheme(select.value));
  document.addEventListener("keydown", (event) => { onKey(event).catch(() => {}); }); // api() shows the problem
  let restored = false;
  on("panels", {
    panels: (data) => {
      place(data.panels);
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
