"""``graphgrad tour``: the whole journey of the seeds in about a minute, on embedded data.

Level 1, the computational graph: the branch-and-merge example explained step by step, the seed
graphs drawn, the polynomial fitted with its good and its bad settings (and the verdicts), the line
f(x) = 3x + 7 recovered. Level 2, practical training: an MLP on digits (two moons without
scikit-learn), and the training doctor naming a mistake in a loop of one's own. Scaling up: a wide
graph run serially and on a thread pool. Everything lands in one folder with an ``index.html``
that shows every picture and links every table.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from . import tasks, train
from ._files import atomic_write
from .graph import SerialExecutor, ThreadPoolExecutor, examples
from .graph.from_text import graph_from_expression
from .graph.render import to_svg
from .graph.timeline import to_timeline_svg


class Tour:
    """Runs the steps, writes their files into ``out`` and keeps a line of summary for each."""

    def __init__(self, out: Path, quick: bool = False, echo=print) -> None:
        self.out = out
        self.quick = quick
        self.echo = echo
        self.sections: list[tuple[str, str, list[tuple[str, str]]]] = []  # title, text, links
        self.plots_missing = False  # said once: matplotlib (the plot extra) is not installed

    def run(self) -> list[str]:
        self.out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for step in (self.explain, self.draw, self.polynomial, self.line, self.classifier,
                     self.doctor, self.parallel, self.sweep):
            step()
        self._write("index.html", self._index(time.perf_counter() - start))
        return [text for _, text, _ in self.sections]

    # ------------------------------------------------------------------ the steps
    def explain(self) -> None:
        graph = examples.branch_and_merge()
        texts, markdown = [], []
        for step, x in enumerate((2.0, 0.0), start=1):
            e = graph.explain({"x": x, "y": 1.0}, lr=0.1)
            texts.append(f"== iteration {step}: x = {x:g}, y = 1 ==\n{e.to_text()}")
            markdown.append(f"### Iteration {step}: x = {x:g}\n\n{e.to_markdown()}")
            grads = {r["name"]: r["grad"] for r in e.update}
            e.apply_update()
        self._write("explain_003.txt", "\n\n".join(texts))
        self._write("explain_003.md", "\n\n".join(markdown))
        summary = (f"seed 003 explained: iteration 2 (x = 0) gives dJ/da = {grads['a']:.6f}, "
                   f"all from the regularisation term")
        self._section("Branch and merge, worked by hand", summary,
                      [("explain_003.txt", "table (text)"), ("explain_003.md", "table (Markdown)")])

    def draw(self) -> None:
        drawings = [("graph_003.svg", examples.branch_and_merge(), {"x": 2.0, "y": 1.0},
                     "seed 003: branch and merge"),
                    ("graph_001.svg", examples.linear_node(), {"x": 2.0}, "seed 001: z = x*w + b")]
        seed_004 = graph_from_expression("tanh(log(1 + z*2*x/sin(y)))", {"x": 1, "y": 2, "z": 3})
        drawings.append(("graph_004.svg", seed_004, None, "seed 004: tanh(ln(1 + z*2x / sin y))"))
        for name, graph, inputs, title in drawings:
            run = graph.run(inputs, backward=True)
            values = {i: v.detach().numpy() for i, v in run.values.items()}
            self._write(name, to_svg(graph.to_dict(), values=values, grads=run.grads, title=title))
        self._section("The seed graphs, with values and gradients",
                      "drew the graphs of seeds 003, 001 and 004",
                      [(name, title) for name, _, _, title in drawings])

    def polynomial(self) -> None:
        data = examples.polynomial_data()
        good = dict(lr=0.01, lr_decay=0.999, min_lr=1e-3, max_grad=1000.0)
        bad = dict(lr=0.1, lr_decay=1.0, min_lr=1e-3, max_grad=1e10)
        links, lines = [], []
        for label, knobs in (("good", good), ("bad", bad)):
            history = train.fit(examples.polynomial(), None, data, optimizer="sgd", epochs=300,
                                batch_size=None, progress=False, **knobs)
            verdict = history.verdict.message if history.verdict else (
                f"converged: loss {history.epochs[0]['train_loss']:.4g} -> "
                f"{history.epochs[-1]['train_loss']:.4g}")
            shown = ", ".join(f"{k.upper()}={v:g}" for k, v in knobs.items())
            lines.append(f"{label} settings ({shown}): {verdict}")
            links += self._history_files(history, f"polynomial_{label}")
        self._section("Seed 000: the polynomial, good and bad settings", "\n".join(lines), links)

    def line(self) -> None:
        task = tasks.get_task("linear")
        history = train.fit(task.model, task.loss_fn, task.train_data, progress=False,
                            **task.config)
        w, b = task.model.weight.item(), task.model.bias.item()
        text = f"recovered f(x) = 3x + 7 from w = -2, b = 15: w = {w:.4f}, b = {b:.4f}"
        self._section("Seed 001: gradient descent finds the line", text,
                      self._history_files(history, "line"))

    def classifier(self) -> None:
        try:
            task = tasks.get_task("digits")
        except ImportError:  # scikit-learn is an extra: two moons need nothing
            task = tasks.get_task("moons")
        config = dict(task.config)
        if self.quick:
            config["epochs"] = min(config["epochs"], 5)
        # the step replayed from a record (graphgrad.compile): eager's numbers, less Python
        history = train.fit(task.model, task.loss_fn, task.train_data, val_data=task.val_data,
                            metric=task.metric, progress=False, compile=True, **config)
        value = history.epochs[-1]["metric"]  # measured on val_data after the last epoch
        text = (f"trained an MLP on {task.name} (compiled step) with {config['optimizer']} "
                f"and a {config.get('scheduler') or 'constant'} schedule: validation "
                f"{history.metric_name} {value:.2%} after the last epoch")
        self._section(f"Level 2: an MLP on {task.name}", text,
                      self._history_files(history, task.name))

    def doctor(self) -> None:
        """A learner's loop with the seed's "logits vs softmax" mistake, watched: the doctor
        names it from what went into the loss."""
        from . import creation, nn, optim

        creation.manual_seed(0)
        x = creation.randn(256, 2)
        y = ((x[:, 0] > 0) == (x[:, 1] > 0)).long()  # the quadrant's colour: XOR
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        optimizer = optim.Adam(model.parameters(), lr=0.01)
        loss_fn = nn.CrossEntropyLoss()
        with train.watch(model, optimizer, loss_fn) as doctor:
            for _ in range(30):
                optimizer.zero_grad()
                loss = loss_fn(model(x).softmax(dim=1), y)  # the mistake: probabilities
                loss.backward()
                optimizer.step()
        found = [d.message for d in doctor.diagnoses] or ["no fault found"]
        self._section("The training doctor: a mistake named in a loop of one's own",
                      "\n".join(f"doctor on an XOR loop that feeds softmax to "
                                 f"CrossEntropyLoss: {m}" for m in found), [])

    def parallel(self) -> None:
        size = 128 if self.quick else 512
        # BLAS must use one thread for the comparison to mean anything, and that can only be
        # set before NumPy loads: so this step runs in a fresh interpreter.
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        code = f"from graphgrad.tour import measure_parallel; measure_parallel({size}, " \
               f"{str(self.out / 'timeline.svg')!r})"
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                text=True, check=True)
        timings = json.loads(result.stdout)
        text = (f"wide graph (8 branches of 4 matmuls of {size}x{size}, BLAS on one thread): "
                f"serial {timings['serial'] * 1e3:.0f} ms, 2 workers "
                f"{timings['threads'] * 1e3:.0f} ms, speed-up "
                f"{timings['serial'] / timings['threads']:.2f}x")
        self._section("Scaling up: independent nodes in parallel", text,
                      [("timeline.svg", "which worker ran which node, when")])

    def sweep(self) -> None:
        """The seed-000 trap in one picture: a small sweep over LR, MAX_GRAD and LR_DECAY."""
        try:
            from .sweep import DEMO_SPACES, run, summarize

            space = {**DEMO_SPACES["polynomial"], "epochs": 60 if self.quick else 150}
            result = run("polynomial", space, trials=8 if self.quick else 12, workers=2,
                         sampler="random", pruner="none", out=self.out / "sweep",
                         progress=False)
        except ImportError as exc:  # Optuna is the sweep extra
            self.echo(f"- no sweep: {exc} (pip install 'graphgrad[sweep]')")
            return
        summary = summarize(result.study)
        best = summary["best"]
        lines = [f"swept the polynomial on 2 worker processes: best loss {best['value']:.4g} "
                 f"with LR={best['params']['lr']:.3g}", *summary["failures"]]
        self._section("Many experiments at once: the trap in one sweep", "\n".join(lines),
                      [("sweep/index.html", "the sweep's report"),
                       ("sweep/loss_vs_lr.png", "final loss against LR (diverged on top)")])

    # ------------------------------------------------------------------ output
    def _history_files(self, history, stem: str) -> list[tuple[str, str]]:
        history.to_csv(self.out / f"{stem}.csv")
        links = [(f"{stem}.csv", "history (CSV)")]
        try:
            history.plot(self.out / f"{stem}.png")
            links.append((f"{stem}.png", "loss, learning rate and gradient norm"))
        except ImportError as exc:  # matplotlib is an extra; the CSV says it all
            if not self.plots_missing:
                self.plots_missing = True
                self.echo(f"- no plots: {exc}")
        return links

    def _section(self, title: str, text: str, links: list[tuple[str, str]]) -> None:
        self.sections.append((title, text, links))
        for line in text.splitlines():
            self.echo(f"- {line}")

    def _write(self, name: str, text: str) -> None:
        _write_text(self.out / name, text)

    def _index(self, seconds: float) -> str:
        parts = [f"<h2>{html.escape(title)}</h2><p>{html.escape(text).replace(chr(10), '<br>')}"
                 "</p>" + "".join(_figure(href, label) for href, label in links
                                  if href.endswith(PICTURES))
                 + "<ul>" + "".join(f'<li><a href="{html.escape(href)}">{html.escape(label)}'
                                    f"</a></li>" for href, label in links) + "</ul>"
                 for title, text, links in self.sections]
        return ("<!doctype html><meta charset='utf-8'><title>graphgrad tour</title>"
                "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto}"
                "figure{margin:1em 0}figure img{max-width:100%}</style>"
                f"<h1>graphgrad tour</h1><p>Made in {seconds:.1f} s.</p>" + "".join(parts))


PICTURES = (".png", ".svg")  # shown in the index itself; the other files are linked


def _figure(href: str, label: str) -> str:
    """A picture shown in the page, with its label as caption and alternative text."""
    return (f'<figure><img src="{html.escape(href)}" alt="{html.escape(label)}">'
            f"<figcaption>{html.escape(label)}</figcaption></figure>")


def measure_parallel(size: int, timeline_path: str) -> None:
    """Time the wide graph serially and on 2 workers (best of 3 each), draw the threaded run's
    timeline, and print the timings as JSON (run by :meth:`Tour.parallel` in a subprocess)."""
    graph = examples.wide_graph(size=size)
    inputs = {"x": np.random.default_rng(1).standard_normal((size, size)).astype(np.float32)}
    timings = {}
    for name, executor in (("serial", SerialExecutor()), ("threads", ThreadPoolExecutor(2))):
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            run = graph.run(inputs, executor=executor, backward=True)
            best = min(best, time.perf_counter() - start)
        timings[name] = best
    events = [e.as_dict() for e in run.events + run.backward_events]
    _write_text(Path(timeline_path), to_timeline_svg(
        events, title="8 branches of 4 matmuls, 2 workers, forward + backward"))
    print(json.dumps(timings))


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as out:
        out.write(text)
