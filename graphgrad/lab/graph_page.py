"""The graph page: type an expression or pick a seed's graph, step it forward and backward node
by node on the real :class:`StepExecutor`, and run it on the real :class:`ThreadPoolExecutor`
to replay its event log."""

from __future__ import annotations

import re
import threading

import numpy as np
from starlette.routing import Route

from ..autograd.grad_mode import no_grad
from ..graph import NodeFailed, NodeState, StepExecutor, ThreadPoolExecutor, examples
from ..graph.explain import explain
from ..graph.expr import ExprError
from ..graph.from_text import graph_from_expression
from ..graph.render import to_svg
from .limits import LIMITS, LabError, bad, choice, integer, number, text
from .page import Page
from .sessions import Session, Sessions, plain, short
from .web import answer, in_thread, read_json

EXAMPLES = {
    "001": {"title": "Seed 001: z = (x * w) + b", "expr": "z = x*w + b",
            "at": {"x": 2.0, "w": 3.0, "b": 1.0}},
    "003": {"title": "Seed 003: branch and merge, J = (p - y)^2 + lambda/2 (a^2 + c^2)",
            "expr": "", "at": {"x": 2.0, "y": 1.0, "a": 1.0, "b": 0.0, "c": 1.0, "d": 0.0,
                               "lam": 0.1}},
    "004": {"title": "Seed 004: tanh(ln(1 + z*2x / sin y))",
            "expr": "tanh(log(1 + z*2*x/sin(y)))", "at": {"x": 1.0, "y": 2.0, "z": 3.0}},
    "wide": {"title": "A wide graph: 4 branches of 3 matmuls of 160x160, summed (for the "
                      "thread pool)", "expr": "", "at": {}},
}
_NAMED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")  # "z = x*w + b"
WIDE_SIZE = 160
MAX_VALUES = 50
INLINE_STEPS = 4  # requests for at most this many steps run on the event loop itself

graph_sessions = Sessions("graph", LIMITS.graph_sessions)


def build(data: dict):
    """The graph, its input values and a title, from ``{"example": ...}`` or
    ``{"expr": ..., "at": {name: number}}``."""
    if not isinstance(data, dict):
        raise bad("expected a JSON object")
    at = data.get("at", {})
    if not isinstance(at, dict) or len(at) > MAX_VALUES:
        raise bad(f"at: an object of at most {MAX_VALUES} variable values")
    values = {str(k): number(at, k) for k in at}
    example = data.get("example") or ""
    if example:
        choice(data, "example", "", EXAMPLES)
        if example == "003":
            return _branch_and_merge(values)
        if example == "wide":
            return _wide()
        data = {"expr": EXAMPLES[example]["expr"]}
        values = {**EXAMPLES[example]["at"], **values}
    graph, title = _expression(text(data, "expr", limit=LIMITS.expression_chars), values)
    return graph, None, title


def _expression(source: str, values: dict):
    name, body = "f", source
    if match := _NAMED.match(source):
        name, body = match.group(1), source[match.end():]
    try:
        graph = graph_from_expression(body, values)
    except ExprError as exc:
        raise LabError(400, f"expr: {exc.message}") from None
    except ValueError as exc:  # a variable without a value
        raise bad(f"at: {exc}".replace(" with --at", "")) from None
    if len(graph.nodes) > LIMITS.nodes:
        raise LabError(413, f"expr: the graph has {len(graph.nodes)} nodes, the limit is "
                       f"{LIMITS.nodes}")
    output = graph.nodes[graph.outputs[0]]
    if output.kind == "op":
        output.name = name
    return graph, source.strip()


