"""The Graph: a recorded computation as plain data.

Nodes are inputs, parameters, constants and operations; an operation node names a primitive from
``graphgrad.ops`` and lists the ids of its inputs. Executors, explain, the renderers and the JSON
form all read this one structure. A graph is built node by node (as the seed examples do), captured
by tracing a function, or read off the ``grad_fn`` chain of eager results (``capture.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from .. import _dtype
from ..creation import tensor as _tensor
from ..ops import OPS
from ..tensor import Tensor, _op_error

KINDS = ("input", "parameter", "constant", "op")
FORMAT = "graphgrad.graph/1"

# Graph.to_torch and Graph.from_torch are written in graphgrad.interop, a higher layer (it builds
# on nn as well), which puts them here when graphgrad is imported.
TORCH_BRIDGE: dict = {}


class GraphError(ValueError):
    """A graph that cannot be built or run: a cycle, a dangling input, mismatched shapes."""


@dataclass
class GraphNode:
    """One node; ``value`` holds the tensor of a parameter or constant (inputs get one per run)."""

    id: int
    kind: str
    name: str = ""
    op: str | None = None
    inputs: tuple = ()
    params: tuple = ()
    value: Tensor | None = None
    shape: tuple | None = None  # None when unknown (an input declared without a shape)
    dtype: str | None = None

    @property
    def label(self) -> str:
        return self.name or (self.op if self.kind == "op" else f"#{self.id}")


@dataclass
class Graph:
    """A computational graph that a person can build, run, differentiate, explain and draw.

    >>> import graphgrad as gg
    >>> g = gg.Graph()
    >>> x, w, b = g.input("x"), g.parameter("w", 3.0), g.parameter("b", 1.0)
    >>> z = g.output(x * w + b, name="z")
    >>> g.run({"x": 2.0}).output.item()
    7.0
    """

    nodes: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    _costs: dict = field(default_factory=dict, repr=False, compare=False)  # see execute.py

    # ------------------------------------------------------------------ building
    def _add(self, kind: str, **fields) -> Ref:
        node = GraphNode(id=len(self.nodes), kind=kind, **fields)
        self.nodes.append(node)
        return Ref(self, node.id)

    def input(self, name: str, shape=None, dtype="float32") -> Ref:
        """A value given at each run, by name (or by position, in order of creation)."""
        self._check_new_name(name)
        return self._add(
            "input",
            name=name,
            shape=None if shape is None else tuple(shape),
            dtype=str(np.dtype(_dtype.to_numpy_dtype(dtype))),
        )

    def parameter(self, name: str, value, dtype=None) -> Ref:
        """A value the graph owns and training changes; its gradient is what a fit needs."""
        self._check_new_name(name)
        t = value if isinstance(value, Tensor) else _tensor(value, dtype=dtype)
        if not t.is_floating_point():
            t = t.float()
        t.requires_grad_(True)
        return self._add("parameter", name=name, value=t, shape=tuple(t.shape), dtype=t.dtype.name)

    def constant(self, value, name: str = "", dtype=None) -> Ref:
        t = value if isinstance(value, Tensor) else _tensor(value, dtype=dtype)
        return self._add(
            "constant", name=name or _short(t), value=t, shape=tuple(t.shape), dtype=t.dtype.name
        )

    def op(self, op: str, *inputs, params: tuple = (), name: str = "") -> Ref:
        """An operation node applying primitive ``op`` to ``inputs`` (refs, ids or numbers)."""
        if op not in OPS:
            raise GraphError(f"unknown op {op!r}; registered ops: {', '.join(sorted(OPS))}")
        ids = tuple(self._id_of(x) for x in inputs)
        shape, dtype = self._infer(op, ids, tuple(params))
        return self._add(
            "op", name=name, op=op, inputs=ids, params=tuple(params), shape=shape, dtype=dtype
        )

    def output(self, ref, name: str = "") -> Ref:
        """Mark a node as an output of the graph (a run returns outputs in this order)."""
        node_id = self._id_of(ref)
        if name:
            self.nodes[node_id].name = name
        self.outputs.append(node_id)
        return Ref(self, node_id)

    def _id_of(self, x, ints_are_ids: bool = False) -> int:
        """A node id for a Ref; anything else (a number, an array) becomes a constant node."""
        if isinstance(x, Ref):
            if x.graph is not self:
                raise GraphError(f"node #{x.id} belongs to another graph")
            return x.id
        if ints_are_ids and isinstance(x, int):
            return x
        return self.constant(x).id

    def _check_new_name(self, name: str) -> None:
        if not name:
            raise GraphError("inputs and parameters need a name")
        if any(n.name == name and n.kind in ("input", "parameter") for n in self.nodes):
            raise GraphError(f"the graph already has an input or parameter named {name!r}")

    def _infer(self, op: str, ids: tuple, params: tuple):
        """Shape and dtype of a new op node, checked at build time when input shapes are known."""
        for i in ids:
            if not 0 <= i < len(self.nodes):
                raise GraphError(f"{op}: input #{i} is not a node of this graph (dangling input)")
        inputs = [self.nodes[i] for i in ids]
        if any(n.shape is None for n in inputs):
            return None, None
        probes = [np.zeros(n.shape, dtype=n.dtype) for n in inputs]
        if sum(p.size for p in probes) > 1_000_000:
            return None, None  # too big to probe for free; checked when it runs
        try:
            with np.errstate(all="ignore"):
                out = OPS[op].forward(*probes, *params)
        except Exception as exc:
            raise GraphError(str(_op_error(OPS[op], probes, params, exc))) from None
        out = np.asarray(out)
        return tuple(out.shape), str(out.dtype)

    # convenience builders for the seeds' node kinds
    def add(self, a, b, name=""):
        return self.op("add", a, b, name=name)

    def sub(self, a, b, name=""):
        return self.op("sub", a, b, name=name)

    def mul(self, a, b, name=""):
        return self.op("mul", a, b, name=name)

    def div(self, a, b, name=""):
        return self.op("div", a, b, name=name)

    def pow(self, a, exponent, name=""):
        if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
            return self.op("pow_scalar", a, params=(exponent,), name=name)
        return self.op("pow", a, exponent, name=name)

    def neg(self, a, name=""):
        return self.op("neg", a, name=name)

    def matmul(self, a, b, name=""):
        return self.op("matmul", a, b, name=name)

    def sum(self, a, dim=None, keepdim=False, name=""):
        return self.op("sum", a, params=(_axes(dim), keepdim), name=name)

    def mean(self, a, dim=None, keepdim=False, name=""):
        return self.op("mean", a, params=(_axes(dim), keepdim), name=name)

    # ------------------------------------------------------------------ reading
    def by_kind(self, kind: str) -> list[GraphNode]:
        return [n for n in self.nodes if n.kind == kind]

    @property
    def inputs(self) -> list[GraphNode]:
        return self.by_kind("input")

    @property
    def parameters(self) -> list[GraphNode]:
        return self.by_kind("parameter")

    @property
    def constants(self) -> list[GraphNode]:
        return self.by_kind("constant")

    @property
    def operations(self) -> list[GraphNode]:
        return self.by_kind("op")

    def node(self, key) -> GraphNode:
        """A node by id, by name, or from a Ref."""
        if isinstance(key, Ref):
            return self.nodes[key.id]
        if isinstance(key, str):
            for n in self.nodes:
                if n.name == key:
                    return n
            raise KeyError(f"no node named {key!r}")
        return self.nodes[key]

    def consumers(self) -> list[list[int]]:
        """For each node, the ids of the nodes that use it, in increasing id order."""
        users: list[list[int]] = [[] for _ in self.nodes]
        for n in self.nodes:
            for i in n.inputs:
                if n.id not in users[i]:
                    users[i].append(n.id)
        return users

    def topological_order(self) -> list[int]:
        """Node ids in post-order from the outputs (inputs before their users): the order a
        forward pass runs in. Iterative, so any depth works; a cycle raises GraphError."""
        self.check_acyclic()
        roots = self.outputs or [n.id for n in self.nodes]
        order, state = [], [0] * len(self.nodes)  # 0 unseen, 1 on the stack, 2 emitted
        for root in roots:
            stack = [(root, 0)]
            while stack:
                node_id, next_input = stack.pop()
                inputs = self.nodes[node_id].inputs
                if state[node_id] == 2:
                    continue
                state[node_id] = 1
                if next_input < len(inputs):
                    stack.append((node_id, next_input + 1))
                    child = inputs[next_input]
                    if state[child] == 0:
                        stack.append((child, 0))
                else:
                    state[node_id] = 2
                    order.append(node_id)
        return order

    def levels(self) -> list[list[int]]:
        """Sets of nodes that can run at the same time: level k holds the nodes whose longest
        path from a source has k edges."""
        depth: dict[int, int] = {}
        for node_id in self.topological_order():
            inputs = self.nodes[node_id].inputs
            depth[node_id] = 1 + max((depth[i] for i in inputs), default=-1)
        grouped: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for node_id in sorted(depth):
            grouped[depth[node_id]].append(node_id)
        return grouped

    def check_acyclic(self) -> None:
        """Raise GraphError naming the nodes on a cycle, if edges wired by hand made one."""
        for n in self.nodes:
            for i in n.inputs:
                if not 0 <= i < len(self.nodes):
                    raise GraphError(f"node {n.label!r} (#{n.id}) has a dangling input #{i}")
        indegree = [len(set(n.inputs)) for n in self.nodes]
        users = self.consumers()
        ready = [n.id for n in self.nodes if indegree[n.id] == 0]
        seen = 0
        while ready:
            node_id = ready.pop()
            seen += 1
            for user in users[node_id]:
                indegree[user] -= 1
                if indegree[user] == 0:
                    ready.append(user)
        if seen != len(self.nodes):
            raise GraphError(f"the graph has a cycle: {' -> '.join(self._a_cycle(indegree))}")

    def _a_cycle(self, indegree: list[int]) -> list[str]:
        """One cycle among the nodes Kahn's algorithm could not order, as labels."""
        stuck = {i for i, d in enumerate(indegree) if d > 0}
        start = min(stuck)
        path, position, node_id = [], {}, start
        while node_id not in position:  # walk inputs that are also stuck: must come back round
            position[node_id] = len(path)
            path.append(node_id)
            node_id = next(i for i in self.nodes[node_id].inputs if i in stuck)
        cycle = path[position[node_id] :] + [node_id]
        return [f"{self.nodes[i].label} (#{i})" for i in reversed(cycle)]

    def set_inputs(self, ref, *inputs) -> None:
        """Rewire a node's inputs by hand; the graph checks for cycles before it runs."""
        node_id = self._id_of(ref, ints_are_ids=True)
        self.nodes[node_id].inputs = tuple(self._id_of(x, ints_are_ids=True) for x in inputs)

    # ------------------------------------------------------------------ running
    def run(self, inputs=None, *, executor=None, backward: bool = False, grad_outputs=None):
        """Evaluate the graph on new input values (by name, or a list in input order) without
        re-running any Python code; with ``backward=True`` also differentiate the outputs."""
        from .execute import run_graph

        return run_graph(
            self, inputs, executor=executor, backward=backward, grad_outputs=grad_outputs
        )

    def compile(self, *, backward: bool = False):
        """The graph as a compiled function of its inputs (see :func:`graphgrad.compile`):
        tensors in, output tensor(s) out, replayed from a record after the first calls. With
        ``backward=True`` each call also runs ``backward()`` on the (scalar) output, so the
        parameters' ``.grad`` accumulate as after ``loss.backward()``.

        >>> import graphgrad as gg
        >>> g = gg.Graph()
        >>> _ = g.output(g.input("x") * 2, name="y")
        >>> double = g.compile()
        >>> [double(gg.tensor([float(i)])).item() for i in range(3)]
        [0.0, 2.0, 4.0]
        """
        from ..compiler import compile

        def run(*inputs):
            outputs = self(*inputs)
            if backward:
                (outputs[0] if isinstance(outputs, tuple) else outputs).backward()
            return outputs

        return compile(run)

    def explain(self, inputs=None, *, lr: float | None = None):
        """The step-by-step table of a forward and backward pass (see explain.py)."""
        from .explain import explain

        return explain(self, inputs, lr=lr)

    def to_torch(self):
        """This graph as a ``torch.fx.GraphModule`` (needs torch): one torch call per op node,
        the parameters as ``nn.Parameter``s, the inputs as its arguments in order; it runs on
        any torch device and under ``torch.compile`` (see graphgrad.interop.to_fx)."""
        return TORCH_BRIDGE["to_torch"](self)

    @classmethod
    def from_torch(cls, module, *example_inputs) -> Graph:
        """A torch model read through ``torch.fx`` as a Graph, its parameters named by its state
        dict, so that explain, the pictures and the executors work on it (needs torch; see
        graphgrad.interop.from_fx)."""
        return TORCH_BRIDGE["from_torch"](module, *example_inputs)

    def _repr_svg_(self) -> str:
        """The graph's picture (render.to_svg), which Jupyter shows for a Graph.

        >>> import graphgrad as gg
        >>> g = gg.Graph()
        >>> _ = g.output(g.input("x") * 2, name="y")
        >>> g._repr_svg_().count('class="node"')
        3
        """
        from .render import to_svg

        return to_svg(self.to_dict(values=False))

    def __call__(self, *inputs):
        """Run like the function it was traced from: tensors in, output tensor(s) out."""
        outputs = self.run(list(inputs)).outputs
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    @classmethod
    def from_outputs(cls, *tensors, inputs=None, names=None) -> Graph:
        """The graph behind eager results, read off their ``grad_fn`` chains (see capture.py)."""
        from .capture import from_outputs  # capture builds on this module

        return from_outputs(*tensors, inputs=inputs, names=names)

    # ------------------------------------------------------------------ plain data
    def to_dict(self, values: bool = True) -> dict:
        nodes = []
        for n in self.nodes:
            entry = {
                "id": n.id,
                "kind": n.kind,
                "name": n.name,
                "op": n.op,
                "inputs": list(n.inputs),
                "params": [_encode(p) for p in n.params],
                "shape": None if n.shape is None else list(n.shape),
                "dtype": n.dtype,
            }
            if values and n.value is not None:
                entry["value"] = n.value.detach().numpy().tolist()
            nodes.append(entry)
        return {"format": FORMAT, "nodes": nodes, "outputs": list(self.outputs)}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict) -> Graph:
        if data.get("format") != FORMAT:
            raise GraphError(
                f"not a graphgrad graph: format is {data.get('format')!r}, expected {FORMAT!r}"
            )
        g = cls()
        for i, entry in enumerate(data["nodes"]):
            if entry["id"] != i:
                raise GraphError(
                    f"node ids must be 0, 1, 2, ... in order; entry {i} has id {entry['id']}"
                )
            if entry["kind"] not in KINDS:
                raise GraphError(
                    f"node #{i} has unknown kind {entry['kind']!r}; expected one of {KINDS}"
                )
            if entry["kind"] == "op" and entry["op"] not in OPS:
                raise GraphError(f"node #{i} uses unknown op {entry['op']!r}")
            value = entry.get("value")
            g.nodes.append(
                GraphNode(
                    id=i,
                    kind=entry["kind"],
                    name=entry.get("name", ""),
                    op=entry.get("op"),
                    inputs=tuple(entry.get("inputs", ())),
                    params=tuple(_decode(p) for p in entry.get("params", ())),
                    value=None
                    if value is None
                    else _tensor(
                        value, dtype=entry["dtype"], requires_grad=entry["kind"] == "parameter"
                    ),
                    shape=None if entry.get("shape") is None else tuple(entry["shape"]),
                    dtype=entry.get("dtype"),
                )
            )
        g.outputs = list(data.get("outputs", ()))
        g.check_acyclic()
        return g

    @classmethod
    def from_json(cls, text: str) -> Graph:
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self.by_kind(k))} {k}s" for k in KINDS)
        return f"Graph({len(self.nodes)} nodes: {counts}; outputs {self.outputs})"


