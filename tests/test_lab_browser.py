"""The lab end to end: `graphgrad lab` in a subprocess on a free loopback port, driven by a real
headless Chromium (Debian's package) through Playwright. Every page is screenshot to the test's
tmp dir; with GRAPHGRAD_LAB_SCREENSHOTS=docs/lab set, copies go there for the README.

Outside CI the tests skip when there is no Chromium or Playwright; with CI set they fail.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from graphgrad.graph import examples

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = os.environ.get("GRAPHGRAD_LAB_SCREENSHOTS")  # a folder to keep the pictures in
VIEWPORT = {"width": 1280, "height": 860}


def _require(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (CI is set, so the browser tests must run)")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sweeps_root():
    """The folder the sweep page may open and start sweeps in (not the work tree)."""
    root = Path(tempfile.mkdtemp(prefix="graphgrad-lab-sweeps-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(sweeps_root):
    _require(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium")
    _require(importlib.util.find_spec("starlette") is not None, "starlette is not installed")
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "graphgrad", "lab", "--port", str(port),
                                "--sweeps", str(sweeps_root)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/api/pages", timeout=1).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("graphgrad lab did not start: "
                                         + process.stdout.read().decode()) from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser_context(server):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _require(False, "the playwright package is not installed")
    profile = tempfile.mkdtemp(prefix="graphgrad-lab-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=ARGS, headless=True, viewport=VIEWPORT)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context, server):
    page = browser_context.new_page()
    page.set_default_timeout(15_000)
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.open = lambda path: (page.goto(server + path),
                              page.wait_for_selector("body[data-ready='1']"))
    yield page
    problems = page.problems
    page.close()
    assert not problems, f"console errors: {problems}"


def screenshot(page, tmp_path: Path, name: str, full_page: bool = False) -> None:
    path = tmp_path / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=full_page)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(SCREENSHOTS) / f"{name}.png")


def node_line(page, node_name: str, which: str) -> str:
    """The visible value= or grad= line of the node whose first line is ``node_name``."""
    return page.evaluate(
        """([name, which]) => {
          for (const [id, e] of window.lab.nodes) {
            const lines = [...e.g.querySelectorAll('text')];
            if (lines[0].textContent !== name || !e[which]) continue;
            return e[which].classList.contains('hidden-line') ? 'hidden' : e[which].textContent;
          }
          return 'missing';
        }""", [node_name, which])


def test_front_page(page, tmp_path):
    page.open("/")
    assert page.locator(".card").count() == 4
    screenshot(page, tmp_path, "index")


def test_graph_page_steps_seed_001(page, tmp_path):
    page.open("/graph?example=001&speed=1")
    assert node_line(page, "z", "value") == "hidden"
    page.click("#forward")
    page.wait_for_function("window.lab.phase === 'backward'")
    assert node_line(page, "z", "value") == "value=7"
    assert node_line(page, "z", "grad") == "hidden"
    page.click("#all")
    page.wait_for_function("window.lab.phase === 'done'")
    assert [node_line(page, n, "grad") for n in "xwb"] == ["grad=3", "grad=2", "grad=1"]
    assert page.locator('#explain tr[data-pass="update"]:not(.pending)').count() == 3
    assert page.locator("#n-completed").inner_text() == page.locator("#n-total").inner_text()
    page.click("#threads")
    page.wait_for_function("window.lab.events.length > 0 && Number(document.querySelector("
                           "'#r-completed').textContent) === window.lab.events.length")
    assert page.locator("#r-waiting").inner_text() == "0"
    assert "worker-" in page.locator("#log").inner_text()
    screenshot(page, tmp_path, "graph", full_page=True)


def test_graph_page_reproduces_its_url(page):
    page.open("/graph?example=&expr=q%20%3D%20a*a%2Bb&at=a%3D3,b%3D1&workers=3")
    assert page.locator("#expr").input_value() == "q = a*a+b"
    assert page.locator("#workers").input_value() == "3"
    page.click("#all")
    page.wait_for_function("window.lab.phase === 'done'")
    assert node_line(page, "q", "value") == "value=10"
    assert node_line(page, "a", "grad") == "grad=6"


def test_backprop_page_shows_seed_003(page, tmp_path):
    page.open("/backprop")
    assert page.locator("#J-iteration-1").count() == 0
    page.click("#next")
    assert page.locator("#J-iteration-1").inner_text() == "J = 0.834694"
    page.click("#next")
    page.click("#next")
    hand = page.locator("#iteration-1 .hand").inner_text()
    for text in ("∂J/∂a = 0.449854", "∂J/∂c = 0.239942", "a ← 0.955015", "b ← -0.017493"):
        assert text in hand
    assert "stage=3" in page.url
    screenshot(page, tmp_path, "backprop")


def test_backprop_page_reproduces_its_url(page):
    page.open("/backprop?x=3&stage=1")
    assert page.locator("#x").input_value() == "3"
    graph = examples.branch_and_merge()
    expected = graph.run({"x": 3.0, "y": 1.0}).output.item()
    shown = page.locator("#J-iteration-1").inner_text()
    assert shown == f"J = {expected:.6f}"


def test_train_slider_changes_the_running_rate_and_the_curve(page, server, tmp_path):
    page.open("/train?task=linear&lr=0.003&epochs=400&speed=40")
    page.click("#start")
    page.wait_for_function("window.lab.records.length >= 15")
    # the slider is a range input: move it to 10^-0.5 = 0.316 as a person drags it
    page.evaluate("""() => { const s = document.querySelector('#lr-slider');
                      s.value = -0.5; s.dispatchEvent(new Event('input')); }""")
    page.wait_for_function("window.lab.records.some(r => r.lr > 0.3)")
    key = page.evaluate("window.lab.session")
    with urllib.request.urlopen(f"{server}/api/train/sessions/{key}") as r:
        import json

        reported = json.load(r)
    assert reported["lr"] == pytest.approx(0.3162, rel=1e-3)
    assert "lr=0.3162" in page.url
    page.wait_for_function("window.lab.records.length >= 60")
    records = page.evaluate("window.lab.records")
    change = next(k for k, r in enumerate(records) if r["lr"] > 0.3)
    before = records[change - 6: change - 1]
    after = records[change: change + 5]
    rate = lambda rs: math.log(rs[0]["loss"] / rs[-1]["loss"]) / (len(rs) - 1)  # noqa: E731
    assert rate(after) > 20 * rate(before) > 0  # the curve bends down at the change
    assert page.evaluate("window.lab.lrMarks.length") == 1
    page.wait_for_timeout(300)
    screenshot(page, tmp_path, "train")
    page.click("#reset")


def test_train_page_shows_a_divergence_verdict(page, tmp_path):
    page.open("/train?task=polynomial&lr=0.1&lr_decay=1&max_grad=10000000000&speed=100")
    assert page.locator("#lr").input_value() == "0.1"
    assert page.locator("#lr_decay").input_value() == "1"
    page.click("#start")
    page.wait_for_selector("#verdict:not([hidden])")
    verdict = page.locator("#verdict").inner_text()
    assert verdict.startswith("Training diverged at epoch 3") and "Remedy:" in verdict
    screenshot(page, tmp_path, "train-diverged")


def test_train_page_draws_a_decision_boundary(page, tmp_path):
    page.open("/train?task=moons&speed=300&epochs=150")
    assert page.locator("#task").input_value() == "moons"
    page.click("#start")
    page.wait_for_function("window.lab.status === 'done'", timeout=30_000)
    assert page.evaluate("window.lab.records.at(-1).metric") > 0.95
    colours = page.evaluate("""() => {
        const c = document.querySelector('#view'); const d = c.getContext('2d')
          .getImageData(0, 0, c.width, c.height).data; const seen = new Set();
        for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] > d[i + 2] ? 'red' : 'blue');
        return [...seen].sort(); }""")
    assert colours == ["blue", "red"]
    screenshot(page, tmp_path, "train-moons")


def test_train_page_own_points_from_the_url_and_clicks(page):
    page.open("/train?task=points&points=-1,1,0;-1.2,0.8,0;1,-1,1;1.1,-0.9,1&speed=300&epochs=60")
    assert page.evaluate("window.lab.state.value.points.split(';').length") == 4
    box = page.locator("#view").bounding_box()
    page.select_option("#point-kind", "1")
    # the view spans [-2, 2] on both axes: three quarters across and down is (1, -1)
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 0.75 * box["height"])
    added = page.evaluate("window.lab.state.value.points.split(';').at(-1)")
    x, y, label = (float(v) for v in added.split(","))
    assert (x, y, label) == (pytest.approx(1, abs=0.02), pytest.approx(-1, abs=0.02), 1)
    assert "points=" in page.url and page.url.count("%3B") + page.url.count(";") == 4
    page.click("#start")
    page.wait_for_function("window.lab.status === 'done'", timeout=30_000)
    assert page.evaluate("window.lab.records.at(-1).metric") == 1.0


def test_sweep_page_runs_a_sweep_shows_its_best_and_reproduces_its_url(page, sweeps_root,
                                                                       tmp_path):
    import optuna

    page.open("/sweep?trials=6&epochs=60&sampler=random&seed=2")
    assert page.locator("#trials").input_value() == "6"
    assert page.locator("#result").is_hidden()
    page.click("#start")
    page.wait_for_selector("#best-trial", timeout=60_000)  # the page opens the folder it made
    folder = page.evaluate("window.lab.view.folder")
    assert folder.startswith("runs/lab-sweep-") and "folder=runs%2Flab-sweep-" in page.url
    # what it shows is Optuna's own record of the sweep
    backend = optuna.storages.journal.JournalFileBackend(str(sweeps_root / folder /
                                                             "study.journal"))
    study = optuna.load_study(study_name="sweep",
                              storage=optuna.storages.JournalStorage(backend))
    best = min((t for t in study.get_trials() if t.state.name == "COMPLETE"),
               key=lambda t: t.value)
    shown = page.locator("#best-trial")
    assert int(shown.get_attribute("data-number")) == best.number
    assert float(shown.get_attribute("data-value")) == best.value
    for name, value in best.params.items():
        row = page.locator(f"#best-trial tr[data-param='{name}']")
        assert float(row.get_attribute("data-value")) == value
    assert page.locator("#trial-table tbody tr").count() == len(study.get_trials()) == 6
    assert "done" in page.locator("#progress").inner_text()
    page.wait_for_function("[...document.querySelectorAll('#pictures img')].every("
                           "i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#pictures img").count() == 4
    screenshot(page, tmp_path, "sweep", full_page=True)
    # a link with the folder shows the same sweep, and the list of folders opens it too
    page.open(f"/sweep?folder={folder}&trials=5")
    assert page.locator("#trials").input_value() == "5"
    assert int(page.locator("#best-trial").get_attribute("data-number")) == best.number
    page.evaluate("document.querySelector('#best').innerHTML = ''")
    page.click(f"#folders a[data-folder='{folder}']")
    page.wait_for_selector("#best-trial")
    assert float(page.locator("#best-trial").get_attribute("data-value")) == best.value
