"""The sweep's driver: it asks the study for trials, hands them to an executor, relays reports
to the pruner, keeps every result in the record and stops cleanly. One coordinator owns the
bookkeeping (STYLE 5): executors only decide where the worker loop runs."""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from ..tasks import TaskError
from .choices import PRUNERS, SAMPLERS, make_pruner, make_sampler
from .local import WorkerStartError
from .objective import FunctionObjective, TaskObjective, objective_for
from .record import (
    STUDY,
    counted,
    driver_identity,
    fail_stale_trials,
    mark_lost,
    open_storage,
    repair_journal,
    storage_url,
    write_record,
)
from .space import Space, SpaceError, load_space


class SweepError(ValueError):
    """A sweep that cannot start as asked (bad space, objective, executor or record)."""


@dataclass
class SweepResult:
    """What :func:`run` leaves: the Optuna ``study`` (the record), the folder ``out``, and
    whether Ctrl-C stopped it (``interrupted``)."""

    study: object
    out: Path
    interrupted: bool = False

    @property
    def best(self):
        """The best finished trial (Optuna's FrozenTrial), or None."""
        from optuna.trial import TrialState

        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return min(done, key=lambda t: t.value) if done else None


def run(objective, space, *, trials: int = 20, workers: int = 2, sampler: str = "tpe",
        pruner: str = "median", executor: str = "local", storage: str | None = None,
        out="runs/sweep", seed: int = 0, gpus: list | None = None, trials_per_gpu: int = 1,
        study_name: str = STUDY, settings: dict | None = None, progress: bool | None = None,
        report: bool = True) -> SweepResult:
    """Run ``trials`` trials of ``objective`` over ``space`` on ``workers`` workers, keeping
    the record in ``out`` (or ``storage``); running it again resumes, counting the trials
    already finished toward ``trials``.

    ``objective`` is a task name (``"polynomial"``), a task file, ``"FILE.py:FUNCTION"``, or a
    function ``objective(params, report) -> float``; ``space`` a :class:`Space`, a dict or a
    TOML path. ``executor`` is ``local``, ``dask-local`` or a Dask scheduler address.

    >>> import tempfile
    >>> result = run("polynomial", {"lr": {"low": 0.005, "high": 0.03}, "epochs": 20},
    ...              trials=2, workers=1, out=tempfile.mkdtemp(), progress=False, report=False)
    >>> len(result.study.trials), result.best.params["lr"] < 0.03
    (2, True)
    """
    _need("optuna", "sweeps need Optuna: pip install 'graphgrad[sweep]'")
    objective = _objective(objective, settings, seed)
    space = _space(space, objective)
    _check_choices(sampler, pruner, executor, space, gpus, workers, trials, storage)
    if executor == "local":
        _check_picklable(objective)
    if sampler == "grid":
        trials = min(trials, space.grid_size())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    url = storage_url(out, storage)
    job = {"seed": seed, "objective": objective, "storage": url, "study": study_name,
           "pruner": pruner}
    pool = _executor(executor, workers, gpus, trials_per_gpu)
    driver = None
    try:
        with pool:  # the workers start up while the study opens
            study = _open_study(url, study_name, sampler, pruner, seed, objective, space)
            stale = fail_stale_trials(study)
            driver = _Driver(study, pool, space, job, _Progress(trials, study, progress, stale))
            with _stop_requests(driver):
                driver.drive(trials - len(counted(study.get_trials(deepcopy=False))))
    except BaseException as exc:  # no trial of this sweep may stay RUNNING in the record
        if driver is not None:
            driver.abandon(f"the sweep stopped on {exc!r} while it ran")
        if isinstance(exc, WorkerStartError):
            raise SweepError(str(exc)) from None
        raise
    finally:
        if driver is not None:
            driver.progress.close()
    if driver.stopping:
        driver.abandon("the sweep was interrupted while it ran; it runs again when the sweep "
                       "resumes")
    if report:
        from .report import write_report

        write_report(out, study)
    return SweepResult(study, out, driver.stopping)