def _branch_and_merge(values: dict):
    known = {"x", "y", "a", "b", "c", "d", "lam"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise bad(f"at: seed 003 has no variable {unknown[0]!r}; it takes {', '.join(known)}")
    v = {**EXAMPLES["003"]["at"], **values}
    graph = examples.branch_and_merge(v["a"], v["b"], v["c"], v["d"], v["lam"])
    return graph, {"x": v["x"], "y": v["y"]}, EXAMPLES["003"]["title"]


def _wide():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((WIDE_SIZE, WIDE_SIZE)) / np.sqrt(WIDE_SIZE)).astype(np.float32)
    graph = examples.wide_graph(branches=4, depth=3, size=WIDE_SIZE)
    return graph, {"x": x}, EXAMPLES["wide"]["title"]


class _Deferred:
    """An executor that hands the run's job to a StepExecutor and returns at once, so that the
    run proceeds one state change per :meth:`step` (the events list fills in as it goes)."""

    name = "step"

    def __init__(self) -> None:
        self.stepper, self.job = StepExecutor(), None

    def run(self, job):
        self.job = job
        self.stepper.start(job)
        return self.stepper.events

    def step(self):
        with no_grad(), np.errstate(all="ignore"):
            return self.stepper.step()

    def counts(self) -> dict:
        states = self.job.scheduler.state.values()
        active = sum(s is NodeState.RUNNING for s in states)
        done = sum(s in (NodeState.DONE, NodeState.FAILED, NodeState.SKIPPED) for s in states)
        return {"waiting": len(states) - active - done, "active": active, "completed": done}

    def states(self) -> dict:
        return {t: s.value for t, s in self.job.scheduler.state.items()}


class GraphSession(Session):
    """One graph stepped by one page: the forward pass, then the backward pass."""

    def __init__(self, graph, inputs, title: str, lr: float) -> None:
        super().__init__()
        self.graph, self.inputs, self.title, self.lr = graph, inputs, title, lr
        with np.errstate(all="ignore"):
            try:
                self.explanation = explain(graph, inputs, lr=lr)
            except NodeFailed as exc:
                raise LabError(422, str(exc)) from None
        final = self.explanation.run
        values = {i: v.detach().numpy() for i, v in final.values.items()}
        # Drawn with the final values and gradients, so that the layout leaves room for both
        # lines; the page hides each line until stepping reaches it and writes the stepped value.
        self.svg = to_svg(graph.to_dict(values=False), values=values, grads=final.grads)
        self.reset()

    def reset(self) -> None:
        self.phase, self.forward = "forward", _Deferred()
        self.run = self.graph.run(self.inputs, executor=self.forward)
        self.backward = None

    def describe(self) -> dict:
        users = self.graph.consumers()
        return {
            "title": self.title, "svg": self.svg, "explain_html": self.explanation.to_html(),
            "lr": self.lr,
            "nodes": [{"id": n.id, "label": _label(self.explanation, n.id), "kind": n.kind,
                       "inputs": list(n.inputs), "users": users[n.id]} for n in self.graph.nodes],
            "levels": self.graph.levels(),
            "backward_nodes": [r["id"] for r in self.explanation.backward],
        }

    def step(self) -> dict:
        """One state change; the next phase is set up as soon as a phase's last node is done,
        so that :attr:`phase` always names what the next step will do."""
        if self.phase == "done":
            return {"phase": "done", "node": None, "state": None,
                    "update": plain(self.explanation.update), "lr": self.lr}
        executor = self.forward if self.phase == "forward" else self.backward
        answer = self._answer(executor.step(), executor)
        if executor.job.scheduler.finished():
            self._next_phase()
        return answer

    def _next_phase(self) -> None:
        if self.phase == "forward":
            self.phase, self.backward = "backward", _Deferred()
            with no_grad():
                self.run.backward(executor=self.backward, accumulate=False)
            if not self.backward.job.scheduler.finished():
                return
        self.phase = "done"

    def _answer(self, change, executor: _Deferred) -> dict:
        t, state = change
        answer = {"phase": self.phase, "node": t, "state": state,
                  "name": _label(self.explanation, t), "counts": executor.counts(),
                  "states": executor.states()}
        if state == "done" and self.phase == "forward":
            answer["value"] = short(self.run.values[t])
        if state == "done" and self.phase == "backward":
            grad = self.run.grads.get(t)
            answer["grad"] = None if grad is None else short(grad)
        return answer


