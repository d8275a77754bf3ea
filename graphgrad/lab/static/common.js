// What every page of the lab shares: the API client, the error banner, and the page's state
// object kept in the URL's query string.

export const $ = (selector) => document.querySelector(selector);

export function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

export function clearError() { $("#error").hidden = true; }

// fetch + JSON; a 4xx/5xx answer's {"error": ...} is shown and thrown.
export async function api(method, path, body, contentType = "application/json") {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = contentType;
    options.body = contentType === "application/json" ? JSON.stringify(body) : body;
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(data.error || `HTTP ${response.status}`);
    error.status = response.status;
    showError(error.message);
    throw error;
  }
  return data;
}

// One serialisable state object per page. Each key of `defaults` is a query parameter whose
// type (number, boolean or string) is the default's; unknown or malformed ones are ignored.
export class UrlState {
  // `always`: keys written to the URL even at their default (the defaults may depend on them).
  constructor(defaults, always = []) {
    this.always = always;
    this.defaults = { ...defaults };
    this.value = { ...defaults };
    const query = new URLSearchParams(location.search);
    for (const [key, fallback] of Object.entries(defaults)) {
      if (!query.has(key)) continue;
      const raw = query.get(key);
      if (typeof fallback === "number") {
        const n = Number(raw);
        if (raw.trim() !== "" && Number.isFinite(n)) this.value[key] = n;
      } else if (typeof fallback === "boolean") {
        this.value[key] = raw === "1" || raw === "true";
      } else {
        this.value[key] = raw;
      }
    }
  }

  // Merge `changes` and write the URL (only what differs from the defaults, so links are short).
  set(changes) {
    Object.assign(this.value, changes);
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(this.value)) {
      if (value !== this.defaults[key] || this.always.includes(key)) query.set(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
    }
    const text = query.toString();
    history.replaceState(null, "", location.pathname + (text ? "?" + text : ""));
  }
}

// "x=2,w=3,b=1" <-> {x: 2, w: 3, b: 1}
export function parseAssignments(text) {
  const values = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [name, value] = part.split("=").map((s) => s.trim());
    if (!name || value === undefined || value === "" || !Number.isFinite(Number(value))) {
      throw new Error(`values: expected NAME=NUMBER, got "${part}"`);
    }
    values[name] = Number(value);
  }
  return values;
}

export function formatAssignments(values) {
  return Object.entries(values).map(([k, v]) => `${k}=${v}`).join(",");
}

// A number with 4 significant digits for axes and status lines.
export function short(v) {
  if (typeof v !== "number") return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e5 || a < 1e-3 ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
}

// graphgrad's SVG: hide the value= and grad= lines until the page has stepped a node.
export function prepareSvg(container, svgText) {
  container.innerHTML = svgText;
  const nodes = new Map();
  for (const g of container.querySelectorAll("g.node")) {
    const id = Number(g.id.replace("node-", ""));
    const entry = { g, value: null, grad: null };
    for (const t of g.querySelectorAll("text")) {
      if (t.textContent.startsWith("value=")) entry.value = t;
      if (t.textContent.startsWith("grad=")) entry.grad = t;
    }
    for (const t of [entry.value, entry.grad]) if (t) t.classList.add("hidden-line");
    nodes.set(id, entry);
  }
  return nodes;
}

export function setNodeState(entry, phase, state) {
  const g = entry.g;
  for (const c of [...g.classList]) if (/^[fb]-/.test(c)) g.classList.remove(c);
  if (state) g.classList.add(`${phase === "backward" ? "b" : "f"}-${state}`);
}

export function showLine(entry, which, text) {
  const line = entry[which];
  if (!line) return;
  if (text !== undefined) line.textContent = `${which}=${text}`;
  line.classList.remove("hidden-line");
}
