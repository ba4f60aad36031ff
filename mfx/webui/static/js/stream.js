// A live stream from the UI server (Server-Sent Events). EventSource reconnects by itself and
// sends Last-Event-ID, so a watch resumes from its resourceVersion; a watch whose version is
// gone (410: compacted away) lists again, and the page gets a fresh "list". When the browser
// gives up (an answer that is not a stream, e.g. while the daemon restarts), a new
// EventSource is opened with the last id in the URL, which a new one cannot send as a header.
const live = new Set();
const RETRY_MS = 1000;

function showConnection() {
  const el = document.getElementById("connection");
  const down = [...live].some((s) => s.source.readyState !== EventSource.OPEN);
  el.textContent = down ? "reconnecting" : "live";
  el.classList.toggle("down", down);
}

export function problem(message) {
  const bar = document.getElementById("problem");
  bar.textContent = message || "";
  bar.hidden = !message;
}

// handlers: {"TOPIC.EVENT": fn(data)}; "TOPIC.problem" messages go to the problem bar.
export function openStream(url, handlers) {
  const stream = { source: null, lastId: "", timer: 0, closed: false };
  const topics = new Set(Object.keys(handlers).map((name) => name.split(".")[0]));
  const open = () => {
    const resume = stream.lastId ? `${url.includes("?") ? "&" : "?"}lastEventId=${encodeURIComponent(stream.lastId)}` : "";
    const source = new EventSource(url + resume);
    stream.source = source;
    for (const [name, handler] of Object.entries(handlers)) {
      source.addEventListener(name, (event) => {
        if (event.lastEventId) stream.lastId = event.lastEventId;
        handler(JSON.parse(event.data));
      });
    }
    for (const topic of topics) {
      source.addEventListener(`${topic}.problem`, (event) => problem(JSON.parse(event.data).message));
    }
    source.onopen = () => { problem(""); showConnection(); };
    source.onerror = () => {
      showConnection();
      if (source.readyState === EventSource.CLOSED && !stream.closed) {
        stream.timer = setTimeout(open, RETRY_MS);
      }
    };
  };
  open();
  live.add(stream);
  stream.close = () => { stream.closed = true; clearTimeout(stream.timer); stream.source.close(); live.delete(stream); };
  return stream;
}

// The page's one stream for all its topics (a browser keeps six connections per server).
const subscriptions = {};
export function on(topic, handlers) {
  for (const [event, handler] of Object.entries(handlers)) subscriptions[`${topic}.${event}`] = handler;
}
export function connect() {
  const topics = [...new Set(Object.keys(subscriptions).map((name) => name.split(".")[0]))];
  return openStream(`/ui/stream?topics=${topics.join(",")}`, subscriptions);
}

export async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    problem(data.message || `${method} ${path}: ${response.status}`);
    throw new Error(data.message || String(response.status));
  }
  problem("");
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

export function clock(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "-:--";
  const whole = Math.max(0, Math.floor(seconds));
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

export function condition(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type) || null;
}