class Ref:
    """A handle on a node while building: arithmetic on refs adds operation nodes.

    >>> import graphgrad as gg
    >>> g = gg.Graph()
    >>> x = g.input("x")
    >>> (x * 2 + 1).node.op
    'add'
    """

    __slots__ = ("graph", "id")
    __array_ufunc__ = None

    def __init__(self, graph: Graph, node_id: int) -> None:
        self.graph = graph
        self.id = node_id

    @property
    def node(self) -> GraphNode:
        return self.graph.nodes[self.id]

    def __repr__(self) -> str:
        return f"Ref(#{self.id} {self.node.label})"

    def _op(self, name, *inputs, **kwargs):
        return self.graph.op(name, *inputs, **kwargs)

    def __add__(self, other):
        return self._op("add", self, other)

    def __radd__(self, other):
        return self._op("add", other, self)

    def __sub__(self, other):
        return self._op("sub", self, other)

    def __rsub__(self, other):
        return self._op("sub", other, self)

    def __mul__(self, other):
        return self._op("mul", self, other)

    def __rmul__(self, other):
        return self._op("mul", other, self)

    def __truediv__(self, other):
        return self._op("div", self, other)

    def __rtruediv__(self, other):
        return self._op("div", other, self)

    def __pow__(self, exponent):
        return self.graph.pow(self, exponent)

    def __neg__(self):
        return self._op("neg", self)

    def __matmul__(self, other):
        return self._op("matmul", self, other)

    def __getattr__(self, name: str):
        # x.exp(), x.tanh(), ...: any one-input primitive, named like the tensor method.
        if name in OPS and not name.startswith("_"):
            return lambda **kwargs: self._op(name, self, **kwargs)
        raise AttributeError(f"a graph node has no operation {name!r}")

    def sum(self, dim=None, keepdim=False):
        return self.graph.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return self.graph.mean(self, dim, keepdim)