@contextlib.contextmanager
def _stop_requests(driver):
    """Ctrl-C and SIGTERM ask the driver to stop between two steps, so that no record is cut
    half way; a second Ctrl-C stops at once. (Only the main thread can take signals.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum, frame):
        if driver.stopping and signum == signal.SIGINT:
            raise KeyboardInterrupt
        driver.stopping = True

    saved = {sig: signal.signal(sig, request) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class _Driver:
    """Hands trials to the executor while any are left to start, and handles its events."""

    def __init__(self, study, pool, space, job: dict, progress) -> None:
        self.study, self.pool, self.space, self.job = study, pool, space, job
        self.progress = progress
        self.running: dict = {}  # number -> the Optuna Trial handed out
        self.identity = driver_identity()
        self.stopping = False  # set by Ctrl-C or SIGTERM: stop at the next safe point

    def drive(self, to_start: int) -> None:
        while (to_start > 0 or self.running) and not self.stopping:
            while to_start > 0 and self.pool.idle() > 0 and not self.stopping:
                self._start()
                to_start -= 1
            for event in self.pool.events(timeout=0.5):
                self._handle(event)

    def _start(self) -> None:
        trial = self.study.ask()
        params = self.space.suggest(trial)
        trial.set_user_attr("driver", self.identity)
        self.running[trial.number] = trial
        self.pool.submit({**self.job, "number": trial.number, "trial_id": trial._trial_id,
                          "params": params, "seed": self.job["seed"] + trial.number})

    def _handle(self, event) -> None:
        kind, number = event[0], event[1]
        trial = self.running.get(number)
        if trial is None:
            return
        if kind == "report":
            with warnings.catch_warnings():  # a repeated step is ignored, as Optuna says
                warnings.simplefilter("ignore")
                trial.report(event[3], event[2])
            if trial.should_prune():
                self.pool.prune(number)
            return
        del self.running[number]
        if kind == "done" and not self.pool.writes_record:
            write_record(self.study, trial._trial_id, number, event[2])
        elif kind == "lost":
            mark_lost(self.study, trial._trial_id, number, event[2], worker=event[3])
        self.progress.finished(number)

    def abandon(self, reason: str) -> None:
        """Close the trials still out (their workers are stopped) so none stays RUNNING."""
        for number, trial in self.running.items():
            mark_lost(self.study, trial._trial_id, number, reason, abandoned=True)
        self.running.clear()


# ---------------------------------------------------------------------- checking the request
def _objective(objective, settings, seed):
    if isinstance(objective, (TaskObjective, FunctionObjective)):
        chosen = objective
    elif isinstance(objective, (str, os.PathLike)):
        chosen = objective_for(os.fspath(objective), settings, seed)
    elif callable(objective):
        chosen = FunctionObjective(objective)
    else:
        raise SweepError(f"objective must be a task name, FILE.py:FUNCTION or a function, got "
                         f"{type(objective).__name__}")
    try:
        chosen.check()
    except TaskError as exc:
        raise SweepError(str(exc)) from None
    return chosen


def _space(space, objective) -> Space:
    allowed = objective.allowed()
    if isinstance(space, (str, os.PathLike)):
        return load_space(space, allowed)
    if isinstance(space, dict):
        space = Space(space)
    if not isinstance(space, Space):
        raise SpaceError(f"space must be a Space, a dict or a TOML path, got "
                         f"{type(space).__name__}")
    if allowed is not None:
        space.check_keys(allowed)
    if not space.swept:
        raise SpaceError(f"{space.source}: nothing to sweep: every key is fixed")
    return space


def _check_choices(sampler, pruner, executor, space, gpus, workers, trials, storage) -> None:
    if sampler not in SAMPLERS:
        raise SweepError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise SweepError(f"unknown pruner {pruner!r}; choose one of {', '.join(PRUNERS)}")
    if executor not in ("local", "dask-local") and "://" not in executor:
        raise SweepError(f"unknown executor {executor!r}; choose local, dask-local or a Dask "
                         "scheduler address such as tcp://HOST:8786")
    if executor != "local":
        _need("distributed", f"--executor {executor} needs Dask: pip install 'graphgrad[dask]'")
    if gpus and executor != "local":
        raise SweepError("--gpus works with the local executor; on Dask, start one worker per "
                         "GPU with CUDA_VISIBLE_DEVICES set for it")
    if workers is not None and workers < 1:
        raise SweepError(f"workers must be at least 1, got {workers}")
    if trials < 1:
        raise SweepError(f"trials must be at least 1, got {trials}")
    if storage is not None and "://" not in storage:
        raise SweepError(f"--storage {storage!r} is not a database URL; give e.g. "
                         "sqlite:///study.db or postgresql://USER@HOST/DB")
    if sampler == "grid":
        space.grid()  # raises SpaceError naming a float without a step


def _check_picklable(objective) -> None:
    """Worker processes receive the objective pickled: a lambda or a nested function cannot
    travel (Dask's cloudpickle can carry them)."""
    try:
        pickle.dumps(objective)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise SweepError(f"the objective cannot be sent to worker processes ({exc}); define "
                         "it at the top level of a module or give FILE.py:FUNCTION") from None


def _executor(executor, workers, gpus, per_gpu):
    if executor == "local":
        from .local import LocalExecutor

        return LocalExecutor(workers or os.cpu_count() or 1, gpus=gpus, per_gpu=per_gpu)
    from .cluster import DaskExecutor

    return DaskExecutor(executor, workers)


def _need(module: str, message: str) -> None:
    """An ImportError that says which extra to install, before anything is written."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ImportError(message)


def _open_study(url, name, sampler, pruner, seed, objective, space):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    repair_journal(url)
    try:
        storage = open_storage(url)
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                    load_if_exists=True)
    except (ImportError, ValueError, OSError) as exc:  # a bad URL or a missing driver
        raise SweepError(f"cannot open the storage {url}: {exc}") from None
    plan = {"objective": objective.describe(), "space": space.to_dict()}
    kept = study.user_attrs.get("graphgrad")
    if kept is None:
        study.set_user_attr("graphgrad", {**plan, "sampler": sampler, "pruner": pruner,
                                          "seed": seed})
    elif {k: kept.get(k) for k in plan} != plan:
        raise SweepError(f"{url} already holds study {name!r} of {kept['objective']} over "
                         "another space; give another --out (or --study) for this one")
    # A sampler seeded afresh on resume would propose the first trials again.
    seen = len(study.get_trials(deepcopy=False))
    return optuna.load_study(study_name=name, storage=storage,
                             sampler=make_sampler(sampler, seed + seen, space),
                             pruner=make_pruner(pruner))


# ---------------------------------------------------------------------- progress
class _Progress:
    """Trials done, failed and pruned, and the best so far: a tqdm bar on a terminal, a line
    per finished trial otherwise, nothing with ``progress=False``."""

    def __init__(self, total: int, study, show: bool | None, stale: list) -> None:
        self.total, self.study, self.bar = total, study, None
        self.show = show is not False
        done = len(counted(study.get_trials(deepcopy=False)))
        if self.show and stale:
            print(f"closed {len(stale)} trial(s) left RUNNING by a sweep that was killed: "
                  f"{', '.join(map(str, stale))} (they run again)", flush=True)
        if self.show and done:
            print(f"resuming: {done} of {total} trials already finished", flush=True)
        if self.show and (show is True or sys.stdout.isatty()):
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, initial=min(done, total), unit="trial")
            except ImportError:
                pass
        self.start = time.perf_counter()

    def finished(self, number: int) -> None:
        if not self.show:
            return
        trials = self.study.get_trials(deepcopy=False)
        line = self._status(trials)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(line)
            return
        trial = next(t for t in trials if t.number == number)
        print(f"trial {number} {_outcome(trial)}; {line}", flush=True)

    def _status(self, trials) -> str:
        finished = counted(trials)
        states = [t.state.name for t in finished]
        complete = [t for t in finished if t.state.name == "COMPLETE"]
        best = min(complete, key=lambda t: t.value, default=None)
        best_text = "none yet" if best is None else f"{_num(best.value)} (trial {best.number})"
        return (f"{len(finished)}/{self.total} done, {states.count('FAIL')} failed, "
                f"{states.count('PRUNED')} pruned, best {best_text}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _outcome(trial) -> str:
    attrs = trial.user_attrs
    params = ", ".join(f"{k}={_num(v)}" for k, v in trial.params.items())
    if trial.state.name == "COMPLETE":
        verdict = attrs.get("verdict")
        what = f"{verdict['kind']} at epoch {verdict['epoch']}" if verdict else \
            f"loss {_num(trial.value)}"
    elif trial.state.name == "FAIL":
        what = "FAIL: " + (attrs.get("error") or "").strip().splitlines()[-1:][0] \
            if attrs.get("error") else "FAIL"
    else:
        what = trial.state.name
    return f"{what} ({params})"


def _num(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)
