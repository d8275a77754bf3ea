// The sweep page: a sweep's folder read from its record (table, best settings, failures,
// pictures), and a small sweep of the seed polynomial started here and followed live.
import { $, api, UrlState, short, clearError, showError } from "./common.js";

const state = new UrlState({ folder: "", trials: 8, workers: 2, epochs: 300, sampler: "tpe",
  pruner: "median", seed: 0 });
const KNOBS = ["trials", "workers", "epochs", "sampler", "pruner", "seed"];
const lab = { state, view: null, run: null, progress: null, source: null };
window.lab = lab;

function escapeHtml(value) {
  return String(value).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

// A number as the report prints it (4 significant digits), anything else as it is.
function cell(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    return Number.isInteger(value) && Math.abs(value) < 1e5 ? String(value) : short(value);
  }
  return String(value);
}

function rangeText(spec) {
  if (!spec) return "";
  if ("value" in spec) return `fixed at ${cell(spec.value)}`;
  if ("choices" in spec) return `one of ${spec.choices.join(", ")}`;
  return `swept ${cell(spec.low)} to ${cell(spec.high)}${spec.log ? " (log scale)" : ""}`;
}

// ---------------------------------------------------------------- opening a folder
async function openFolder(folder) {
  clearError();
  const data = await api("GET", `/api/sweep/open?folder=${encodeURIComponent(folder)}`);
  lab.view = data;
  state.set({ folder: data.folder });
  $("#folder").value = data.folder;
  render(data);
  return data;
}

function render(view) {
  const { summary, rows, plan } = view;
  $("#result").hidden = false;
  $("#result-title").textContent = `Sweep of ${summary.objective || "?"} in ${view.folder}`;
  const states = Object.entries(summary.states).map(([s, n]) => `${n} ${s}`).join(", ");
  $("#states").textContent = `${summary.trials} trials: ${states || "none yet"} · sampler `
    + `${plan.sampler}, pruner ${plan.pruner}, seed ${plan.seed}`;
  renderBest(summary.best, plan.space || {});
  $("#failures").innerHTML = summary.failures.length
    ? summary.failures.map((s) => `<li>${escapeHtml(s)}</li>`).join("")
    : "<li class=muted>no trial diverged, failed or was pruned</li>";
  const importances = Object.entries(summary.importances);
  $("#importances").innerHTML = importances.length
    ? importances.map(([name, v]) => `<div class="importance"><span>${escapeHtml(name)}</span>`
      + `<span class="bar-track"><span style="width:${(100 * v).toFixed(1)}%"></span></span>`
      + `<span>${v.toFixed(2)}</span></div>`).join("")
    : "<p class=muted>fewer than two finished trials with different settings</p>";
  $("#pictures").innerHTML = view.pictures.length
    ? view.pictures.map((p) => `<figure><a href="${escapeHtml(p.url)}" target="_blank">`
      + `<img src="${escapeHtml(p.url)}" alt="${escapeHtml(p.name)}"></a>`
      + `<figcaption>${escapeHtml(p.name)}</figcaption></figure>`).join("")
    : `<p class=muted>no report pictures in this folder${view.report ? "" : " (no index.html: "
      + "run graphgrad sweep-report on it)"}</p>`;
  renderTable(rows, summary.best);
}

function renderBest(best, space) {
  const box = $("#best");
  if (!best) { box.innerHTML = "<p class=muted>no trial has finished yet</p>"; return; }
  const swept = Object.entries(best.params).map(([name, v]) =>
    `<tr data-param="${escapeHtml(name)}" data-value="${v}"><th>${escapeHtml(name)}</th>`
    + `<td class="value">${escapeHtml(cell(v))}</td><td class="muted">${escapeHtml(rangeText(space[name]))}</td></tr>`);
  const fixed = Object.entries(best.fixed).map(([name, v]) =>
    `<tr class="fixed"><th>${escapeHtml(name)}</th><td class="value">${escapeHtml(cell(v))}</td>`
    + `<td class="muted">fixed</td></tr>`);
  box.innerHTML = `<div class="best" id="best-trial" data-number="${best.number}" data-value="${best.value}">`
    + `<h2>Best settings: trial ${best.number}, loss ${escapeHtml(cell(best.value))}</h2>`
    + `<table>${swept.join("")}${fixed.join("")}</table></div>`;
}

