"""Running a Graph: forward by post-order, backward by reverse-mode, on any executor.

Forward calls each node's primitive through ``tensor.apply``, so a replayed output is an ordinary
tensor: eager ``backward()`` works on it. ``GraphRun.backward`` instead differentiates on the
graph itself, node by node on the executor, with the primitives' vjps; gradients that meet at a
node are summed in increasing consumer id, so every executor gives the same bits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .. import _state
from ..autograd.grad_mode import set_grad_enabled
from ..creation import tensor as _tensor
from ..engine import GRAD_DTYPES
from ..ops import OPS, numpy_ns
from ..ops.numpy_ns import VjpContext
from ..tensor import Tensor, apply
from .core import Graph, GraphError
from .schedule import Event, Job, Scheduler, SerialExecutor


@dataclass
class GraphRun:
    """The values of one forward pass (and, after :meth:`backward`, the gradients)."""

    graph: Graph
    values: dict = field(default_factory=dict)  # node id -> Tensor
    events: list = field(default_factory=list)  # forward Events
    grads: dict | None = None  # node id -> array: d(outputs . grad_outputs) / d(node)
    contributions: dict | None = None  # (consumer, position, input) -> gradient sent along edge
    backward_events: list = field(default_factory=list)
    origin: float = field(default_factory=time.perf_counter)  # time 0 of every event

    @property
    def outputs(self) -> list[Tensor]:
        return [self.values[i] for i in self.graph.outputs]

    @property
    def output(self) -> Tensor:
        return self.outputs[0]

    def value(self, key) -> Tensor:
        return self.values[self.graph.node(key).id]

    def grad(self, key):
        if self.grads is None:
            raise RuntimeError("no gradients yet: call run.backward() or run(..., backward=True)")
        return self.grads.get(self.graph.node(key).id)

    def backward(self, grad_outputs=None, *, executor=None, accumulate: bool = True) -> GraphRun:
        """Differentiate the outputs on the graph; with ``accumulate`` the parameters' ``.grad``
        receive their gradients, as after ``loss.backward()``."""
        _backward(self, grad_outputs, executor or SerialExecutor())
        if accumulate:
            for node in self.graph.parameters:
                g = self.grads.get(node.id)
                if g is not None:
                    param = node.value
                    param.grad = _tensor(g) if param.grad is None else param.grad + _tensor(g)
        return self


def run_graph(graph: Graph, inputs, *, executor=None, backward=False, grad_outputs=None):
    values = _bind_inputs(graph, inputs)
    order = graph.topological_order()
    run = GraphRun(graph)
    parents = {t: list(graph.nodes[t].inputs) for t in order}

    def work(t):
        node = graph.nodes[t]
        if node.kind == "input":
            return values[t]
        if node.kind != "op":
            return node.value
        return apply(OPS[node.op], tuple(run.values[i] for i in node.inputs), node.params)

    def finish(t, value):
        run.values[t] = value

    job = Job(
        Scheduler(order, parents),
        work,
        finish,
        lambda t: _name(graph, t),
        lambda t: _forward_cost(graph, run, t),
        run.origin,
    )
    # Differentiated on the graph itself: the forward pass need not record for autograd too.
    with set_grad_enabled(_state.state.grad_enabled and not backward):
        run.events = (executor or SerialExecutor()).run(job)
    if backward:
        run.backward(grad_outputs, executor=executor)
    return run


def _bind_inputs(graph: Graph, inputs) -> dict[int, Tensor]:
    """Input values by node id, from a dict by name or a list in input order."""
    declared = graph.inputs
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        inputs = list(inputs)
        if len(inputs) != len(declared):
            raise GraphError(
                f"the graph takes {len(declared)} inputs "
                f"({', '.join(n.name for n in declared)}), got {len(inputs)}"
            )
        inputs = {n.name: v for n, v in zip(declared, inputs)}
    unknown = set(inputs) - {n.name for n in declared}
    if unknown:
        raise GraphError(
            f"unknown input {sorted(unknown)[0]!r}; the graph's inputs are "
            f"{', '.join(n.name for n in declared) or 'none'}"
        )
    bound = {}
    for node in declared:
        if node.name not in inputs:
            raise GraphError(f"missing a value for input {node.name!r}")
        value = inputs[node.name]
        t = value if isinstance(value, Tensor) else _tensor(value, dtype=node.dtype)
        if node.shape is not None and tuple(t.shape) != node.shape:
            raise GraphError(
                f"input {node.name!r} has shape {tuple(t.shape)}; the graph was "
                f"built for {node.shape}"
            )
        bound[node.id] = t
    return bound


def _requires(graph: Graph) -> list[bool]:
    """Which nodes gradients flow to: parameters, inputs and ops computed from them."""
    requires = [False] * len(graph.nodes)
    for t in graph.topological_order():
        node = graph.nodes[t]
        if node.kind in ("parameter", "input"):
            requires[t] = True
        elif node.kind == "op":
            requires[t] = _carries_gradient(node) and any(requires[i] for i in node.inputs)
    return requires


def _carries_gradient(node) -> bool:
    """torch's rule, as eager code applies it: only floating-point results carry gradients."""
    if node.dtype is None:  # built without shapes: the op's own flag is all there is to go on
        return OPS[node.op].differentiable
    return np.dtype(node.dtype) in GRAD_DTYPES


