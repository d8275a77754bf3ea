"""graphgrad.sweep with real Optuna, real worker processes and a real Dask LocalCluster.

Each test marks the processes it starts with an environment variable and, at the end, scans
/proc for any process that still carries it: none may be left. Trials are tiny; every wait is
bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from graphgrad import sweep, train  # noqa: E402
from graphgrad.cli import main  # noqa: E402
from graphgrad.graph import examples  # noqa: E402

MARK = "GRAPHGRAD_SWEEP_TEST"

OBJECTIVES = '''
import os, time

def quadratic(params, report):
    return (params["x"] - 2.0) ** 2

def raises(params, report):
    if report.trial == 1:
        raise ValueError("trial one is broken")
    return params["x"]

def hangs(params, report):
    """Trial 1 writes its pid and waits to be killed; trial 2 raises; the rest return x."""
    if report.trial == 1:
        with open(os.environ["PID_FILE"] + ".tmp", "w") as out:
            out.write(str(os.getpid()))
        os.replace(os.environ["PID_FILE"] + ".tmp", os.environ["PID_FILE"])
        time.sleep(60)
    if report.trial == 2:
        raise RuntimeError("trial two is broken")
    return params["x"]

def slow(params, report):
    time.sleep(float(os.environ.get("TRIAL_SECONDS", "0.25")))
    return params["x"]

def curve(params, report):
    for step in range(1, 21):
        report(params["x"] * (1 + 1 / step))
        time.sleep(0.005)
    return params["x"]

def device(params, report):
    return float(os.environ["CUDA_VISIBLE_DEVICES"])

def blas_threads(params, report):
    """The kernel's count of this worker's threads that Python did not start, after a large
    matmul: the BLAS's helper threads, 0 when it runs on one thread."""
    import threading

    import numpy as np

    a = np.ones((400, 400))
    a @ a
    with open("/proc/self/status") as status:
        kernel = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    return float(kernel - threading.active_count())
