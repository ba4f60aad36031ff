// The player: now playing (progress extrapolated by the clock between state messages, as the
// API says), karaoke-style lyrics, queue, search and controls. State comes from the player's
// watch; the buttons call the player API.
import { on, api, el, clock } from "./stream.js";

const P = "/apis/player.mfx.musicfox.io/v1";
let state = {};
let receivedAt = 0;
let lyrics = { songId: null, lines: [] };
let timer = null;
const listeners = [];

export function onState(listener) { listeners.push(listener); }

function position() {
  const base = state.positionSeconds || 0;
  if (state.status !== "playing") return base;
  const moved = base + (performance.now() - receivedAt) / 1000;
  const total = state.durationSeconds ?? state.current?.durationSeconds;
  return total ? Math.min(moved, total) : moved;
}

function artists(song) { return (song?.artists || []).map((a) => a.name).join(", "); }

function songItem(song, actions) {
  return el("li", { "data-song": song.id },
    el("span", { class: "song-title" }, song.title),
    el("span", { class: "muted" }, ` ${artists(song)}${song.durationSeconds ? ` · ${clock(song.durationSeconds)}` : ""}`),
    el("span", { class: "actions" }, ...actions));
}

function renderState() {
  const song = state.current;
  document.getElementById("now-status").textContent = state.status || "stopped";
  document.getElementById("now-title").textContent = song ? song.title : "Nothing playing";
  document.getElementById("now-artist").textContent = song ? [artists(song), song.album?.name].filter(Boolean).join(" — ") : "";
  document.getElementById("btn-play").textContent = state.status === "playing" ? "❚❚" : "▶";
  const volume = document.getElementById("volume");
  if (document.activeElement !== volume) volume.value = state.volume ?? 100;
  const queue = state.queue || [];
  document.getElementById("queue").replaceChildren(...queue.map((s, i) => {
    const item = songItem(s, [el("button", { class: "small", title: "Play this one", onclick: () => api("POST", `${P}/play`, { index: i }) }, "▶"),
      el("button", { class: "small", title: "Remove", onclick: () => api("DELETE", `${P}/queue/${i}`) }, "✕")]);
    if (i === state.currentIndex) item.classList.add("current");
    return item;
  }));
  if (!queue.length) document.getElementById("queue").replaceChildren(el("li", { class: "muted" }, "Empty: search for a song and play it or add it."));
  if (song && song.id !== lyrics.songId) loadLyrics(song.id);
  if (!song) lyrics = { songId: null, lines: [] };
  renderLyrics(true);
  tick();
}

async function loadLyrics(songId) {
  lyrics = { songId, lines: [], plain: null };
  try {
    const data = await api("GET", `${P}/lyrics?songId=${encodeURIComponent(songId)}`);
    if (lyrics.songId === songId) lyrics = { songId, lines: data.lines || [], plain: data.plain || null };
  } catch {
    lyrics = { songId, lines: [], plain: null };
  }
  renderLyrics(true);
}

let shownLine = -2;
function renderLyrics(force) {
  const box = document.getElementById("lyrics");
  const at = position();
  let index = -1;
  lyrics.lines.forEach((line, i) => { if (line.time <= at) index = i; });
  if (!force && index === shownLine) return;
  shownLine = index;
  if (!lyrics.lines.length) {
    box.replaceChildren(el("p", { class: "muted" }, lyrics.plain || (state.current ? "No lyrics for this song." : "")));
    return;
  }
  const from = Math.max(0, index - 2);
  box.replaceChildren(...lyrics.lines.slice(from, from + 6).map((line, k) =>
    el("p", { class: from + k === index ? "lyric current" : (from + k < index ? "lyric past" : "lyric") }, line.text,
      line.translation ? el("span", { class: "translation" }, line.translation) : "")));
}

function tick() {
  // The clock moves the bar between state messages: no request is made here.
  const total = state.durationSeconds ?? state.current?.durationSeconds;
  const at = position();
  document.getElementById("now-pos").textContent = clock(at);
  document.getElementById("now-dur").textContent = clock(total);
  document.getElementById("now-bar").style.width = total ? `${Math.min(100, (100 * at) / total)}%` : "0%";
  renderLyrics(false);
}

async function search(event) {
  event.preventDefault();
  const q = document.getElementById("search-box").value.trim();
  const list = document.getElementById("search-results");
  if (!q) { list.replaceChildren(); return; }
  const result = await api("GET", `${P}/search?q=${encodeURIComponent(q)}&type=song&limit=20`);
  const songs = result.songs || [];
  list.replaceChildren(...(songs.length ? songs.map((song) => songItem(song, [
    el("button", { class: "small play-song", title: "Play now", onclick: () => api("POST", `${P}/play`, { songs: [song] }) }, "▶ Play"),
    el("button", { class: "small", title: "Add to the queue", onclick: () => api("POST", `${P}/queue`, { songs: [song] }) }, "+ Queue"),
  ])) : [el("li", { class: "muted" }, `Nothing found for “${q}”.`)]));
}

export function startPlayer() {
  document.getElementById("btn-play").addEventListener("click", () => {
    if (state.status === "playing") return api("POST", `${P}/pause`);
    if (state.status === "paused") return api("POST", `${P}/resume`);
    return api("POST", `${P}/play`, {});
  });
  document.getElementById("btn-stop").addEventListener("click", () => api("POST", `${P}/stop`));
  document.getElementById("btn-next").addEventListener("click", () => api("POST", `${P}/next`));
  document.getElementById("btn-prev").addEventListener("click", () => api("POST", `${P}/previous`));
  document.getElementById("volume").addEventListener("change", (e) => api("PUT", `${P}/volume`, { volume: Number(e.target.value) }));
  document.getElementById("search-form").addEventListener("submit", search);
  on("player", {
    absent: (data) => {
      document.getElementById("now-status").textContent = "no player";
      document.getElementById("now-title").textContent = "No player here";
      document.getElementById("now-artist").textContent = data.message;
      for (const control of document.querySelectorAll("#page-player button, #page-player input")) control.disabled = true;
    },
    state: (data) => {
      for (const control of document.querySelectorAll("#page-player :disabled")) control.disabled = false;
      state = data; receivedAt = performance.now();
      renderState();
      for (const listener of listeners) listener(state);
    },
  });
  timer = timer || setInterval(tick, 250);
}
