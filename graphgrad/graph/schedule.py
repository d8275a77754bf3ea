"""One scheduler, several executors.

The :class:`Scheduler` owns the bookkeeping of a run: how many parents each node still waits for,
which nodes are ready, and each node's state. Executors decide only *where* a ready node's work
runs: in the calling thread (:class:`SerialExecutor`), on a pool of threads
(:class:`ThreadPoolExecutor`), or one state change at a time (:class:`StepExecutor`). Workers
compute and never wait on other nodes; only the coordinating thread touches the scheduler.
"""

from __future__ import annotations

import concurrent.futures as futures
import enum
import heapq
import threading
import time
from dataclasses import dataclass

from .. import _state


class NodeState(enum.Enum):
    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Event:
    """What happened to one node in a run: its final state, where and when it ran (seconds from
    the start of the run)."""

    node: int
    name: str
    state: str
    worker: str
    start: float
    end: float

    def as_dict(self) -> dict:
        return dict(
            node=self.node,
            name=self.name,
            state=self.state,
            worker=self.worker,
            start=self.start,
            end=self.end,
        )


class NodeFailed(RuntimeError):
    """A node's work raised: names the node, keeps the original error as ``__cause__``."""


class Scheduler:
    """Dependency counts and a ready queue over ``tasks`` (ids, in priority order)."""

    def __init__(self, tasks: list[int], parents: dict[int, list[int]]) -> None:
        """``tasks`` in priority order: of the nodes ready at once, the earliest runs first, so
        a serial run follows the given order exactly (a post-order, for a forward pass)."""
        self.order = {t: k for k, t in enumerate(tasks)}
        self.children: dict[int, list[int]] = {t: [] for t in tasks}
        self.pending: dict[int, int] = {}
        for t in tasks:
            distinct = {p for p in parents.get(t, ()) if p in self.order}
            self.pending[t] = len(distinct)
            for p in distinct:
                self.children[p].append(t)
        for kids in self.children.values():
            kids.sort(key=self.order.__getitem__)
        self.state = {t: NodeState.WAITING for t in tasks}
        self.ready: list[tuple[int, int]] = []  # a heap of (priority, task)
        for t in tasks:
            if self.pending[t] == 0:
                self._make_ready(t)

    def _make_ready(self, t: int) -> None:
        self.state[t] = NodeState.READY
        heapq.heappush(self.ready, (self.order[t], t))

    def pop_ready(self, limit: int | None = None) -> list[int]:
        """The ready tasks (at most ``limit``), highest priority first; they are now running."""
        batch = []
        while self.ready and (limit is None or len(batch) < limit):
            t = heapq.heappop(self.ready)[1]
            self.state[t] = NodeState.RUNNING
            batch.append(t)
        return batch

    def complete(self, t: int) -> None:
        self.state[t] = NodeState.DONE
        for child in self.children[t]:
            self.pending[child] -= 1
            if self.pending[child] == 0:
                self._make_ready(child)

    def fail(self, t: int) -> list[int]:
        """Mark t failed and everything downstream skipped; returns the skipped ids."""
        self.state[t] = NodeState.FAILED
        skipped, stack = [], list(self.children[t])
        while stack:
            child = stack.pop()
            if self.state[child] in (NodeState.WAITING, NodeState.READY):
                self.state[child] = NodeState.SKIPPED
                skipped.append(child)
                stack.extend(self.children[child])
        self.ready = [entry for entry in self.ready if self.state[entry[1]] is NodeState.READY]
        heapq.heapify(self.ready)
        return skipped

    def finished(self) -> bool:
        return not self.ready and all(
            s in (NodeState.DONE, NodeState.FAILED, NodeState.SKIPPED) for s in self.state.values()
        )


@dataclass
class Job:
    """What an executor runs: ``work(t)`` computes node t (any thread, no bookkeeping);
    ``finish(t, result)`` stores the result (coordinating thread only)."""

    scheduler: Scheduler
    work: object
    finish: object
    name_of: object
    cost_of: object = None
    origin: float | None = None  # perf_counter() at which event times are 0; None: now


class SerialExecutor:
    """Runs each ready node in the calling thread, in the scheduler's order."""

    name = "serial"

    def run(self, job: Job) -> list[Event]:
        events, clock, failure = [], _Clock(job.origin), None
        while batch := job.scheduler.pop_ready(limit=1):
            failed = _run_here(batch[0], job, events, clock)
            failure = failure or failed  # the first failure is the one reported
        _raise_failure(failure, job, events)
        return events


