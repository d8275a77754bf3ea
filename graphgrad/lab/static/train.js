// The train page: a fit running on the server, streamed as server-sent events and steered
// from here (learning rate, pause, step, reset).
import { $, api, UrlState, short, clearError, showError } from "./common.js";

const DEFAULTS = {
  linear: { optimizer: "sgd", lr: 0.1, lr_decay: 1, min_lr: 0, max_grad: 0, epochs: 100 },
  polynomial: { optimizer: "sgd", lr: 0.01, lr_decay: 0.999, min_lr: 0.001, max_grad: 1000, epochs: 300 },
  moons: { optimizer: "adam", lr: 0.03, lr_decay: 1, min_lr: 0, max_grad: 0, epochs: 300 },
  spirals: { optimizer: "adam", lr: 0.02, lr_decay: 1, min_lr: 0, max_grad: 0, epochs: 600 },
  points: { optimizer: "adam", lr: 0.05, lr_decay: 1, min_lr: 0, max_grad: 0, epochs: 300 },
};
const KNOBS = ["optimizer", "lr", "lr_decay", "min_lr", "max_grad", "epochs"];
const url = new URLSearchParams(location.search);
const task = DEFAULTS[url.get("task")] ? url.get("task") : "linear";
// The knobs' defaults are the task's, so the task is always in the URL.
const state = new UrlState({ task, ...DEFAULTS[task], scheduler: "none", speed: 30, seed: 0, points: "" }, ["task"]);
const CLASS_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"];
const lab = { state, session: null, source: null, records: [], lrMarks: [], view: null,
  picture: null, status: "not started", lrReported: null };
window.lab = lab;

// ---------------------------------------------------------------- the form and the URL
function fillForm() {
  const s = state.value;
  for (const key of ["task", "optimizer", "scheduler", "lr", "lr_decay", "min_lr", "max_grad", "epochs", "speed"]) {
    $(`#${key}`).value = s[key];
  }
  $("#lr-slider").value = Math.log10(s.lr);
  $("#point-tools").hidden = s.task !== "points";
}

function points() {
  if (!state.value.points) return [];
  return state.value.points.split(";").map((p) => p.split(",").map(Number));
}

function setPoints(list) {
  state.set({ points: list.map((p) => p.map((v) => Number(v.toFixed(3))).join(",")).join(";") });
}

function settings() {
  const s = state.value;
  const body = { task: s.task, optimizer: s.optimizer, scheduler: s.scheduler, lr: s.lr,
    lr_decay: s.lr_decay, min_lr: s.min_lr, max_grad: s.max_grad || null, epochs: s.epochs,
    speed: s.speed, seed: s.seed };
  if (s.task === "points") body.points = points();
  return body;
}

// ---------------------------------------------------------------- the session
async function startRun(paused = false) {
  clearError();
  await closeRun();
  const data = await api("POST", "/api/train/sessions", { ...settings(), paused });
  lab.session = data.session;
  lab.view = data.view;
  lab.records = [];
  lab.lrMarks = [];
  lab.picture = data.picture || null;
  lab.verdict = null;
  showStatus(data);
  listen();
  drawAll();
  return data;
}

function listen() {
  const source = new EventSource(`/api/train/sessions/${lab.session}/stream`);
  lab.source = source;
  lab.updates = 0;
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    lab.updates++;
    for (const r of data.records) {
      const last = lab.records.at(-1);
      if (last && r.lr !== last.lr) lab.lrMarks.push({ epoch: r.epoch, lr: r.lr });
      lab.records.push(r);
    }
    if (data.picture) lab.picture = data.picture;
    showStatus(data);
    drawAll();
  };
  source.addEventListener("end", () => { source.close(); if (lab.source === source) lab.source = null; });
  source.onerror = () => { source.close(); if (lab.source === source) lab.source = null; };
}

async function closeRun() {
  if (lab.source) { lab.source.close(); lab.source = null; }
  if (lab.session) {
    const key = lab.session;
    lab.session = null;
    await api("DELETE", `/api/train/sessions/${key}`).catch(() => {});
  }
}