def _axes(dim):
    if dim is None:
        return None
    return (dim,) if isinstance(dim, int) else tuple(dim)


def _short(t: Tensor) -> str:
    return f"{t.item():g}" if t.numel() == 1 else f"const{tuple(t.shape)}"


def _encode(p):
    """Op parameters as JSON: arrays, dtypes, slices and Ellipsis get tagged objects."""
    if isinstance(p, np.ndarray):
        return {"array": p.tolist(), "dtype": str(p.dtype)}
    if isinstance(p, np.dtype):
        return {"dtype": str(p)}
    if isinstance(p, slice):
        return {"slice": [p.start, p.stop, p.step]}
    if p is Ellipsis:
        return {"ellipsis": True}
    if isinstance(p, tuple):
        return {"tuple": [_encode(x) for x in p]}
    if isinstance(p, np.generic):
        return p.item()
    return p


def _decode(p):
    if isinstance(p, dict):
        if "array" in p:
            return np.asarray(p["array"], dtype=p["dtype"])
        if "slice" in p:
            return slice(*p["slice"])
        if "ellipsis" in p:
            return Ellipsis
        if "tuple" in p:
            return tuple(_decode(x) for x in p["tuple"])
        if "dtype" in p:
            return np.dtype(p["dtype"])
    if isinstance(p, list):
        return tuple(_decode(x) for x in p)
    return p
