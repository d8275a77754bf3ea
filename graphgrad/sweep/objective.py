"""What a trial runs, and the one worker loop body every executor calls: :func:`run_trial`.

An objective is a graphgrad task trained with ``fit`` (:class:`TaskObjective`: the params are
``fit`` settings, the value is the final loss, the History and verdict are kept), or any Python
function ``objective(params, report) -> float`` (:class:`FunctionObjective`), which may call
``report(value)`` once per epoch so that a pruner can stop it early (``report`` raises
:class:`Pruned` then), and may return a ``train`` History instead of a number.
"""

from __future__ import annotations

import math
import os
import runpy
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .. import train
from ..tasks import TASKS, TaskError, get_task
from .space import FIT_SETTINGS

# Epochs at which a task reports its loss to the pruner: about ten per decade, the same for
# every trial so that pruners compare like with like, and few enough to keep the record small.
REPORT_EPOCHS = frozenset(round(10 ** (k / 10)) for k in range(60))


class Pruned(Exception):
    """Raised by ``report`` when the pruner decided to stop this trial."""


class Report:
    """What a function objective receives as ``report``: call it with each epoch's value.

    ``report.trial`` is the trial's number and ``report.seed`` its seed.

    >>> seen = []
    >>> report = Report(lambda step, value: seen.append((step, value)) or False, trial=3, seed=3)
    >>> report(0.5); report(0.25); seen
    [(1, 0.5), (2, 0.25)]
    """

    def __init__(self, send, trial: int, seed: int) -> None:
        self._send, self.trial, self.seed = send, trial, seed
        self.step = 0
        self.pruned_at: int | None = None

    def __call__(self, value: float, step: int | None = None) -> None:
        self.step = self.step + 1 if step is None else int(step)
        if math.isfinite(value) and self._send(self.step, float(value)):
            self.pruned_at = self.step
            raise Pruned(f"pruned at step {self.step}")


@dataclass
class TaskObjective:
    """Train the task ``task`` (a name in TASKS or a .py task file) with its own settings,
    overridden by ``settings`` and then by each trial's params.

    >>> TaskObjective("polynomial").describe()
    'task polynomial'
    """

    task: str
    settings: dict = field(default_factory=dict)
    task_seed: int = 0

    def describe(self) -> str:
        return f"task {self.task}"

    def allowed(self) -> dict:
        return FIT_SETTINGS

    def check(self) -> None:
        """Refuse an unknown task name or a task file that lacks what a task needs."""
        if self.task.endswith(".py"):
            get_task(self.task, seed=self.task_seed)  # the user's file, run once to check it
        elif self.task not in TASKS:
            raise TaskError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}, a "
                            f".py task file or FILE.py:FUNCTION")

    def __call__(self, params: dict, report: Report):
        # Every trial trains the same data from the same initial weights: only its knobs differ.
        task = get_task(self.task, seed=self.task_seed)
        settings = {**task.config, **self.settings, **params}
        if settings.get("scheduler") == "none":
            settings["scheduler"] = None
        return train.fit(task.model, task.loss_fn, task.train_data, val_data=task.val_data,
                         metric=task.metric, seed=report.seed, progress=False,
                         callbacks=[_PruneCallback(report)], **settings)