function showStatus(data) {
  lab.status = data.status;
  lab.lrReported = data.lr;
  const last = lab.records.at(-1);
  const parts = [`${data.status}`, `epoch ${last ? last.epoch : 0} of ${data.epochs}`, `lr ${short(data.lr)}`];
  if (last) parts.push(`loss ${short(last.loss)}`);
  if (last && last.metric !== null && last.metric !== undefined) parts.push(`accuracy ${(100 * last.metric).toFixed(1)}%`);
  $("#status").textContent = parts.join(" · ");
  $("#pause").disabled = ["done", "diverged", "stopped", "failed"].includes(data.status);
  $("#pause").textContent = data.status === "paused" ? "Resume" : "Pause";
  if (data.verdict) { $("#verdict").hidden = false; $("#verdict").textContent = data.verdict; }
  if (data.error) showError(data.error);
  $("#notes").innerHTML = [...new Set(data.notes || [])].slice(-3).map((n) => `<li>${escapeHtml(n)}</li>`).join("");
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

async function control(body) {
  if (!lab.session) return null;
  const data = await api("POST", `/api/train/sessions/${lab.session}/control`, body);
  showStatus(data);
  return data;
}

// ---------------------------------------------------------------- drawing
function drawAll() {
  drawLoss();
  drawView();
}

function drawLoss() {
  const canvas = $("#loss");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 62, R = 14, T = 14, B = 34;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "12px DejaVu Sans, sans-serif";
  const finite = lab.records.filter((r) => typeof r.loss === "number" && r.loss > 0);
  const epochs = Math.max(state.value.epochs, ...lab.records.map((r) => r.epoch), 1);
  let lo = Math.min(...finite.map((r) => r.loss)), hi = Math.max(...finite.map((r) => r.loss));
  if (!finite.length) { lo = 0.01; hi = 100; }
  let a = Math.floor(Math.log10(lo)), b = Math.ceil(Math.log10(hi));
  if (a === b) { a -= 1; b += 1; }
  const x = (e) => L + (e / epochs) * (W - L - R);
  const y = (v) => T + (1 - (Math.log10(v) - a) / (b - a)) * (H - T - B);
  ctx.strokeStyle = "#e3e7ec"; ctx.fillStyle = "#5b6473";
  const stride = Math.max(1, Math.ceil((b - a) / 8));
  for (let k = a; k <= b; k += stride) {
    ctx.beginPath(); ctx.moveTo(L, y(10 ** k)); ctx.lineTo(W - R, y(10 ** k)); ctx.stroke();
    ctx.fillText(`1e${k}`, 8, y(10 ** k) + 4);
  }
  ctx.strokeStyle = "#9aa3ae"; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillText("epoch", W / 2 - 15, H - 6);
  ctx.fillText("0", L - 3, H - B + 14);
  ctx.fillText(String(epochs), W - R - 24, H - B + 14);
  ctx.fillText("training loss (log scale)", L + 6, T + 14);
  for (const m of lab.lrMarks) {
    ctx.strokeStyle = "#9467bd"; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(x(m.epoch), T); ctx.lineTo(x(m.epoch), H - B); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = "#9467bd";
    ctx.fillText(`lr → ${short(m.lr)}`, x(m.epoch) + 3, T + 30);
  }
  ctx.strokeStyle = "#1f7a72"; ctx.lineWidth = 2; ctx.beginPath();
  let pen = false;
  for (const r of lab.records) {
    if (typeof r.loss !== "number" || r.loss <= 0) { pen = false; continue; }
    const px = x(r.epoch), py = Math.max(T, Math.min(H - B, y(r.loss)));
    if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
    pen = true;
  }
  ctx.stroke(); ctx.lineWidth = 1;
  if (lab.status === "diverged" && lab.records.length) {
    const r = lab.records.at(-1);
    ctx.fillStyle = "#b3261e";
    ctx.fillText("diverged", x(r.epoch) - 50, T + 46);
  }
}

// The data view: a fixed box for clicks on the points task, else the data's own box.
function viewBox() {
  const s = state.value;
  const v = lab.view;
  if (s.task === "points") {
    const kind = points()[0]?.length === 3 || (!points().length && $("#point-kind").value !== "xy") ? "classes" : "line";
    return kind === "classes" ? { kind, x: [-2, 2], y: [-2, 2] } : { kind, x: [-3, 3], y: [-10, 25] };
  }
  if (!v) return null;
  if (v.kind === "classes") return { kind: v.kind, x: v.bounds[0], y: v.bounds[1] };
  if (v.kind === "line") return { kind: v.kind, x: [-2.5, 2.5], y: [-5, 25] };
  const ys = v.points.map((p) => p[0]);
  const lo = Math.min(...ys), hi = Math.max(...ys), pad = 0.1 * (hi - lo);
  return { kind: "polynomial", x: [lo - pad, hi + pad], y: [lo - pad, hi + pad] };
}

function drawView() {
  const canvas = $("#view");
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height;
  ctx.clearRect(0, 0, W, H);
  const box = viewBox();
  if (!box) return;
  const sx = (v) => ((v - box.x[0]) / (box.x[1] - box.x[0])) * W;
  const sy = (v) => H - ((v - box.y[0]) / (box.y[1] - box.y[0])) * H;
  const pts = state.value.task === "points" ? points() : (lab.view ? lab.view.points : []);
  const pic = lab.picture;
  ctx.font = "12px DejaVu Sans, sans-serif";
  if (box.kind === "classes") {
    $("#view-title").textContent = "Decision boundary: each cell coloured by the predicted class";
    if (pic && pic.heat) drawHeat(ctx, pic, sx, sy);
    for (const p of pts) {
      ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = CLASS_COLOURS[p[2]]; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.stroke();
    }
    $("#params").textContent = "";
  } else if (box.kind === "line") {
    $("#view-title").textContent = state.value.task === "linear"
      ? "The data, f(x) = 3x + 7 (dashed) and the model w·x + b" : "Your points and the line w·x + b";
    axes(ctx, sx, sy, box);
    if (state.value.task === "linear") {
      ctx.setLineDash([5, 4]); ctx.strokeStyle = "#9aa3ae";
      ctx.beginPath(); ctx.moveTo(sx(box.x[0]), sy(3 * box.x[0] + 7)); ctx.lineTo(sx(box.x[1]), sy(3 * box.x[1] + 7)); ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = "#1f77b4";
    for (const p of pts) { ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 3, 0, 2 * Math.PI); ctx.fill(); }
    const line = pic && pic.w !== undefined ? pic : (lab.session ? null : { w: -2, b: 15 });
    if (line) {
      ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.moveTo(sx(box.x[0]), sy(line.w * box.x[0] + line.b)); ctx.lineTo(sx(box.x[1]), sy(line.w * box.x[1] + line.b));
      ctx.stroke(); ctx.lineWidth = 1;
      $("#params").innerHTML = `w (slope) = ${line.w.toFixed(3)} &nbsp; b (intercept) = ${line.b.toFixed(3)}`;
    }
  } else {
    $("#view-title").textContent = "Seed polynomial: prediction against target for each point";
    axes(ctx, sx, sy, box);
    ctx.strokeStyle = "#9aa3ae"; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(sx(box.x[0]), sy(box.x[0])); ctx.lineTo(sx(box.x[1]), sy(box.x[1])); ctx.stroke();
    ctx.setLineDash([]);
    if (pic && pic.prediction) {
      ctx.fillStyle = "#1f77b4";
      pts.forEach((p, k) => {
        const q = pic.prediction[k];
        if (typeof q !== "number") return;
        ctx.beginPath(); ctx.arc(sx(p[0]), sy(Math.max(box.y[0], Math.min(box.y[1], q))), 3, 0, 2 * Math.PI); ctx.fill();
      });
      const target = [2, -3, 1, 4, -5];
      $("#params").innerHTML = Object.entries(pic.params).map(([k, v], i) =>
        `${k} = ${typeof v === "number" ? v.toFixed(4) : v} <span class="muted">(target ${target[i]})</span>`).join("<br>");
    }
  }
}

function axes(ctx, sx, sy, box) {
  ctx.strokeStyle = "#e3e7ec";
  ctx.beginPath(); ctx.moveTo(sx(box.x[0]), sy(0)); ctx.lineTo(sx(box.x[1]), sy(0)); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(sx(0), sy(box.y[0])); ctx.lineTo(sx(0), sy(box.y[1])); ctx.stroke();
  ctx.fillStyle = "#5b6473";
  const what = box.kind === "polynomial" ? "target (across) and prediction (up)" : "x";
  ctx.fillText(`${what} from ${short(box.x[0])} to ${short(box.x[1])}`, 6, 14);
}

// One pixel per cell on a small canvas, scaled up smoothly into the data box.
function drawHeat(ctx, pic, sx, sy) {
  const n = pic.grid;
  const [[x0, x1], [y0, y1]] = pic.bounds;
  const small = document.createElement("canvas");
  small.width = small.height = n;
  const sctx = small.getContext("2d");
  const image = sctx.createImageData(n, n);
  pic.heat.forEach((cell, k) => {
    const rgb = hexRgb(CLASS_COLOURS[Math.floor(cell / 10)]);
    const alpha = 0.15 + 0.55 * ((cell % 10) / 9);
    for (let c = 0; c < 3; c++) image.data[4 * k + c] = Math.round(255 + alpha * (rgb[c] - 255));
    image.data[4 * k + 3] = 255;
  });
  sctx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  const cw = (sx(x1) - sx(x0)) / (n - 1), ch = (sy(y0) - sy(y1)) / (n - 1);
  // cell centres sit at the grid's points, so the image reaches half a cell past the bounds
  ctx.drawImage(small, sx(x0) - cw / 2, sy(y1) - ch / 2, cw * n, ch * n);
}

function hexRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

// ---------------------------------------------------------------- wiring
function setLr(value, fromSlider) {
  if (!(value > 0)) return;
  state.set({ lr: Number(value.toPrecision(4)) });
  if (fromSlider) $("#lr").value = state.value.lr; else $("#lr-slider").value = Math.log10(value);
  if (lab.session && !["done", "diverged", "stopped", "failed"].includes(lab.status)) {
    clearTimeout(setLr.timer);
    setLr.timer = setTimeout(() => control({ lr: state.value.lr }), 60);
  }
}

async function start() {
  const data = await api("GET", "/api/train/defaults");
  for (const name of data.optimizers) $("#optimizer").append(new Option(name, name));
  for (const name of data.schedulers) $("#scheduler").append(new Option(name, name));
  fillForm();
  $("#task").addEventListener("change", async () => {
    const t = $("#task").value;
    await closeRun();
    state.set({ task: t, ...DEFAULTS[t] });
    fillForm();
    lab.records = []; lab.lrMarks = []; lab.picture = null; lab.view = null;
    $("#verdict").hidden = true;
    await preview();
  });
  for (const key of ["optimizer", "scheduler", "lr_decay", "min_lr", "max_grad", "epochs", "speed"]) {
    $(`#${key}`).addEventListener("change", () => {
      const raw = $(`#${key}`).value;
      state.set({ [key]: ["optimizer", "scheduler"].includes(key) ? raw : Number(raw) });
    });
  }
  $("#lr-slider").addEventListener("input", () => setLr(10 ** Number($("#lr-slider").value), true));
  $("#lr").addEventListener("change", () => setLr(Number($("#lr").value), false));
  $("#start").addEventListener("click", () => { $("#verdict").hidden = true; startRun(false); });
  $("#pause").addEventListener("click", () => control({ action: lab.status === "paused" ? "resume" : "pause" }));
  $("#step").addEventListener("click", async () => {
    if (!lab.session || ["done", "diverged", "stopped", "failed"].includes(lab.status)) await startRun(true);
    await control({ action: "step" });
  });
  $("#reset").addEventListener("click", async () => {
    await closeRun();
    lab.records = []; lab.lrMarks = []; lab.picture = null;
    $("#verdict").hidden = true; $("#status").textContent = "not started";
    await preview();
  });
  $("#view").addEventListener("click", (event) => {
    if (state.value.task !== "points") return;
    const box = viewBox();
    const rect = event.target.getBoundingClientRect();
    const fx = (event.clientX - rect.left) / rect.width, fy = (event.clientY - rect.top) / rect.height;
    const x = box.x[0] + fx * (box.x[1] - box.x[0]), y = box.y[1] - fy * (box.y[1] - box.y[0]);
    const kind = $("#point-kind").value;
    const list = points();
    const point = kind === "xy" ? [x, y] : [x, y, Number(kind)];
    if (list.length && list[0].length !== point.length) {
      showError("these points are of the other kind: clear them first"); return;
    }
    list.push(point);
    setPoints(list);
    drawView();
  });
  $("#clear").addEventListener("click", () => { state.set({ points: "" }); drawView(); });
  $("#upload").addEventListener("change", async () => {
    const file = $("#upload").files[0];
    if (!file) return;
    const data = await api("POST", "/api/train/points", await file.text(), "text/csv");
    setPoints(data.points);
    $("#point-kind").value = data.points[0].length === 3 ? "0" : "xy";
    drawView();
  });
  $("#point-kind").addEventListener("change", () => drawView());
  await preview();
  document.body.dataset.ready = "1";
}

// The data and the untrained model, before any run.
async function preview() {
  if (state.value.task === "points") { lab.view = null; drawAll(); return; }
  const data = await api("POST", "/api/train/preview", settings());
  lab.view = data.view;
  lab.picture = data.picture;
  drawAll();
}

start();