function renderTable(rows, best) {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  const head = ["trial", "state", ...names, "final loss", "best loss", "outcome", "worker", "time"];
  const body = rows.map((r) => {
    const cells = [r.number, r.state, ...names.map((n) => cell(r.params[n])), cell(r.final_loss),
      cell(r.best_loss), r.outcome.slice(0, 160), r.worker || "",
      r.wall_time === null || r.wall_time === undefined ? "" : `${r.wall_time.toFixed(2)} s`];
    const kind = best && r.number === best.number ? "best" : (r.abandoned ? "abandoned" : (r.class || ""));
    const outcome = 4 + names.length;
    return `<tr class="${kind}" data-number="${r.number}">` + cells.map((c, k) =>
      `<td${k === outcome ? ` class="outcome" title="${escapeHtml(r.outcome)}"` : ""}>`
      + `${escapeHtml(c)}</td>`).join("") + "</tr>";
  });
  $("#trial-table").innerHTML = `<thead><tr>${head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr></thead>`
    + `<tbody>${body.join("")}</tbody>`;
}

async function listFolders() {
  const data = await api("GET", "/api/sweep/folders");
  $("#root").textContent = data.root;
  $("#folder-list").innerHTML = data.folders.map((f) => `<option value="${escapeHtml(f.folder)}">`).join("");
  $("#folders").innerHTML = data.folders.slice(0, 8).map((f) =>
    `<li><a href="?folder=${encodeURIComponent(f.folder)}" data-folder="${escapeHtml(f.folder)}">`
    + `${escapeHtml(f.folder)}</a> <span class="muted">${new Date(1000 * f.modified).toLocaleString()}</span></li>`).join("")
    || "<li class=muted>no sweep folders here yet: start one on the right</li>";
}

// ---------------------------------------------------------------- a sweep started here
function settings() {
  const s = state.value;
  return { trials: s.trials, workers: s.workers, epochs: s.epochs, sampler: s.sampler,
    pruner: s.pruner, seed: s.seed };
}

async function startSweep() {
  clearError();
  const data = await api("POST", "/api/sweep/runs", settings());
  lab.run = data.run;
  showProgress(data);
  const source = new EventSource(`/api/sweep/runs/${data.run}/stream`);
  lab.source = source;
  source.onmessage = (event) => showProgress(JSON.parse(event.data));
  source.addEventListener("end", async () => {
    source.close();
    lab.source = null;
    const last = lab.progress;
    await listFolders();
    if (last.status === "failed") { showError(`the sweep failed: ${last.error}`); return; }
    if (last.done > 0) await openFolder(last.folder);
  });
  source.onerror = () => { source.close(); if (lab.source === source) lab.source = null; };
}

function showProgress(p) {
  lab.progress = p;
  const running = p.status === "running";
  $("#start").disabled = running;
  $("#stop").disabled = !running;
  $("#meter").style.width = `${Math.min(100, (100 * p.done) / p.trials).toFixed(1)}%`;
  const best = p.best ? `best ${short(p.best.value)} (trial ${p.best.number})` : "no best yet";
  $("#progress").textContent = `${p.stage} · ${p.done} of ${p.trials} trials done `
    + `(${p.complete} finished, ${p.pruned} pruned, ${p.failed} failed), ${p.running} running · `
    + `${best} · ${p.seconds} s · into ${p.folder}`;
}

async function stopSweep() {
  if (!lab.run) return;
  $("#stop").disabled = true;
  showProgress(await api("DELETE", `/api/sweep/runs/${lab.run}`));
}

// ---------------------------------------------------------------- wiring
async function start() {
  const data = await api("GET", "/api/sweep/defaults");
  for (const name of data.samplers) $("#sampler").append(new Option(name, name));
  for (const name of data.pruners) $("#pruner").append(new Option(name, name));
  for (const key of ["trials", "workers", "epochs"]) $(`#${key}`).max = data.limits[key];
  const space = Object.entries(data.space).filter(([k]) => k !== "epochs")
    .map(([k, spec]) => `${k} ${rangeText(spec)}`).join("; ");
  $("#space-text").textContent = `graphgrad sweep polynomial on its demo space (${space}), `
    + `at most ${data.limits.trials} trials on ${data.limits.workers} workers and `
    + `${data.limits.epochs} epochs, one sweep at a time, into a new folder under runs/.`;
  for (const key of KNOBS) {
    $(`#${key}`).value = state.value[key];
    $(`#${key}`).addEventListener("change", () => {
      const raw = $(`#${key}`).value;
      state.set({ [key]: ["sampler", "pruner"].includes(key) ? raw : Number(raw) });
    });
  }
  $("#open").addEventListener("click", () => openFolder($("#folder").value));
  $("#folder").addEventListener("keydown", (e) => { if (e.key === "Enter") openFolder($("#folder").value); });
  $("#folders").addEventListener("click", (e) => {
    const link = e.target.closest("a[data-folder]");
    if (!link) return;
    e.preventDefault();
    openFolder(link.dataset.folder);
  });
  $("#start").addEventListener("click", () => startSweep());
  $("#stop").addEventListener("click", () => stopSweep());
  await listFolders();
  if (state.value.folder) {
    $("#folder").value = state.value.folder;
    await openFolder(state.value.folder).catch(() => {});
  }
  document.body.dataset.ready = "1";
}

start();
