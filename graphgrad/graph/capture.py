"""Capturing a Graph from eager code: by tracing a function once, or by walking ``grad_fn``.

Tracing records every primitive the function runs on this thread (differentiable or not), so the
graph replays comparisons and ``where`` too. What tracing cannot see is Python control flow: a
traced ``if`` is frozen at the branch the example inputs took. Indexing by a mask or index tensor
computed from the inputs is refused (it would be frozen too); fixed index tensors are constants.
Walking ``grad_fn`` sees only what autograd recorded: operations on tensors that require grad.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import _state
from ..ops import OPS, arrays_in
from ..tensor import Tensor
from .core import Graph, GraphError


class _Recorder:
    """Turns a stream of (op, inputs, params, output) into graph nodes, keyed by tensor identity."""

    def __init__(self, graph: Graph, names: dict | None) -> None:
        self.graph = graph
        self.node_of: dict[int, int] = {}  # id(tensor) -> node id
        self.keep_alive: list[Tensor] = []  # so no id() is reused while recording
        self.names = {id(t): name for name, t in (names or {}).items()}
        self.traced_arrays: set[int] = set()  # id() of arrays computed from the inputs

    def bind(self, t: Tensor, node_id: int, traced: bool = True) -> None:
        self.node_of[id(t)] = node_id
        self.keep_alive.append(t)
        if traced:
            self.traced_arrays.add(id(t._data))

    def node_for(self, x, seen=None) -> int:
        """The node of an operand: a recorded tensor, a new parameter or constant. A Python
        number becomes a constant of the dtype the op ``seen`` it in (``x / 8`` on float32 saw a
        float32 8): a 0-d int64 or float64 constant would widen the replay's result."""
        if isinstance(x, Tensor):
            known = self.node_of.get(id(x))
            if known is not None:
                return known
            name = self.names.get(id(x), "")
            if x.requires_grad and x.grad_fn is None:
                ref = self.graph._add(
                    "parameter",
                    name=name or f"param{len(self.graph.parameters)}",
                    value=x,
                    shape=tuple(x.shape),
                    dtype=x.dtype.name,
                )
            else:
                ref = self.graph.constant(x.detach(), name=name)
            self.bind(x, ref.id, traced=False)
            return ref.id
        if x is None:  # an operand left out (conv's bias, a loss's weight): replayed as None
            return self.graph._add("constant", name="None", value=None).id
        if isinstance(seen, np.ndarray) and not isinstance(x, np.ndarray):
            return self.graph.constant(seen).id
        return self.graph.constant(np.asarray(x) if isinstance(x, np.ndarray) else x).id

    def __call__(self, op, inputs, params, out: Tensor, arrays) -> None:
        # ``arrays`` (the operands as NumPy saw them) is unused: a node reads its operands' nodes
        if op.name not in OPS:
            raise GraphError(
                f"cannot capture {op.grad_fn_name}: only registered primitives can be replayed"
            )
        if any(id(a) in self.traced_arrays for a in arrays_in(params)):
            raise GraphError(
                f"trace: {op.name} is indexed by a tensor computed from the inputs (a mask or "
                f"index tensor); a traced graph would freeze it at the example's value. Use "
                f"where() or gather() with the index as an input instead."
            )
        operands = [a for a in arrays if isinstance(a, np.ndarray)]

        def as_seen(a):  # a Python number NumPy met weakly: the dtype it computed in
            if isinstance(a, (int, float)) and operands:
                return np.asarray(a, np.result_type(*operands, a))
            return a

        ids = tuple(self.node_for(x, as_seen(seen)) for x, seen in zip(inputs, arrays))
        ref = self.graph._add(
            "op",
            op=op.name,
            inputs=ids,
            params=tuple(params),
            shape=tuple(out.shape),
            dtype=out.dtype.name,
        )
        self.bind(out, ref.id)


