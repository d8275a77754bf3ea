// The backprop page: seed 003's two iterations, revealed one stage at a time.
import { $, api, UrlState, prepareSvg, showLine, clearError } from "./common.js";

const SEED = { x: 2, x2: 0, y: 1, lam: 0.1, eta: 0.1, a: 1, b: 0, c: 1, d: 0 };
const state = new UrlState({ ...SEED, stage: 0 });
const STAGES = ["forward", "backward", "update"];
const lab = { state, data: null };
window.lab = lab;

function fillForm() {
  for (const key of Object.keys(SEED)) $(`#${key}`).value = state.value[key];
}

async function compute() {
  clearError();
  const body = {};
  for (const key of Object.keys(SEED)) body[key] = state.value[key];
  lab.data = await api("POST", "/api/backprop", body);
  render();
}

function render() {
  const box = $("#iterations");
  box.innerHTML = "";
  lab.pictures = [];
  lab.data.iterations.forEach((it, k) => {
    const panel = document.createElement("div");
    panel.className = "panel iteration";
    panel.id = `iteration-${k + 1}`;
    panel.innerHTML = `<h2>Iteration ${k + 1}: x = ${it.x}, y = ${lab.data.values.y}</h2>
      <div class="hand"></div><div class="picture"></div><div class="tables"></div>`;
    box.append(panel);
    lab.pictures.push(prepareSvg(panel.querySelector(".picture"), it.svg));
    panel.querySelector(".tables").innerHTML = it.html;
  });
  reveal();
}

// Stage s shows the first s of the six stages: forward, backward, update of each iteration.
function reveal() {
  const stage = Math.max(0, Math.min(6, state.value.stage));
  lab.data.iterations.forEach((it, k) => {
    const panel = $(`#iteration-${k + 1}`);
    const shown = Math.max(0, Math.min(3, stage - 3 * k));
    STAGES.forEach((name, j) => {
      const table = panel.querySelector(`table.graphgrad-${name}`);
      if (table) table.classList.toggle("pending", j >= shown);
    });
    for (const entry of lab.pictures[k].values()) {
      for (const [which, visible] of [["value", shown >= 1], ["grad", shown >= 2]]) {
        if (!entry[which]) continue;
        if (visible) showLine(entry, which); else entry[which].classList.add("hidden-line");
      }
    }
    panel.querySelector(".hand").innerHTML = byHand(panel, shown);
  });
  const names = ["the graph and its constants", "iteration 1: forward pass",
    "iteration 1: backward pass", "iteration 1: update", "iteration 2: forward pass",
    "iteration 2: backward pass", "iteration 2: update"];
  $("#stage").textContent = `step ${stage} of 6: ${names[stage]}`;
  $("#back").disabled = stage === 0;
  $("#next").disabled = stage === 6;
}

// The seed's worked numbers, read from explain's own table cells (so the digits are its own).
function byHand(panel, shown) {
  const cell = (pass, name, column) => {
    for (const row of panel.querySelectorAll(`tr[data-pass="${pass}"]`)) {
      const cells = row.querySelectorAll("td");
      const label = pass === "forward" ? cells[1] : cells[0];
      if (label.textContent === name) return cells[column].textContent;
    }
    return "?";
  };
  const lines = [];
  if (shown >= 1) {
    const f = (n) => `${n} = ${cell("forward", n, 3)}`;
    lines.push(`${f("u")} &nbsp; ${f("h")} &nbsp; ${f("v")} &nbsp; ${f("p")}`);
    lines.push(`<span class="big" id="J-${panel.id}">J = ${cell("forward", "J", 3)}</span>`);
  }
  if (shown >= 2) {
    lines.push(`δ = ∂J/∂v = ${cell("backward", "v", 1)}`);
    lines.push(["a", "b", "c", "d"].map((p) => `∂J/∂${p} = ${cell("backward", p, 1)}`).join(" &nbsp; "));
  }
  if (shown >= 3) {
    lines.push(["a", "b", "c", "d"].map((p) => `${p} ← ${cell("update", p, 3)}`).join(" &nbsp; "));
  }
  return lines.map((l) => `<div>${l}</div>`).join("") || '<div class="muted">Press Next for the forward pass.</div>';
}

function go(stage) {
  state.set({ stage });
  reveal();
}

async function start() {
  fillForm();
  for (const key of Object.keys(SEED)) {
    $(`#${key}`).addEventListener("change", () => {
      const value = Number($(`#${key}`).value);
      if (!Number.isFinite(value) || $(`#${key}`).value.trim() === "") return;
      state.set({ [key]: value });
      compute();
    });
  }
  $("#seed").addEventListener("click", () => { state.set({ ...SEED }); fillForm(); compute(); });
  $("#next").addEventListener("click", () => go(state.value.stage + 1));
  $("#back").addEventListener("click", () => go(state.value.stage - 1));
  $("#everything").addEventListener("click", () => go(6));
  await compute();
  document.body.dataset.ready = "1";
}

start();
