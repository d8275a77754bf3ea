// The graph page: build a graph on the server, step it on graphgrad's StepExecutor, replay a
// ThreadPoolExecutor run's event log.
import { $, api, UrlState, parseAssignments, formatAssignments, prepareSvg, setNodeState,
  showLine, clearError } from "./common.js";

const state = new UrlState({ example: "001", expr: "", at: "", lr: 0.1, workers: 2, speed: 0 });
const lab = { state, session: null, nodes: new Map(), phase: null, events: [], examples: {} };
window.lab = lab;

function request() {
  const s = state.value;
  const body = { lr: s.lr };
  if (s.example) body.example = s.example; else body.expr = s.expr;
  body.at = s.at ? parseAssignments(s.at) : {};
  return body;
}

function fillForm() {
  const s = state.value;
  const example = lab.examples[s.example];
  $("#example").value = s.example;
  $("#expr").value = example ? (example.expr || "(built node by node)") : s.expr;
  $("#expr").disabled = Boolean(example);
  $("#at").value = s.at || (example ? formatAssignments(example.at) : "");
  $("#lr").value = s.lr;
  $("#workers").value = String(s.workers);
  $("#speed").value = String(s.speed);
  $("#speed-label").textContent = `${Math.pow(10, s.speed).toFixed(2)}x`;
}

async function build() {
  clearError();
  let body;
  try { body = request(); } catch (e) { $("#error").hidden = false; $("#error").textContent = e.message; return; }
  if (lab.session) api("DELETE", `/api/graph/sessions/${lab.session}`).catch(() => {});
  lab.session = null;
  const data = await api("POST", "/api/graph/sessions", body);
  lab.session = data.session;
  $("#title").textContent = data.title;
  lab.nodes = prepareSvg($("#picture"), data.svg);
  for (const entry of lab.nodes.values()) setNodeState(entry, "forward", "waiting");
  $("#explain").innerHTML = data.explain_html;
  for (const el of $("#explain").querySelectorAll("tr[data-pass], table")) el.classList.add("pending");
  $("#n-total").textContent = data.nodes.length;
  setCounts({ waiting: data.nodes.length, active: 0, completed: 0 });
  lab.phase = lab.shownPhase = "forward";
  $("#phase").textContent = "forward pass: step to run the first ready node";
  $("#last").textContent = "";
  enableSteps(true);
}

function setCounts(c) {
  $("#n-waiting").textContent = c.waiting;
  $("#n-active").textContent = c.active;
  $("#n-completed").textContent = c.completed;
}

function enableSteps(on) {
  for (const id of ["#step", "#forward", "#all"]) $(id).disabled = !on;
}

function reveal(pass, id) {
  for (const row of $("#explain").querySelectorAll("tr.current")) row.classList.remove("current");
  const row = $(`#explain tr[data-pass="${pass}"][data-id="${id}"]`);
  if (!row) return;
  row.classList.remove("pending");
  row.classList.add("current");
  row.closest("table").classList.remove("pending");
}

function apply(change) {
  if (change.phase === "done") {
    lab.phase = lab.shownPhase = "done";
    for (const row of $("#explain").querySelectorAll('tr[data-pass="update"]')) reveal("update", row.dataset.id);
    $("#phase").textContent = "done: forward and backward passes complete";
    enableSteps(false);
    return;
  }
  if (change.phase !== lab.shownPhase) {
    lab.shownPhase = change.phase;
    // the backward pass starts: every node leaves its forward colour for the waiting one
    for (const [id, entry] of lab.nodes) setNodeState(entry, "backward", change.states[id] ? "waiting" : null);
  }
  for (const [id, st] of Object.entries(change.states)) {
    const entry = lab.nodes.get(Number(id));
    if (entry) setNodeState(entry, change.phase, st === "ready" && change.phase === "backward" ? "waiting" : st);
  }
  setCounts(change.counts);
  const entry = lab.nodes.get(change.node);
  for (const t of $("#picture").querySelectorAll("text.fresh")) t.classList.remove("fresh");
  if (change.state === "done" && entry) {
    if (change.value !== undefined) { showLine(entry, "value", change.value); entry.value?.classList.add("fresh"); }
    if (change.grad !== undefined && change.grad !== null) { showLine(entry, "grad", change.grad); entry.grad?.classList.add("fresh"); }
    reveal(change.phase, change.node);
  }
  const what = change.phase === "forward" ? `value ${change.value ?? ""}` : `gradient ${change.grad ?? ""}`;
  $("#last").textContent = change.state === "running"
    ? `${change.phase}: ${change.name} is running`
    : `${change.phase}: ${change.name} done, ${what}`;
  $("#phase").textContent = `${change.phase} pass`;
}