def trace(fn, *example_inputs, names: dict | None = None) -> Graph:
    """Run ``fn(*example_inputs)`` once and record it as a Graph whose inputs are the arguments.

    Tensors the function uses that require grad (a model's weights) become parameters; other
    tensors and numbers become constants. ``names`` maps extra names to tensors.

    >>> import graphgrad as gg
    >>> g = gg.trace(lambda x, y: (x * y).sum(), gg.ones(3), gg.ones(3))
    >>> g(gg.tensor([1.0, 2.0, 3.0]), gg.tensor([4.0, 5.0, 6.0])).item()
    32.0
    """
    graph = Graph()
    recorder = _Recorder(graph, names)
    for name, x in zip(_argument_names(fn, len(example_inputs)), example_inputs):
        if not isinstance(x, Tensor):
            raise GraphError(
                f"trace: example input {name!r} must be a tensor, got {type(x).__name__}"
            )
        ref = graph._add("input", name=name, shape=tuple(x.shape), dtype=x.dtype.name)
        recorder.bind(x, ref.id)
    previous = _state.state.capture
    _state.state.capture = recorder
    try:
        result = fn(*example_inputs)
    finally:
        _state.state.capture = previous
    outputs = result if isinstance(result, (tuple, list)) else (result,)
    for out in outputs:
        if not isinstance(out, Tensor):
            raise GraphError(f"trace: the function must return tensors, got {type(out).__name__}")
        graph.outputs.append(recorder.node_for(out))
    return graph


def _argument_names(fn, count: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"x{i}" for i in range(count)]


def from_outputs(*tensors: Tensor, inputs: dict | None = None, names: dict | None = None) -> Graph:
    """The graph that produced ``tensors``, read off their ``grad_fn`` chains.

    Leaves that require grad become parameters (named by ``names``, a dict name -> tensor); leaves
    given in ``inputs`` (name -> tensor) become inputs; everything else becomes a constant.

    >>> import graphgrad as gg
    >>> w = gg.tensor(3.0, requires_grad=True)
    >>> g = gg.Graph.from_outputs(w * 2.0 + 1.0, names={"w": w})
    >>> [n.kind for n in g.nodes]
    ['parameter', 'constant', 'op', 'constant', 'op']
    """
    graph = Graph()
    recorder = _Recorder(graph, names)
    for name, x in (inputs or {}).items():
        ref = graph._add("input", name=name, shape=tuple(x.shape), dtype=x.dtype.name)
        recorder.bind(x, ref.id)
    for t in tensors:
        if t.grad_fn is None:
            raise GraphError(
                "from_outputs: a tensor has no grad_fn; only results of operations "
                "on tensors that require grad carry their graph"
            )
    node_of_fn: dict[int, int] = {}
    for fn, out in _functions_in_order(tensors):
        ids = tuple(
            node_of_fn[id(x.grad_fn)]
            if isinstance(x, Tensor) and x.grad_fn is not None and id(x.grad_fn) in node_of_fn
            else recorder.node_for(x)
            for x in fn.inputs
        )
        if fn.op.name not in OPS:
            raise GraphError(
                f"cannot capture {fn.name()}: only registered primitives can be replayed"
            )
        ref = graph._add(
            "op",
            op=fn.op.name,
            inputs=ids,
            params=tuple(fn.params),
            shape=None if out is None else tuple(out.shape),
            dtype=None if out is None else str(out.dtype),
        )
        node_of_fn[id(fn)] = ref.id
    graph.outputs = [node_of_fn[id(t.grad_fn)] for t in tensors]
    return graph


def _functions_in_order(tensors):
    """Every grad_fn reachable from ``tensors``, inputs before users (iterative post-order),
    each with its output array when still held (``fn.out``)."""
    order, state = [], {}
    for t in tensors:
        stack = [(t.grad_fn, 0)]
        while stack:
            fn, k = stack.pop()
            if state.get(id(fn)) == 2:
                continue
            state[id(fn)] = 1
            children = [
                x.grad_fn for x in fn.inputs if isinstance(x, Tensor) and x.grad_fn is not None
            ]
            if k < len(children):
                stack.append((fn, k + 1))
                if id(children[k]) not in state:
                    stack.append((children[k], 0))
            else:
                state[id(fn)] = 2
                order.append((fn, fn.out))
    return order
