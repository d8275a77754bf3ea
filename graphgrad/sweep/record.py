"""The record of a sweep: one Optuna study, in a journal file in the output folder by default or
in a database given by URL. Everything else (progress, resume, the report) reads it.

Each trial keeps, beside Optuna's own params, state, value and times, these user attributes:
``history`` (its ``train`` History, per-epoch records), ``verdict``, ``final_loss``,
``best_loss``, ``error`` (a traceback, or why its worker was lost), ``worker``, ``wall_time``,
``seed`` and ``driver`` (the process that ran the sweep, to tell a trial left RUNNING by a
killed sweep from one still running). The study keeps the objective, the space and the
settings as user attributes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

JOURNAL = "study.journal"
STUDY = "sweep"
RECORD_KEYS = ("history", "verdict", "final_loss", "best_loss", "error", "worker", "wall_time",
               "seed")


def storage_url(out: Path, storage: str | None) -> str:
    """What the record is: an RDB URL, or ``journal:PATH`` for the default journal file.

    >>> storage_url(Path("runs/s"), None).endswith("study.journal")
    True
    """
    if storage:
        return storage
    return "journal:" + str((out / JOURNAL).resolve())


def open_storage(url: str):
    """The Optuna storage for ``url`` (see :func:`storage_url`)."""
    import optuna

    if url.startswith("journal:"):
        path = url[len("journal:"):]
        lock = _FlockLock(path) if _has_flock() else None
        return optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(path, lock_obj=lock))
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def repair_journal(url: str) -> bool:
    """Cut a journal's last line if a killed process left it half written (Optuna would refuse
    every later line). Returns True when something was cut."""
    if not url.startswith("journal:"):
        return False
    path = url[len("journal:"):]
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    with _locked(path), open(path, "rb+") as journal:
        data = journal.read()
        if data.endswith(b"\n"):
            return False
        journal.truncate(data.rfind(b"\n") + 1)
        journal.flush()
        os.fsync(journal.fileno())
        return True


def _has_flock() -> bool:
    try:
        import fcntl  # noqa: F401
    except ImportError:  # Windows: Optuna's own lock (a stale one expires after 30 s)
        return False
    return True


class _FlockLock:
    """The journal's lock as an ``flock`` on a side file: the kernel releases it when its
    holder dies, so a process killed mid-write never leaves the others waiting on a stale lock
    (Optuna's symlink lock stays for its 30-second grace period). Optuna's journal backend
    only calls ``acquire`` and ``release``."""

    def __init__(self, path: str) -> None:
        self.path = path + ".flock"
        self.handle = None

    def acquire(self) -> bool:
        import fcntl

        self.handle = open(self.path, "a")  # noqa: SIM115 - held until release()
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None


@contextlib.contextmanager
def _locked(path: str):
    if not _has_flock():
        yield
        return
    lock = _FlockLock(path)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


# ---------------------------------------------------------------------- trials
def write_record(study, trial_id: int, number: int, record: dict) -> None:
    """Keep a finished trial's record and close it with its state, once: writing a trial that
    is already finished (a task Dask ran again, a worker that died just after) changes nothing.
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import Trial, TrialState

    trial = Trial(study, trial_id)
    try:
        for key in RECORD_KEYS:
            trial.set_user_attr(key, record.get(key))
    except UpdateFinishedTrialError:
        return
    state = TrialState[record["state"]]
    value = record["value"] if state == TrialState.COMPLETE else None
    study.tell(number, value, state=state, skip_if_finished=True)


def mark_lost(study, trial_id: int, number: int, reason: str, worker: str | None = None,
              abandoned: bool = False) -> None:
    """Close a trial whose worker died (or whose sweep stopped) as FAIL, with the reason.
    An ``abandoned`` trial (stopped by Ctrl-C or a killed sweep) does not count toward N."""
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import Trial, TrialState

    trial = Trial(study, trial_id)
    try:
        trial.set_user_attr("error", reason)
        if worker is not None:
            trial.set_user_attr("worker", worker)
        if abandoned:
            trial.set_user_attr("abandoned", True)
    except UpdateFinishedTrialError:  # its worker finished it in between
        return
    study.tell(number, state=TrialState.FAIL, skip_if_finished=True)


def counted(trials) -> list:
    """The finished trials that count toward N (an abandoned trial is run again)."""
    return [t for t in trials if t.state.is_finished() and not t.user_attrs.get("abandoned")]


# ---------------------------------------------------------------------- the driver's identity
def driver_identity() -> dict:
    """Who runs this sweep: host, pid and the pid's start time (pids are reused)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_time(os.getpid())}


def driver_alive(identity: dict | None) -> bool:
    """False when the driver that owned a trial has certainly stopped (only known on its own
    host; a driver elsewhere is assumed alive)."""
    if not identity:
        return False
    if identity.get("host") != socket.gethostname():
        return True
    pid = identity["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _start_time(pid) == identity.get("started")


def _start_time(pid: int):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
    except OSError:  # no /proc: the pid alone
        return None


def fail_stale_trials(study) -> list:
    """Close, as abandoned FAILs, the RUNNING trials whose sweep was killed (journal storage
    has no heartbeat, so nobody else would). Returns their numbers."""
    from optuna.trial import TrialState

    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("driver")
        if not driver_alive(owner):
            who = f"pid {owner['pid']} on {owner['host']}" if owner else "an unknown process"
            when = time.strftime("%Y-%m-%d %H:%M:%S")
            mark_lost(study, trial._trial_id, trial.number, f"its sweep ({who}) stopped before "
                      f"the trial finished; found RUNNING at {when}", abandoned=True)
            stale.append(trial.number)
    return stale