'''


# ---------------------------------------------------------------------- helpers
@pytest.fixture
def marked(monkeypatch, tmp_path):
    """A fresh marker in this process's environment (inherited by every process a sweep
    starts); afterwards, no process may carry it."""
    token = uuid.uuid4().hex
    monkeypatch.setenv(MARK, token)
    monkeypatch.setenv("PID_FILE", str(tmp_path / "pid"))
    yield token
    left = _wait_for_no_marked(token, 10)
    for pid in left:
        _kill(pid)
    assert not left, f"processes of the sweep left alive: {left}"


def _marked(token: str) -> list:
    """Pids (other than this one and its ancestors) whose environment carries the marker."""
    mine = _ancestors()
    needle = f"{MARK}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in mine:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as env:
                if needle in env.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return [pid for pid in found if not _zombie(pid) and not _python_helper(pid)]


def _python_helper(pid: int) -> bool:
    """multiprocessing's resource tracker: one per interpreter, it ends with pytest itself."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"multiprocessing.resource_tracker" in cmdline.read()
    except OSError:
        return True


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _ancestors() -> set:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        with open(f"/proc/{pid}/stat") as stat:
            pid = int(stat.read().rsplit(")", 1)[1].split()[1])
    return pids


def _wait_for_no_marked(token: str, seconds: float) -> list:
    deadline = time.monotonic() + seconds
    while True:
        left = _marked(token)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _objectives(tmp_path: Path) -> Path:
    path = tmp_path / "objectives.py"
    path.write_text(OBJECTIVES)
    return path


def _kill_when_pid_written(pid_file: Path, seconds: float = 60) -> threading.Thread:
    """A thread that SIGKILLs the pid written to ``pid_file`` as soon as it appears."""
    def watch():
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if pid_file.exists():
                _kill(int(pid_file.read_text()))
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _record(out: Path, name: str = "sweep"):
    """The study as Optuna itself reads it from the journal file."""
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def _states(study) -> list:
    return [t.state.name for t in sorted(study.trials, key=lambda t: t.number)]


# ---------------------------------------------------------------------- a task sweep
def test_eight_trials_on_two_workers_find_a_good_lr_for_the_seed_polynomial(marked, tmp_path):
    out = tmp_path / "poly"
    space = {"lr": sweep.Float(3e-3, 0.2, log=True), "max_grad": 1000.0, "lr_decay": 1.0,
             "min_lr": 1e-3, "epochs": 100}
    result = sweep.run("polynomial", space, trials=8, workers=2, sampler="random",
                       pruner="none", out=out, seed=0, progress=False)
    record = _record(out)
    assert _states(record) == ["COMPLETE"] * 8
    best = record.best_trial  # Optuna's own pick from its own record
    assert best.number == result.best.number
    assert json.loads((out / "summary.json").read_text())["best"]["number"] == best.number
    # By hand (README): the squared features reach 9, so steps above about 0.03 overshoot.
    assert 0.01 <= best.params["lr"] <= 0.035
    for trial in record.trials:
        diverged = trial.user_attrs["verdict"] is not None
        assert diverged == (trial.params["lr"] >= 0.035), trial.params
        assert trial.user_attrs["seed"] == trial.number
        epochs = trial.user_attrs["verdict"]["epoch"] if diverged else 100
        assert len(trial.user_attrs["history"]["epochs"]) == epochs
    # The record holds what fit gives for those settings, run here directly.
    direct = train.fit(examples.polynomial(), None, examples.polynomial_data(), optimizer="sgd",
                       lr=best.params["lr"], lr_decay=1.0, min_lr=1e-3, max_grad=1000.0,
                       epochs=100, batch_size=None, progress=False)
    assert best.value == pytest.approx(direct.epochs[-1]["train_loss"], rel=1e-9)
    seed_lr = train.fit(examples.polynomial(), None, examples.polynomial_data(),
                        optimizer="sgd", lr=0.01, lr_decay=1.0, min_lr=1e-3, max_grad=1000.0,
                        epochs=100, batch_size=None, progress=False)
    assert best.value < seed_lr.epochs[-1]["train_loss"]
    summary = json.loads((out / "summary.json").read_text())
    diverged = [t for t in record.trials if t.user_attrs["verdict"]]
    if diverged:
        low = min(t.params["lr"] for t in diverged)
        assert summary["failures"][0].startswith(f"{len(diverged)} of 8 trials diverged, all "
                                                 f"with lr >= {low:.2g}")
    for name in ("trials.csv", "index.html", "loss_vs_lr.png", "curves.png"):
        assert (out / name).is_file(), name
    # sweep-report rebuilds the report from the record alone
    for name in ("trials.csv", "index.html", "summary.json"):
        (out / name).unlink()
    assert main(["sweep-report", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert f"trial {best.number}" in (out / "index.html").read_text()


def test_pruning_stops_bad_trials_early_from_the_fit_history(marked, tmp_path):
    out = tmp_path / "pruned"
    space = {"lr": sweep.Float(1e-3, 0.03, log=True), "max_grad": 1000.0, "epochs": 60}
    sweep.run("polynomial", space, trials=10, workers=2, sampler="random", pruner="median",
              out=out, seed=1, progress=False, report=False)
    record = _record(out)
    pruned = [t for t in record.trials if t.state.name == "PRUNED"]
    complete = [t for t in record.trials if t.state.name == "COMPLETE"]
    assert pruned and complete
    for trial in pruned:
        epochs = trial.user_attrs["history"]["epochs"]
        assert trial.user_attrs["history"]["stopped_early"] and len(epochs) < 60
        assert trial.last_step <= len(epochs)
        # the median rule: at its last report it was worse than the finished trials' median
        at_step = [t.intermediate_values[trial.last_step] for t in complete
                   if trial.last_step in t.intermediate_values]
        if at_step:
            assert trial.intermediate_values[trial.last_step] > min(at_step)
    assert all(len(t.user_attrs["history"]["epochs"]) == 60 for t in complete)


# ---------------------------------------------------------------------- faults
def test_a_raising_trial_fails_with_its_traceback_and_the_sweep_goes_on(marked, tmp_path):
    objectives = _objectives(tmp_path)
    out = tmp_path / "raises"
    url = f"sqlite:///{tmp_path / 'study.db'}"  # an RDB record this time, given by URL
    result = sweep.run(f"{objectives}:raises", {"x": sweep.Float(0.0, 1.0)}, trials=4,
                       workers=2, out=out, storage=url, progress=False, report=False)
    record = optuna.load_study(study_name="sweep", storage=url)
    assert _states(record) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    error = record.trials[1].user_attrs["error"]
    assert error.startswith("Traceback") and error.endswith("ValueError: trial one is broken")
    assert "objectives.py" in error
    assert sweep.summarize(result.study)["failures"] == [
        "1 of 4 trials raised an error (ValueError: trial one is broken)"]
    assert not (out / "study.journal").exists()


def test_a_worker_killed_by_sigkill_is_replaced_and_its_trial_fails(marked, tmp_path):
    objectives = _objectives(tmp_path)
    out = tmp_path / "killed"
    killer = _kill_when_pid_written(tmp_path / "pid")
    sweep.run(f"{objectives}:hangs", {"x": sweep.Float(0.0, 1.0)}, trials=6, workers=2,
              out=out, progress=False, report=False)
    killer.join(1)
    record = _record(out)
    killed_pid = int((tmp_path / "pid").read_text())
    assert _states(record) == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE", "COMPLETE"]
    lost = record.trials[1].user_attrs
    assert f"its worker (pid {killed_pid}) died: killed by SIGKILL" == lost["error"]
    assert record.trials[2].user_attrs["error"].endswith("RuntimeError: trial two is broken")
    later = [t.user_attrs["worker"] for t in record.trials[3:]]
    assert all(f"pid {killed_pid} " not in w for w in later)
    assert not any(t.state.name == "RUNNING" for t in record.trials)


def test_killing_the_driver_leaves_no_worker_alive(marked, tmp_path):
    objectives = _objectives(tmp_path)
    (tmp_path / "space.toml").write_text("x = {low = 0.0, high = 1.0}\n")
    env = dict(os.environ, TRIAL_SECONDS="30")
    driver = subprocess.Popen(
        [sys.executable, "-m", "graphgrad", "sweep", f"{objectives}:slow", "--space",
         str(tmp_path / "space.toml"), "--trials", "4", "--workers", "2", "--out",
         str(tmp_path / "orphans")], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(_marked(marked)) < 3 and time.monotonic() < deadline:  # driver + 2 workers
            time.sleep(0.1)
        workers = [p for p in _marked(marked) if p != driver.pid]
        assert len(workers) >= 2
        time.sleep(0.5)  # the workers have picked up their trials
        driver.kill()  # SIGKILL to the driver alone: its workers must follow it
        driver.wait(10)
        assert _wait_for_no_marked(marked, 5) == []
    finally:
        _end_group(driver)


def _end_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def _sweep_command(objectives: Path, space: Path, out: Path, trials: int) -> list:
    return [sys.executable, "-m", "graphgrad", "sweep", f"{objectives}:slow", "--space",
            str(space), "--trials", str(trials), "--workers", "2", "--sampler", "random",
            "--pruner", "none", "--out", str(out)]


def test_a_sweep_killed_whole_then_stopped_by_ctrl_c_resumes_and_keeps_its_trials(
        marked, tmp_path):
    objectives = _objectives(tmp_path)
    space = tmp_path / "space.toml"
    space.write_text("x = {low = 0.0, high = 1.0}\n")
    out = tmp_path / "resume"
    command = _sweep_command(objectives, space, out, trials=6)

    def start():
        return subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def wait_for_complete(process, count: int) -> list:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "study.journal").exists():
                done = [t for t in _record(out).trials if t.state.name == "COMPLETE"]
                if len(done) >= count:
                    return done
            time.sleep(0.1)
        raise AssertionError(f"fewer than {count} trials finished in time")

    first = start()
    try:
        kept = {t.number: t.value for t in wait_for_complete(first, 2)}
        os.killpg(first.pid, signal.SIGKILL)  # the driver's whole process group
        first.wait(10)
    finally:
        _end_group(first)
    assert _wait_for_no_marked(marked, 5) == []
    assert "RUNNING" in _states(_record(out)) or len(kept) < 6

    second = start()
    try:
        wait_for_complete(second, len(kept) + 1)
        second.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr = second.communicate(timeout=30)
    finally:
        _end_group(second)
    assert second.returncode == 130
    assert "run the same command again" in stderr and "Traceback" not in stderr
    record = _record(out)
    assert "RUNNING" not in _states(record)
    assert {n: v for n, v in kept.items()} == {t.number: t.value for t in record.trials
                                               if t.number in kept}

    third = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    record = _record(out)
    counted = [t for t in record.trials if not t.user_attrs.get("abandoned")]
    abandoned = [t for t in record.trials if t.user_attrs.get("abandoned")]
    assert len(counted) == 6 and all(t.state.name == "COMPLETE" for t in counted)
    assert all(t.state.name == "FAIL" for t in abandoned) and abandoned
    assert {n: v for n, v in kept.items()} == {t.number: t.value for t in record.trials
                                               if t.number in kept}
    assert "resuming:" in third.stdout


def test_gpu_slots_give_each_worker_its_own_device(marked, tmp_path):
    objectives = _objectives(tmp_path)
    out = tmp_path / "gpus"
    sweep.run(f"{objectives}:device", {"x": sweep.Float(0.0, 1.0)}, trials=6, gpus=[0, 1],
              trials_per_gpu=2, out=out, progress=False, report=False)
    record = _record(out)
    assert _states(record) == ["COMPLETE"] * 6
    for trial in record.trials:  # the device the objective saw is its slot's
        worker = trial.user_attrs["worker"]
        assert f"(gpu {int(trial.value)})" in worker
    workers = {t.user_attrs["worker"] for t in record.trials}
    assert len({w.split(" pid")[0] for w in workers}) <= 4


def test_workers_run_blas_on_one_thread_though_the_driver_does_not(marked, monkeypatch,
                                                                   tmp_path):
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)  # the pool itself must limit its workers
    out = tmp_path / "blas"
    sweep.run(f"{_objectives(tmp_path)}:blas_threads", {"x": sweep.Float(0.0, 1.0)}, trials=2,
              workers=2, sampler="random", out=out, progress=False, report=False)
    assert [t.value for t in _record(out).trials] == [0.0, 0.0]  # the kernel's thread count


# ---------------------------------------------------------------------- Dask
def test_dask_local_cluster_keeps_a_raising_trial_and_a_killed_worker(marked, tmp_path):
    pytest.importorskip("distributed")
    objectives = _objectives(tmp_path)
    out = tmp_path / "dask"
    killer = _kill_when_pid_written(tmp_path / "pid")
    sweep.run(f"{objectives}:hangs", {"x": sweep.Float(0.0, 1.0)}, trials=5, workers=2,
              executor="dask-local", out=out, progress=False, report=False)
    killer.join(1)
    record = _record(out)
    killed_pid = int((tmp_path / "pid").read_text())
    assert _states(record) == ["COMPLETE", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert "KilledWorker" in record.trials[1].user_attrs["error"]
    assert record.trials[2].user_attrs["error"].endswith("RuntimeError: trial two is broken")
    assert all(f"pid {killed_pid} " not in t.user_attrs["worker"]
               for t in record.trials[3:])
    assert all(math.isfinite(t.value) for t in record.trials if t.state.name == "COMPLETE")


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, expected", [
    ("learning_rate = {low = 1e-4, high = 1.0}\n", "unknown key 'learning_rate'; allowed: "),
    ("lr = {low = 1.0, high = 1e-4}\n", "key 'lr': low (1) > high (0.0001)"),
    ("lr = {low = 0.0, high = 1.0, log = true}\n", "key 'lr': log = true needs low > 0"),
    ("lr = {low = 1e-4, hihg = 1.0}\n", "key 'lr': unknown field 'hihg'"),
    ("lr = [1e-4\n", "not valid TOML"),
])
def test_bad_space_files_get_one_line_and_exit_2(tmp_path, capsys, text, expected):
    space = tmp_path / "space.toml"
    space.write_text(text)
    out = tmp_path / "never"
    code = main(["sweep", "polynomial", "--space", str(space), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(space) in err and expected in err
    assert not out.exists()


@pytest.mark.parametrize("argv, expected", [
    (["sweep", "polynomal"], "unknown task 'polynomal'"),
    (["sweep", "polynomial", "--sampler", "annealing"], "invalid choice: 'annealing'"),
    (["sweep", "polynomial", "--executor", "ray"], "unknown executor 'ray'"),
    (["sweep", "linear"], "linear has no built-in space"),
    (["sweep", "polynomial", "--storage", "study.db"], "is not a database URL"),
])
def test_bad_tasks_and_choices_get_one_line_and_exit_2(tmp_path, capsys, argv, expected):
    out = tmp_path / "never"
    space = tmp_path / "space.toml"
    space.write_text("lr = {low = 1e-4, high = 1.0, log = true}\n")
    extra = ["--space", str(space)] if argv[1] == "polynomal" else []
    code = main([*argv, *extra, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err
    assert not out.exists()


# ---------------------------------------------------------------------- the record itself
def test_a_half_written_journal_line_is_cut_so_the_record_stays_readable(tmp_path):
    from graphgrad.sweep.record import open_storage, repair_journal

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def journal(name: str):
        url = f"journal:{tmp_path / name}"
        study = optuna.create_study(storage=open_storage(url), study_name="sweep")
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        with open(tmp_path / name, "ab") as out:  # a writer killed part way through a line
            out.write(b'{"op_code": 5, "worker_id": "x", "study_id": 0, "dat')
        return url

    def more_trials(url: str):
        study = optuna.load_study(study_name="sweep", storage=open_storage(url))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
        return optuna.load_study(study_name="sweep", storage=open_storage(url))

    broken = journal("broken.journal")
    # Unrepaired, the next record is glued to the cut line and lost: Optuna breaks (how it
    # breaks depends on its version: a ValueError on reading, an AttributeError on writing)
    with pytest.raises((ValueError, AttributeError)):
        more_trials(broken)
    repaired = journal("repaired.journal")
    assert repair_journal(repaired) and not repair_journal(repaired)
    assert len(more_trials(repaired).trials) == 3
