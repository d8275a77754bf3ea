"""The sweep's report, a pure function of the record: a table of trials, the best settings,
Optuna's parameter importances, one sentence per kind of failure, pictures (loss against each
hyperparameter with diverged and pruned trials marked; every learning curve on one plot) and
an ``index.html`` that shows and links them. ``graphgrad sweep-report DIR`` rebuilds it."""

from __future__ import annotations

import csv
import html
import json
import math
import warnings
from pathlib import Path

from .._files import atomic_write

CLASSES = ("diverged", "non_finite", "pruned", "failed", "lost")


def trial_rows(study) -> list:
    """One plain dict per trial: number, state, params, losses, verdict, error, worker, time."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        attrs = trial.user_attrs
        verdict = attrs.get("verdict")
        error = attrs.get("error")
        rows.append({
            "number": trial.number, "state": trial.state.name, "params": dict(trial.params),
            "value": trial.value, "final_loss": attrs.get("final_loss"),
            "best_loss": attrs.get("best_loss"), "verdict": verdict, "error": error,
            "class": _class(trial.state.name, verdict, error, attrs),
            "worker": attrs.get("worker"), "seed": attrs.get("seed"),
            "wall_time": attrs.get("wall_time"), "abandoned": bool(attrs.get("abandoned")),
            "history": attrs.get("history"), "last_step": trial.last_step,
            "last_report": trial.intermediate_values.get(trial.last_step)
            if trial.last_step is not None else None,
        })
    return rows


def _class(state, verdict, error, attrs) -> str | None:
    if state == "COMPLETE" and verdict:
        return verdict["kind"]
    if state == "PRUNED":
        return "pruned"
    if state == "FAIL" and not attrs.get("abandoned"):
        return "failed" if error and error.startswith("Traceback") else "lost"
    return None


# ---------------------------------------------------------------------- the sentences
def failure_sentences(rows: list) -> list:
    """One plain sentence per kind of trouble, with the settings that set it apart.

    >>> rows = [{"class": "diverged", "params": {"lr": lr}, "verdict": {"epoch": 3}}
    ...         for lr in (0.1, 0.2)] + [{"class": None, "params": {"lr": 0.01}}]
    >>> failure_sentences(rows)
    ['2 of 3 trials diverged, all with lr >= 0.1 (loss rose over 10x its best by epoch 3)']
    """
    counted = [r for r in rows if not r.get("abandoned") and r.get("state") != "RUNNING"]
    sentences = []
    for kind in CLASSES:
        group = [r for r in counted if r["class"] == kind]
        if not group:
            continue
        others = [r for r in counted if r["class"] != kind]
        where = _where(group, others) if len(group) > 1 else ""  # one trial is no pattern
        sentences.append(f"{len(group)} of {len(counted)} trials {_what(kind, group)}"
                         f"{', all with ' + where if where else ''}{_detail(kind, group)}")
    return sentences


def _what(kind: str, group: list) -> str:
    return {"diverged": "diverged", "non_finite": "turned non-finite",
            "pruned": "were pruned", "failed": "raised an error",
            "lost": "lost their worker"}[kind]


def _detail(kind: str, group: list) -> str:
    if kind in ("diverged", "non_finite"):
        last = max(r["verdict"]["epoch"] for r in group)
        what = "loss rose over 10x its best" if kind == "diverged" else "non-finite loss"
        return f" ({what} by epoch {last})"
    if kind == "pruned":
        steps = [r["last_step"] for r in group if r.get("last_step") is not None]
        unit = "epoch" if all(r.get("history") for r in group) else "step"
        return f" (stopped by {unit} {max(steps)})" if steps else ""
    errors = [(r.get("error") or "").strip().splitlines() for r in group]
    last_lines = sorted({lines[-1] for lines in errors if lines})
    shown = "; ".join(last_lines[:2]) + ("; ..." if len(last_lines) > 2 else "")
    return f" ({shown})" if shown else ""


def _where(group: list, others: list) -> str:
    """Up to two conditions that hold for every trial of ``group`` and for as few of the
    others as possible (at most a quarter): ``lr >= 0.05``, ``optimizer = adam``."""
    found = []
    names = dict.fromkeys(n for r in group for n in r["params"])
    for name in names:
        mine = [r["params"].get(name) for r in group]
        theirs = [r["params"].get(name) for r in others if name in r["params"]]
        if any(v is None for v in mine):
            continue
        if all(_number(v) for v in mine):
            low, high = min(mine), max(mine)
            for text, test in ((f"{name} >= {_short(low)}", lambda v, t=low: v >= t),
                               (f"{name} <= {_short(high)}", lambda v, t=high: v <= t)):
                hits = sum(1 for v in theirs if _number(v) and test(v))
                found.append((hits, text))
        elif len(set(mine)) == 1:
            hits = sum(1 for v in theirs if v == mine[0])
            found.append((hits, f"{name} = {mine[0]}"))
    allowed = len(others) // 4  # a condition that a quarter of the others share says little
    useful = sorted(item for item in found if item[0] <= allowed and others)
    return " and ".join(text for _, text in useful[:2])


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value) -> str:
    """1e+08 -> 1e8, 0.05 -> 0.05, 300 -> 300."""
    text = f"{value:.2g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


# ---------------------------------------------------------------------- the summary
def summarize(study) -> dict:
    """Counts, the best trial, the importances and the sentences: plain data."""
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    best = min(complete, key=lambda r: r["value"], default=None)
    states = [r["state"] for r in rows if not r["abandoned"]]
    plan = study.user_attrs.get("graphgrad", {})
    fixed = {k: v["value"] for k, v in plan.get("space", {}).items() if set(v) == {"value"}}
    return {
        "objective": plan.get("objective"), "trials": len(states),
        "states": {s: states.count(s) for s in sorted(set(states))},
        "best": None if best is None else {"number": best["number"], "value": best["value"],
                                           "params": best["params"], "fixed": fixed},
        "importances": importances(study), "failures": failure_sentences(rows),
    }


def importances(study) -> dict:
    """Optuna's parameter importances for the final loss (log scale, diverged trials ranked
    last); empty while fewer than two trials with varied settings are complete."""
    import optuna

    values = [t.value for t in study.get_trials(deepcopy=False)
              if t.state.name == "COMPLETE" and math.isfinite(t.value)]
    if len(values) < 2:
        return {}
    swept = {name for t in study.get_trials(deepcopy=False) for name in t.distributions}
    if len(swept) == 1:  # one knob explains all there is to explain
        return {swept.pop(): 1.0}
    worst = max(values)

    def target(trial) -> float:
        value = trial.value if math.isfinite(trial.value) else 10 * abs(worst) + 1
        return math.log10(max(value, 1e-300))

    try:
        import sklearn  # noqa: F401 - Optuna's fANOVA is built on its random forests

        # fewer trees than Optuna's 64: a sweep has tens of trials, not thousands
        evaluator = optuna.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=8, seed=0)
    except ImportError:
        evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():  # PED-ANOVA says it looks for low targets: we do
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                            target=target)
        return {name: float(value) for name, value in found.items()}
    except (RuntimeError, ValueError, ZeroDivisionError):  # too few distinct settings
        return {}


# ---------------------------------------------------------------------- the files
def write_report(out, study) -> list:
    """Write trials.csv, summary.json, the pictures and index.html into ``out``; returns the
    names written."""
    out = Path(out)
    rows = trial_rows(study)
    summary = summarize(study)
    written = [_write_csv(out / "trials.csv", rows), _write_json(out / "summary.json", summary)]
    pictures = []
    try:
        pictures = _pictures(out, rows)
    except ImportError:  # matplotlib is an extra: the table and sentences say it all
        pass
    _write_text(out / "index.html", _index(summary, rows, pictures))
    return written + pictures + ["index.html"]


def _write_csv(path: Path, rows: list) -> str:
    names = list(dict.fromkeys(n for r in rows for n in r["params"]))
    columns = ["number", "state", *names, "final_loss", "best_loss", "outcome", "worker",
               "wall_time", "seed"]
    with atomic_write(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([r["number"], r["state"], *(r["params"].get(n, "") for n in names),
                             _cell(r["final_loss"]), _cell(r["best_loss"]), _outcome(r),
                             r["worker"] or "", _cell(r["wall_time"]), _cell(r["seed"])])
    return path.name


def _outcome(row: dict) -> str:
    if row["verdict"]:
        return row["verdict"]["message"]
    if row["error"]:
        return row["error"].strip().splitlines()[-1]
    if row["state"] == "PRUNED":
        return f"pruned at step {row['last_step']}"
    return ""


def _cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


def _write_json(path: Path, data) -> str:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1)
    return path.name


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _pictures(out: Path, rows: list) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(n for r in rows for n in r["params"]))
    written = []
    for name in names:
        figure, axes = plt.subplots(figsize=(5, 3.6))
        _scatter(axes, rows, name)
        figure.tight_layout()
        written.append(_save(figure, out / f"loss_vs_{name}.png"))
        plt.close(figure)
    figure, axes = plt.subplots(figsize=(6, 4))
    if _curves(axes, rows):
        figure.tight_layout()
        written.append(_save(figure, out / "curves.png"))
    plt.close(figure)
    return written


def _save(figure, path: Path) -> str:
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    return path.name


def _scatter(axes, rows: list, name: str) -> None:
    """Final loss against ``name``: finished trials as dots, diverged ones as red crosses on a
    ceiling above every finite loss, pruned ones as grey triangles at their last report."""
    finite = [r["value"] for r in rows if r["state"] == "COMPLETE" and r["class"] is None
              and r["value"] is not None and math.isfinite(r["value"]) and r["value"] > 0]
    losses = finite + [r["final_loss"] for r in rows if r["class"] in ("diverged", "non_finite")
                       and r["final_loss"] and math.isfinite(r["final_loss"])]
    ceiling = 10 * max(losses) if losses else 1.0
    groups = {"converged": [], "diverged": [], "pruned": []}
    for r in rows:
        x = r["params"].get(name)
        if not _number(x):
            continue
        if r["class"] in ("diverged", "non_finite"):
            groups["diverged"].append((x, ceiling))
        elif r["class"] == "pruned" and r["last_report"] is not None:
            groups["pruned"].append((x, r["last_report"]))
        elif r["class"] is None and r["state"] == "COMPLETE" and r["value"] > 0:
            groups["converged"].append((x, r["value"]))
    styles = {"converged": dict(marker="o", color="tab:blue"),
              "diverged": dict(marker="x", color="tab:red"),
              "pruned": dict(marker="v", color="tab:gray")}
    for label, points in groups.items():
        if points:
            xs, ys = zip(*points)
            axes.scatter(xs, ys, label=f"{label} ({len(points)})", **styles[label])
    xs = [r["params"][name] for r in rows if _number(r["params"].get(name))]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 50:
        axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel(name)
    axes.set_ylabel("final loss (diverged on top)")
    if any(groups.values()):
        axes.legend(fontsize=8)


def _curves(axes, rows: list) -> bool:
    drawn = False
    for r in rows:
        history = r["history"]
        if not history or not history.get("epochs"):
            continue
        key = "val_loss" if any(e.get("val_loss") is not None for e in history["epochs"]) \
            else "train_loss"
        points = [(e["epoch"], e[key]) for e in history["epochs"]
                  if e.get(key) is not None and math.isfinite(e[key]) and e[key] > 0]
        if not points:
            continue
        color = {"diverged": "tab:red", "non_finite": "tab:red", "pruned": "tab:gray"}.get(
            r["class"], "tab:blue")
        epochs, losses = zip(*points)
        axes.plot(epochs, losses, color=color, alpha=0.6, linewidth=1)
        drawn = True
    axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title("every trial (red: diverged, grey: pruned)")
    return drawn


def _index(summary: dict, rows: list, pictures: list) -> str:
    esc = html.escape
    best = summary["best"]
    parts = [f"<h1>Sweep: {esc(str(summary['objective']))}</h1>",
             "<p>" + ", ".join(f"{n} {esc(s)}" for s, n in summary["states"].items()) + "</p>"]
    if best:
        settings = {**best["fixed"], **best["params"]}
        parts.append(f"<h2>Best: trial {best['number']}, loss {best['value']:.4g}</h2><p>"
                     + ", ".join(f"{esc(k)} = {esc(_short_any(v))}" for k, v in settings.items())
                     + "</p>")
    if summary["failures"]:
        parts.append("<h2>What the failures say</h2><ul>" + "".join(
            f"<li>{esc(s)}</li>" for s in summary["failures"]) + "</ul>")
    if summary["importances"]:
        parts.append("<h2>Parameter importances (Optuna)</h2><ul>" + "".join(
            f"<li>{esc(k)}: {v:.2f}</li>" for k, v in summary["importances"].items()) + "</ul>")
    parts += [f'<p><img src="{esc(p)}" alt="{esc(p)}"></p>' for p in pictures]
    parts.append(_table(rows))
    parts.append('<p>Files: <a href="trials.csv">trials.csv</a>, '
                 '<a href="summary.json">summary.json</a></p>')
    return ("<!doctype html><meta charset='utf-8'><title>graphgrad sweep</title><style>"
            "body{font-family:sans-serif;max-width:70em;margin:2em auto}td,th{padding:2px 8px;"
            "border-bottom:1px solid #ddd;font-size:90%}</style>" + "".join(parts))


def _table(rows: list) -> str:
    esc = html.escape
    names = list(dict.fromkeys(n for r in rows for n in r["params"]))
    head = ["trial", "state", *names, "final loss", "best loss", "outcome", "worker", "time"]
    body = []
    for r in rows:
        cells = [r["number"], r["state"], *(_short_any(r["params"].get(n, "")) for n in names),
                 _short_any(r["final_loss"]), _short_any(r["best_loss"]),
                 _outcome(r)[:160], r["worker"] or "",
                 "" if r["wall_time"] is None else f"{r['wall_time']:.2f} s"]
        body.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    return ("<h2>Trials</h2><table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head)
            + "</tr>" + "".join(body) + "</table>")


def _short_any(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