async function step(count, phase = "any") {
  if (!lab.session) return;
  enableSteps(false);
  try {
    const data = await api("POST", `/api/graph/sessions/${lab.session}/step`, { count, phase });
    for (const change of data.changes) apply(change);
    lab.phase = data.phase;
    if (data.phase === "done" && data.changes.length && data.changes.at(-1).phase !== "done") {
      await step(1);  // fetch the update table's moment
    }
  } finally {
    if (lab.phase !== "done") enableSteps(true);
  }
}

async function reset() {
  if (!lab.session) return build();
  await api("POST", `/api/graph/sessions/${lab.session}/reset`, {});
  for (const entry of lab.nodes.values()) {
    setNodeState(entry, "forward", "waiting");
    for (const t of [entry.value, entry.grad]) if (t) t.classList.add("hidden-line");
  }
  for (const el of $("#explain").querySelectorAll("tr[data-pass], table")) el.classList.add("pending");
  setCounts({ waiting: lab.nodes.size, active: 0, completed: 0 });
  lab.phase = lab.shownPhase = "forward";
  $("#phase").textContent = "forward pass";
  enableSteps(true);
}

// ---------------------------------------------------------------- the thread-pool replay
const LANE_COLOURS = { forward: "#1f7a72", backward: "#6a3d9a" };
let replayTimer = null;

async function runThreads() {
  clearError();
  const body = { ...request(), workers: state.value.workers };
  const data = await api("POST", "/api/graph/threads", body);
  lab.events = data.events;
  lab.wall = data.wall;
  $("#replay").disabled = false;
  replay();
}

function replay() {
  cancelAnimationFrame(replayTimer);
  const events = lab.events;
  const duration = 4000 / Math.pow(10, state.value.speed); // ms of animation for the whole run
  const wall = Math.max(lab.wall, 1e-9);
  const log = [];
  const marks = events.flatMap((e) => [
    { t: e.start, text: `${fmtMs(e.start)}  ${e.worker.padEnd(9)} ${e.phase.padEnd(8)} start  ${e.name}` },
    { t: e.end, text: `${fmtMs(e.end)}  ${e.worker.padEnd(9)} ${e.phase.padEnd(8)} ${e.state.padEnd(6)} ${e.name}` },
  ]).sort((a, b) => a.t - b.t);
  let shown = 0;
  const began = performance.now();
  const frame = (now) => {
    const t = Math.min(1, (now - began) / duration) * wall;
    while (shown < marks.length && marks[shown].t <= t) log.push(marks[shown++].text);
    $("#log").textContent = log.join("\n") || "…";
    $("#log").scrollTop = $("#log").scrollHeight;
    drawTimeline(t);
    colourNodes(t);
    if (t < wall) replayTimer = requestAnimationFrame(frame);
  };
  replayTimer = requestAnimationFrame(frame);
}

function fmtMs(seconds) { return `${(seconds * 1000).toFixed(3).padStart(8)} ms`; }

function colourNodes(t) {
  let waiting = 0, active = 0, completed = 0;
  for (const e of lab.events) {
    const st = e.end <= t ? "done" : e.start <= t ? "running" : "waiting";
    if (st === "done") completed++; else if (st === "running") active++; else waiting++;
    const entry = lab.nodes.get(e.node);
    if (!entry) continue;
    if (e.phase === "forward" && (st !== "waiting" || !hasStarted(e.node, "backward", t))) {
      if (!hasStarted(e.node, "backward", t)) setNodeState(entry, "forward", st);
    } else if (e.phase === "backward" && st !== "waiting") {
      setNodeState(entry, "backward", st);
    }
  }
  $("#r-waiting").textContent = waiting;
  $("#r-active").textContent = active;
  $("#r-completed").textContent = completed;
  $("#r-clock").textContent = `t = ${(t * 1000).toFixed(3)} ms of ${(lab.wall * 1000).toFixed(3)} ms (${lab.events.length} node runs: forward and backward)`;
}

