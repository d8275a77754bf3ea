"""The ``local`` executor: a supervised pool of worker processes on the standard library.

The driver owns every worker's life (STYLE 15): it starts them with ``spawn`` (so BLAS's thread
count and ``CUDA_VISIBLE_DEVICES`` are in their environment before they import NumPy), hands
each one trial at a time over a pipe, relays their per-epoch reports to the pruner, and watches
their sentinels: a worker that dies is replaced and the trial it held is reported lost. Workers
only compute; they never touch the record, so a killed worker cannot leave it half written.
Each worker is tied to the driver's life (``prctl(PR_SET_PDEATHSIG)`` on Linux, and a thread
that watches its parent pid everywhere), so killing the driver leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import wait

from .objective import run_trial, worker_name

# One BLAS thread per worker: W workers on W cores, not W times the cores.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}
WATCH_INTERVAL = 0.5  # seconds between a worker's checks that its driver is alive
PR_SET_PDEATHSIG = 1
START_ATTEMPTS = 3  # workers in a row that die before they are ready: the pool cannot start


class WorkerStartError(RuntimeError):
    """Workers die before they can take a trial (e.g. the main module cannot be re-imported)."""


class _Slot:
    """One worker place: its environment, its process and the trial it holds."""

    def __init__(self, index: int, env: dict, label: str) -> None:
        self.index, self.env, self.label = index, env, label
        self.process = self.conn = None
        self.job: dict | None = None
        self.pruned = self.ready = False


class LocalExecutor:
    """``slots`` worker processes; ``gpus`` (a list of device ids) gives each slot one
    device through ``CUDA_VISIBLE_DEVICES``, ``per_gpu`` slots per device.

    Events from :meth:`events`: ``("report", number, step, value)``, ``("done", number,
    record)`` and ``("lost", number, reason, worker)``.
    """

    name = "local"
    writes_record = False  # the driver writes what the workers send

    def __init__(self, workers: int, gpus: list | None = None, per_gpu: int = 1,
                 start_method: str = "spawn") -> None:
        self.context = multiprocessing.get_context(start_method)
        if gpus:
            self.slots = [_Slot(i, {**ONE_THREAD, "CUDA_VISIBLE_DEVICES": str(gpu)},
                                f"local worker {i} (gpu {gpu})")
                          for i, gpu in enumerate(g for g in gpus for _ in range(per_gpu))]
        else:
            self.slots = [_Slot(i, dict(ONE_THREAD), f"local worker {i}")
                          for i in range(workers)]
        self.restarts = self.failed_starts = 0

    @property
    def size(self) -> int:
        return len(self.slots)

    def __enter__(self) -> LocalExecutor:
        for slot in self.slots:
            self._start(slot)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self, slot: _Slot) -> None:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_worker_main, name=f"graphgrad-sweep-{slot.index}",
                                       args=(theirs, os.getpid(), slot.label))
        with _environment(slot.env):  # the child's environment is the parent's at start
            process.start()
        theirs.close()
        slot.process, slot.conn, slot.job = process, ours, None
        slot.pruned = slot.ready = False

    # ------------------------------------------------------------------ the contract
    def idle(self) -> int:
        return sum(slot.ready and slot.job is None for slot in self.slots)

    def submit(self, job: dict) -> None:
        slot = next(s for s in self.slots if s.ready and s.job is None)
        slot.job, slot.pruned = job, False
        slot.conn.send(job)

    def prune(self, number: int) -> None:
        slot = self._holding(number)
        if slot is not None and not slot.pruned:
            slot.pruned = True
            with contextlib.suppress(OSError):  # it may have died meanwhile
                slot.conn.send("prune")

    def _holding(self, number: int) -> _Slot | None:
        return next((s for s in self.slots if s.job and s.job["number"] == number), None)

    def events(self, timeout: float) -> list:
        ready = set(wait([s.conn for s in self.slots] + [s.process.sentinel for s in self.slots],
                         timeout))
        found = []
        for slot in self.slots:
            if slot.conn in ready:
                found += self._read(slot)
            if slot.process.sentinel in ready or not slot.process.is_alive():
                found += self._read(slot)  # what it sent before it died still counts
                found += self._replace(slot)
        return found

    def _read(self, slot: _Slot) -> list:
        found = []
        with contextlib.suppress(EOFError, OSError):
            while slot.conn.poll():
                message = slot.conn.recv()
                if message[0] == "ready":
                    slot.ready, self.failed_starts = True, 0
                    continue
                if message[0] == "done" and slot.job and message[1] == slot.job["number"]:
                    slot.job = None
                found.append(message)
        return found

    def _replace(self, slot: _Slot) -> list:
        slot.process.join(1)
        code = slot.process.exitcode
        lost = []
        if slot.job is not None:
            how = _exit_text(code)
            lost.append(("lost", slot.job["number"], f"its worker (pid {slot.process.pid}) "
                         f"died: {how}", f"{slot.label} pid {slot.process.pid}"))
        slot.conn.close()
        if not slot.ready:
            self.failed_starts += 1
            if self.failed_starts >= START_ATTEMPTS:
                slot.process = None
                raise WorkerStartError(
                    f"{START_ATTEMPTS} workers in a row died before they could take a trial "
                    f"({_exit_text(code)}); a script that starts a sweep must be a file whose "
                    "sweep runs under if __name__ == '__main__':")
        self.restarts += 1
        self._start(slot)
        return lost

    def running(self) -> list:
        return [slot.job["number"] for slot in self.slots if slot.job is not None]

    def close(self) -> None:
        """Ask idle workers to stop, stop busy ones, and wait for all (bounded)."""
        for slot in self.slots:
            if slot.process is None:
                continue
            with contextlib.suppress(OSError):
                if slot.job is None:
                    slot.conn.send(None)
                else:
                    slot.process.terminate()
        deadline = time.monotonic() + 3
        for slot in self.slots:
            if slot.process is None:
                continue
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(1)
            slot.conn.close()
            slot.process = None


def _exit_text(code) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"it exited with code {code}"


@contextlib.contextmanager
def _environment(extra: dict):
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---------------------------------------------------------------------- in the worker
def _worker_main(conn, driver_pid: int, label: str) -> None:
    """A worker's whole life: tied to its driver, it runs the trials it is sent, one by one."""
    _tie_to_parent(driver_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    worker = worker_name(label)
    conn.send(("ready",))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the driver is gone
            return
        if job is None:
            return
        if job == "prune":  # a late order for a trial that already finished
            continue

        def send_report(step, value, number=job["number"]):
            conn.send(("report", number, step, value))
            return _prune_ordered(conn)

        record = run_trial(job["objective"], job, send_report, worker)
        conn.send(("done", job["number"], record))


def _prune_ordered(conn) -> bool:
    ordered = False
    while conn.poll():
        ordered = conn.recv() == "prune" or ordered
    return ordered


def _tie_to_parent(driver_pid: int) -> None:
    """Die with the driver: the kernel's parent-death signal where there is one, and a watchdog
    thread everywhere (it also covers a driver that died before the prctl call)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != driver_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(driver_pid,), name="graphgrad-watchdog",
                     daemon=True).start()


def _watch_parent(driver_pid: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() != driver_pid:
            os._exit(1)