class ThreadPoolExecutor:
    """Runs ready nodes on ``workers`` threads; each node starts once its parents are done.

    Nodes cheaper than ``min_cost`` (elements touched; a matmul counts its multiply-adds) run in
    the coordinating thread: handing a tiny node to a thread costs more than computing it. NumPy
    releases the GIL inside its kernels, so large nodes really do run at the same time.
    """

    name = "threads"

    def __init__(self, workers: int = 2, min_cost: int = 200_000) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.min_cost = min_cost
        self._pool = None
        self._lock = threading.Lock()

    def _get_pool(self) -> futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(
                    self.workers, thread_name_prefix="graphgrad-worker"
                )
            return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def run(self, job: Job) -> list[Event]:
        events, clock, failure = [], _Clock(job.origin), None
        sched = job.scheduler
        grad_enabled = _state.state.grad_enabled  # workers compute in the caller's grad mode
        running: dict[futures.Future, tuple[int, float]] = {}

        def in_worker(t):
            _state.state.grad_enabled = grad_enabled
            start = clock()
            result = job.work(t)
            return result, start, clock(), _worker_name()

        cost_of, min_cost = job.cost_of, self.min_cost
        while True:
            for t in sched.pop_ready():
                if cost_of is not None and cost_of(t) < min_cost:
                    failed = _run_here(t, job, events, clock)
                    failure = failure or failed
                else:
                    running[self._get_pool().submit(in_worker, t)] = t
            if not running:
                if not sched.ready:
                    break
                continue
            done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: sched.order[running[f]]):
                t = running.pop(fut)
                try:
                    result, start, end, worker = fut.result()
                except Exception as exc:
                    failure = failure or (t, exc)
                    events.append(Event(t, job.name_of(t), "failed", "worker", clock(), clock()))
                    events += _skipped(sched.fail(t), job, clock())
                    continue
                job.finish(t, result)
                sched.complete(t)
                events.append(Event(t, job.name_of(t), "done", worker, start, end))
        _raise_failure(failure, job, events)
        return events


class StepExecutor:
    """One state change per call of :meth:`step`, for teaching and the lab.

    Build it around a job with :meth:`start`; each ``step()`` returns ``(node, state)`` for the
    change it made (a node becomes running, then done), or None when the run is over.
    """

    name = "step"

    def __init__(self) -> None:
        self._steps = None
        self.events: list[Event] = []

    def start(self, job: Job) -> StepExecutor:
        self.events = []  # each run has its own record
        self._steps = self._changes(job)
        return self

    def step(self):
        if self._steps is None:
            raise RuntimeError("StepExecutor.step() before start(): run a graph with it first")
        return next(self._steps, None)

    def run(self, job: Job) -> list[Event]:
        """Run to the end (what a Graph run does with this executor)."""
        self.start(job)
        while self.step() is not None:
            pass
        return self.events

    def _changes(self, job: Job):
        clock = _Clock(job.origin)
        while batch := job.scheduler.pop_ready(limit=1):
            t = batch[0]
            yield t, NodeState.RUNNING.value
            failure = _run_here(t, job, self.events, clock)
            _raise_failure(failure, job, self.events)
            yield t, NodeState.DONE.value


class _Clock:
    """Seconds since the run started (or since ``origin``, so a backward pass continues the
    forward pass's timeline)."""

    def __init__(self, origin: float | None = None) -> None:
        self.origin = time.perf_counter() if origin is None else origin

    def __call__(self) -> float:
        return time.perf_counter() - self.origin


def _run_here(t: int, job: Job, events: list, clock) -> tuple | None:
    """Run node t in this (the coordinating) thread; a failure is returned, not raised, so that
    the rest of the graph still runs and is accounted for."""
    start = clock()
    try:
        result = job.work(t)
    except Exception as exc:  # the node's name goes on the error when the run ends
        events.append(Event(t, job.name_of(t), "failed", "main", start, clock()))
        events += _skipped(job.scheduler.fail(t), job, clock())
        return t, exc
    job.finish(t, result)
    job.scheduler.complete(t)
    events.append(Event(t, job.name_of(t), "done", "main", start, clock()))
    return None


def _worker_name() -> str:
    name = threading.current_thread().name  # "graphgrad-worker_0" -> "worker-1"
    return "worker-" + str(int(name.rsplit("_", 1)[-1]) + 1) if "_" in name else name


def _skipped(ids, job, now) -> list[Event]:
    return [Event(t, job.name_of(t), "skipped", "-", now, now) for t in ids]


def _raise_failure(failure, job, events: list) -> None:
    """Raise the first failure, naming its node; the run's events travel on the error."""
    if failure is not None:
        t, exc = failure
        error = NodeFailed(f"graph node {job.name_of(t)} failed: {exc}")
        error.events = events
        raise error from exc