class _PruneCallback(train.Callback):
    """Feeds the monitored loss to ``report`` at REPORT_EPOCHS; stops fit when pruned."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def on_epoch_end(self, trainer, record: dict) -> bool:
        if record["epoch"] not in REPORT_EPOCHS:
            return False
        value = record[trainer.history.monitor]
        try:
            self.report(value, step=record["epoch"])
        except Pruned:
            return True
        return False


@dataclass
class FunctionObjective:
    """A Python function ``objective(params, report) -> float``, held as the function itself
    or as ``"FILE.py:NAME"`` / ``"module:NAME"`` (loaded in the worker).

    >>> FunctionObjective("train.py:objective").describe()
    'function objective in train.py'
    """

    function: object

    def describe(self) -> str:
        if isinstance(self.function, str):
            where, _, name = self.function.rpartition(":")
            return f"function {name} in {where}"
        return f"function {getattr(self.function, '__qualname__', self.function)}"

    def allowed(self) -> None:
        return None  # a function takes whatever names its space gives

    def check(self) -> None:
        if isinstance(self.function, str):
            _load_function(self.function)
        elif not callable(self.function):
            raise TypeError(f"objective must be callable, got {type(self.function).__name__}")

    def __call__(self, params: dict, report: Report):
        function = self.function
        if isinstance(function, str):
            function = _load_function(function)
        return function(dict(params), report)


def _load_function(reference: str):
    where, sep, name = reference.rpartition(":")
    if not sep or not where or not name:
        raise TaskError(f"objective {reference!r}: expected FILE.py:FUNCTION or module:FUNCTION")
    if where.endswith(".py"):
        if not Path(where).is_file():
            raise TaskError(f"objective file {where} does not exist")
        names = runpy.run_path(where, run_name="__graphgrad_objective__")
    else:
        import importlib

        try:
            names = vars(importlib.import_module(where))
        except ImportError as exc:
            raise TaskError(f"objective module {where!r} cannot be imported: {exc}") from None
    if not callable(names.get(name)):
        raise TaskError(f"{where} defines no function {name!r}")
    return names[name]


def objective_for(task: str, settings: dict | None = None, task_seed: int = 0):
    """The objective named on the command line: ``FILE.py:FUNCTION`` or a task."""
    if ":" in task and not os.path.exists(task):
        return FunctionObjective(task)
    return TaskObjective(task, dict(settings or {}), task_seed)


# ---------------------------------------------------------------------- the worker loop body
def run_trial(objective, job: dict, send_report, worker: str) -> dict:
    """Run one trial and return its record; never raises for the objective's faults.

    ``job`` holds ``number``, ``params`` and ``seed``; ``send_report(step, value)`` returns True
    when the pruner wants the trial stopped. A diverged ``fit`` is a finished trial with its
    verdict; an exception is a FAIL with its traceback; a prune is PRUNED.
    """
    start = time.perf_counter()
    report = Report(send_report, trial=job["number"], seed=job["seed"])
    record = {"worker": worker, "seed": job["seed"], "history": None, "verdict": None,
              "final_loss": None, "best_loss": None, "error": None, "value": None}
    try:
        result = objective(job["params"], report)
        record.update(_result(result))
        # a task's fit that the pruner stopped returns normally, with its History
        record["state"] = "COMPLETE" if report.pruned_at is None else "PRUNED"
    except Pruned:
        record["state"] = "PRUNED"
    except Exception as exc:  # the trial's own fault: kept, and the sweep goes on
        if type(exc).__name__ == "TrialPruned":  # optuna.TrialPruned from the user's code
            record["state"] = "PRUNED"
        else:
            record["state"] = "FAIL"
            record["error"] = "".join(traceback.format_exception(exc)).rstrip()
    record["wall_time"] = time.perf_counter() - start
    return record


def _result(result) -> dict:
    """The value and, for a History, its losses, verdict and a compact copy of its epochs."""
    if isinstance(result, train.History):
        key = result.monitor
        losses = [r.get(key) for r in result.epochs]
        finite = [v for v in losses if v is not None and math.isfinite(v)]
        final = losses[-1] if losses else None
        history = result.to_dict()
        # per-layer norms and update ratios stay out: the record holds what the report reads
        history["epochs"] = [{k: v for k, v in r.items() if not isinstance(v, dict)}
                             for r in result.epochs]
        history["steps"] = []
        return {"value": _worst_if_not_finite(final), "final_loss": final,
                "best_loss": min(finite) if finite else None, "history": history,
                "verdict": history["verdict"]}
    value = float(result)
    return {"value": _worst_if_not_finite(value), "final_loss": value, "best_loss": value}


def _worst_if_not_finite(value) -> float:
    """A diverged trial ranks last (Optuna refuses NaN as a finished trial's value)."""
    return value if value is not None and math.isfinite(value) else math.inf


def worker_name(slot: str) -> str:
    return f"{slot} pid {os.getpid()} on {socket.gethostname()}"