def _backward(run: GraphRun, grad_outputs, executor) -> None:
    graph = run.graph
    requires = _requires(graph)
    seeds = _seed_gradients(run, grad_outputs)
    tasks = [t for t in reversed(graph.topological_order()) if requires[t]]
    users = {t: [] for t in tasks}
    for t in tasks:
        for i in graph.nodes[t].inputs:
            if requires[i] and t not in users[i]:
                users[i].append(t)
    run.grads, run.contributions = {}, {}
    inbox: dict[int, list] = {t: [] for t in tasks}  # filled by finish() before t is ready

    def work(t):
        node = graph.nodes[t]
        incoming = sorted(inbox[t], key=lambda item: item[0])
        parts = ([seeds[t]] if t in seeds else []) + [g for _, g in incoming]
        if not parts:
            return None, []
        total = parts[0]
        for g in parts[1:]:
            total = total + g  # fixed order: the seed, then consumers by increasing id
        if node.kind != "op":
            return total, []
        return total, _vjp(graph, run, node, total, requires)

    def finish(t, result):
        total, sent = result
        if total is not None:
            run.grads[t] = total
        for key, g in sent:
            run.contributions[key] = g
            inbox[key[2]].append((key, g))

    job = Job(
        Scheduler(tasks, users),
        work,
        finish,
        lambda t: _name(graph, t),
        lambda t: 2 * _forward_cost(graph, run, t),
        run.origin,
    )
    run.backward_events = executor.run(job)


def _seed_gradients(run: GraphRun, grad_outputs) -> dict[int, np.ndarray]:
    outputs = run.graph.outputs
    if not outputs:
        raise GraphError("the graph has no outputs to differentiate: mark one with g.output()")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    seeds = {}
    for i, g in zip(outputs, grad_outputs):
        out = run.values[i]._data
        seed = np.ones_like(out) if g is None else np.asarray(getattr(g, "_data", g), out.dtype)
        if seed.shape != out.shape:
            raise GraphError(
                f"grad_outputs for {_name(run.graph, i)} has shape {seed.shape}, "
                f"the output has {out.shape}"
            )
        seeds[i] = seeds[i] + seed if i in seeds else seed
    return seeds


def _vjp(graph, run, node, g, requires) -> list:
    """The gradient the node sends to each input that needs one, fitted to that input."""
    arrays = operand_arrays(run, node)
    needs = tuple(requires[i] for i in node.inputs)
    ctx = VjpContext(node.params, run.values[node.id]._data, needs)
    grads = OPS[node.op].vjp(ctx, g, *arrays)
    sent = []
    for position, (i, x, gi) in enumerate(zip(node.inputs, arrays, grads)):
        if gi is None or not needs[position]:
            continue
        gi = numpy_ns.sum_to(np.asarray(gi), x.shape).astype(x.dtype, copy=False)
        sent.append(((node.id, position, i), gi))
    return sent


def operand_arrays(run: GraphRun, node) -> list:
    """The arrays of an op node's operands; None for an operand left out (conv's bias)."""
    return [None if run.values[i] is None else run.values[i]._data for i in node.inputs]


def _forward_cost(graph: Graph, run: GraphRun, t: int) -> int:
    """Elements a node touches (multiply-adds for a matmul): decides where it runs. Estimated
    on a node's first run and remembered, so the thread pool's choice costs a dict lookup."""
    cost = graph._costs.get(t)
    if cost is not None:
        return cost
    node = graph.nodes[t]
    arrays = operand_arrays(run, node) if node.kind == "op" else []
    if node.op == "matmul":
        a, b = arrays
        cost = a.size * (b.shape[-1] if b.ndim > 1 else 1)
    else:
        cost = sum(a.size for a in arrays if a is not None)
    graph._costs[t] = cost
    return cost


def _name(graph: Graph, t: int) -> str:
    node = graph.nodes[t]
    if node.kind == "op" and node.name:
        return f"'{node.name}' (#{t}, {node.op})"
    return f"{node.label} (#{t})"


__all__ = ["GraphRun", "run_graph", "Event"]