function hasStarted(node, phase, t) {
  return lab.events.some((e) => e.node === node && e.phase === phase && e.start <= t);
}

function drawTimeline(t) {
  const canvas = $("#timeline");
  const ctx = canvas.getContext("2d");
  const workers = [...new Set(lab.events.map((e) => e.worker))].sort();
  const left = 90, right = 10, top = 10, lane = Math.min(40, (canvas.height - 30) / Math.max(workers.length, 1));
  const scale = (canvas.width - left - right) / Math.max(lab.wall, 1e-9);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px DejaVu Sans, sans-serif";
  workers.forEach((w, k) => {
    const y = top + k * lane;
    ctx.fillStyle = "#5b6473";
    ctx.fillText(w, 8, y + lane / 2 + 4);
    ctx.strokeStyle = "#eceff3";
    ctx.strokeRect(left, y, canvas.width - left - right, lane - 4);
    for (const e of lab.events.filter((e) => e.worker === w && e.start <= t)) {
      const x0 = left + e.start * scale;
      const x1 = left + Math.min(e.end, t) * scale;
      ctx.fillStyle = LANE_COLOURS[e.phase];
      ctx.globalAlpha = e.end <= t ? 0.85 : 0.45;
      ctx.fillRect(x0, y + 2, Math.max(1.5, x1 - x0), lane - 8);
      ctx.globalAlpha = 1;
    }
  });
  const x = left + t * scale;
  ctx.strokeStyle = "#b3261e";
  ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + workers.length * lane); ctx.stroke();
  ctx.fillStyle = "#5b6473";
  ctx.fillText("forward", left, canvas.height - 6);
  ctx.fillStyle = LANE_COLOURS.forward; ctx.fillRect(left + 55, canvas.height - 15, 12, 10);
  ctx.fillStyle = "#5b6473"; ctx.fillText("backward", left + 80, canvas.height - 6);
  ctx.fillStyle = LANE_COLOURS.backward; ctx.fillRect(left + 145, canvas.height - 15, 12, 10);
}

// ---------------------------------------------------------------- wiring
async function start() {
  const data = await api("GET", "/api/graph/examples");
  for (const ex of data.examples) {
    lab.examples[ex.id] = ex;
    const option = document.createElement("option");
    option.value = ex.id;
    option.textContent = ex.title;
    $("#example").append(option);
  }
  fillForm();
  $("#example").addEventListener("change", () => {
    const id = $("#example").value;
    state.set({ example: id, at: "", expr: id ? "" : state.value.expr || "tanh(log(1 + z*2*x/sin(y)))" });
    if (!id && !state.value.at) state.set({ at: "x=1,y=2,z=3" });
    fillForm();
    build();
  });
  $("#expr").addEventListener("change", () => state.set({ expr: $("#expr").value }));
  $("#at").addEventListener("change", () => state.set({ at: $("#at").value }));
  $("#lr").addEventListener("change", () => state.set({ lr: Number($("#lr").value) }));
  $("#workers").addEventListener("change", () => state.set({ workers: Number($("#workers").value) }));
  $("#speed").addEventListener("input", () => {
    state.set({ speed: Number($("#speed").value) });
    $("#speed-label").textContent = `${Math.pow(10, state.value.speed).toFixed(2)}x`;
  });
  $("#build").addEventListener("click", () => {
    state.set({ expr: state.value.example ? "" : $("#expr").value, at: $("#at").value, lr: Number($("#lr").value) });
    build();
  });
  $("#step").addEventListener("click", () => step(1));
  $("#forward").addEventListener("click", () => step(1000, "forward"));
  $("#all").addEventListener("click", () => step(1000));
  $("#reset").addEventListener("click", () => reset());
  $("#threads").addEventListener("click", () => runThreads());
  $("#replay").addEventListener("click", () => replay());
  await build();
  document.body.dataset.ready = "1";
}

start();