def _label(explanation, node_id: int) -> str:
    for row in explanation.forward:
        if row["id"] == node_id:
            return row["name"]
    return f"#{node_id}"


async def examples_list(request):

    return answer({"examples": [{"id": k, **v} for k, v in EXAMPLES.items()],
                   "limits": {"expression_chars": LIMITS.expression_chars,
                              "nodes": LIMITS.nodes, "workers": LIMITS.workers}})


async def open_session(request):

    data = await read_json(request)
    lr = number(data, "lr", 0.1, low=0, high=100)

    def make():
        graph, inputs, title = build(data)
        return GraphSession(graph, inputs, title, lr)

    session = await in_thread(make)
    key = graph_sessions.add(session)
    return answer({"session": key, **session.describe()}, status=201)


async def step_session(request):

    session = graph_sessions.get(request.path_params["key"])
    data = await read_json(request)
    count = integer(data, "count", 1, low=1, high=LIMITS.steps_per_request)
    within = choice(data, "phase", "any", ("any", "forward", "backward"))

    def steps():
        with session.lock:
            changes = []
            for _ in range(count):
                if within != "any" and session.phase != within:
                    break
                changes.append(session.step())
                if changes[-1]["phase"] == "done":
                    break
            return changes

    try:  # a few steps cost less than the hop to a worker thread
        changes = steps() if count <= INLINE_STEPS else await in_thread(steps)
    except NodeFailed as exc:
        raise LabError(422, str(exc)) from None
    return answer({"changes": changes, "phase": session.phase})


async def reset_session(request):

    session = graph_sessions.get(request.path_params["key"])

    def reset():
        with session.lock:
            session.reset()

    await in_thread(reset)
    return answer({"phase": session.phase})


async def close_session(request):

    graph_sessions.remove(request.path_params["key"])
    return answer({"closed": True})


_thread_slots = threading.BoundedSemaphore(LIMITS.thread_runs)


async def thread_run(request):
    """Forward and backward on a ThreadPoolExecutor; every node goes to a worker (min_cost 0),
    so the log shows which nodes ran side by side."""
    data = await read_json(request)
    workers = integer(data, "workers", 2, low=1, high=LIMITS.workers)
    graph, inputs, title = build(data)
    if not _thread_slots.acquire(blocking=False):
        raise LabError(429, f"{LIMITS.thread_runs} thread-pool runs are in progress; try again")

    def run():
        pool = ThreadPoolExecutor(workers=workers, min_cost=0)
        try:
            with np.errstate(all="ignore"):
                return graph.run(inputs, executor=pool, backward=True)
        finally:
            pool.close()

    try:
        result = await in_thread(run)
    except NodeFailed as exc:
        raise LabError(422, str(exc)) from None
    finally:
        _thread_slots.release()
    events = [dict(e.as_dict(), phase="forward") for e in result.events]
    events += [dict(e.as_dict(), phase="backward") for e in result.backward_events]
    return answer({"title": title, "workers": workers, "events": events,
                   "wall": max((e["end"] for e in events), default=0.0)})


PAGE = Page(
    slug="graph", title="Graph",
    summary="Type an expression or pick a seed's graph; step it forward and backward node by "
            "node, and replay a real thread-pool run.",
    routes=[
        Route("/api/graph/examples", examples_list, methods=["GET"]),
        Route("/api/graph/sessions", open_session, methods=["POST"]),
        Route("/api/graph/sessions/{key}/step", step_session, methods=["POST"]),
        Route("/api/graph/sessions/{key}/reset", reset_session, methods=["POST"]),
        Route("/api/graph/sessions/{key}", close_session, methods=["DELETE"]),
        Route("/api/graph/threads", thread_run, methods=["POST"]),
    ],
    close=graph_sessions.close_all,
)
