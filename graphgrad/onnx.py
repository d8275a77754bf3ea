"""Exporting to ONNX (issue 14): :func:`export` writes a Module or a Graph as an ONNX model that
onnxruntime, or any other ONNX runtime, can run without graphgrad.

There is one code path: a Module is traced to a Graph (``graphgrad.trace``, in eval mode, so
dropout is the identity) and the Graph is written node by node, each primitive as one or a few ONNX
operators. Parameters and constants become initializers; the example inputs fix every shape and
dtype, so the model has static shapes. ``onnx`` is an optional extra (``pip install
graphgrad[onnx]``), imported only when :func:`export` runs.
"""

from __future__ import annotations

import inspect
import os

import numpy as np

from . import _state
from ._files import atomic_write
from .autograd.grad_mode import no_grad
from .creation import as_tensor
from .graph import Graph, trace
from .nn import Module
from .tensor import Tensor

DEFAULT_OPSET = 18  # ReduceMean and ReduceMax take their axes as an input from opset 18 on
MIN_OPSET = 13  # Softmax over one axis, ReduceSum's axes as an input, Unsqueeze's too


class OnnxExportError(ValueError):
    """A model or graph that cannot be written as ONNX, or arguments that do not fit it."""


class UnsupportedOperatorError(OnnxExportError):
    """The graph uses primitives that have no ONNX form here; the message lists every one."""


def export(
    model_or_graph,
    example_inputs,
    path,
    *,
    input_names=None,
    output_names=None,
    opset_version: int | None = DEFAULT_OPSET,
    **torch_options,
):
    """Write ``model_or_graph`` (a Module or a Graph) run on ``example_inputs`` (a tensor, or a
    tuple of them; for a Graph also a dict by input name, or None when its inputs declare their
    shapes) to ``path`` as an ONNX model, and return the ``onnx.ModelProto``. The file is
    written whole or not at all.

    ``torch.onnx.export``'s other options are taken too, so that a script run through
    ``graphgrad run-torch`` exports unchanged: those that change nothing here (``verbose``,
    ``dynamo``, ``do_constant_folding``...) at any value, the others (``dynamic_axes``,
    ``export_params``...) only at the value that matches what graphgrad writes.

    >>> import os, tempfile
    >>> import graphgrad as gg
    >>> model = gg.nn.Sequential(gg.nn.Linear(3, 2), gg.nn.ReLU())
    >>> path = os.path.join(tempfile.mkdtemp(), "mlp.onnx")
    >>> proto = export(model, gg.randn(4, 3), path, input_names=["x"])
    >>> [n.op_type for n in proto.graph.node], [i.name for i in proto.graph.initializer]
    (['Gemm', 'Relu'], ['0.weight', '0.bias'])
    """
    _check_torch_options(torch_options)
    opset_version = DEFAULT_OPSET if opset_version is None else opset_version  # torch's None
    if path is None:
        raise OnnxExportError("graphgrad.onnx.export: give the file to write (f); graphgrad "
                              "returns no in-memory ONNX program")
    onnx = _import_onnx()
    if not MIN_OPSET <= opset_version <= onnx.defs.onnx_opset_version():
        raise OnnxExportError(
            f"graphgrad.onnx.export: opset_version {opset_version} is not supported; choose one "
            f"from {MIN_OPSET} to {onnx.defs.onnx_opset_version()} (the installed onnx's newest)"
        )
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"graphgrad.onnx.export: cannot write {os.fspath(path)!r}: the directory {folder!r} "
            f"does not exist"
        )
    if isinstance(model_or_graph, Module):
        graph, inputs, default_names, where = _trace_module(model_or_graph, example_inputs)
        state_names = {name for name, _ in model_or_graph.named_buffers()}
    elif isinstance(model_or_graph, Graph):
        graph, default_names, where, state_names = model_or_graph, None, {}, set()
        inputs = _graph_inputs(graph, example_inputs)
    else:
        raise TypeError(
            f"graphgrad.onnx.export: expected a graphgrad.nn.Module or a graphgrad.Graph, got "
            f"{type(model_or_graph).__module__}.{type(model_or_graph).__name__}"
        )
    if not graph.outputs:
        raise OnnxExportError(
            "graphgrad.onnx.export: the graph has no outputs: mark one with g.output()"
        )
    _check_supported(graph, where)
    with no_grad(), np.errstate(all="ignore"):  # a run only to learn every node's shape and dtype
        values = {i: t._data for i, t in graph.run(inputs).values.items()
                  if t is not None}  # an operand left out (a conv's bias) has no value
    values.update(_unused_inputs(graph, inputs, values))
    buffers = {n.id: n.name for n in graph.constants if n.name in state_names}
    proto = _Builder(onnx, graph, values, _dtypes(graph, values), buffers, opset_version).model(
        _names("input", input_names, default_names or [n.name for n in graph.inputs]),
        _names("output", output_names, _default_output_names(graph)),
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise OnnxExportError(
            f"graphgrad.onnx.export: the model fails onnx's checker: {exc}"
        ) from exc
    with atomic_write(path) as out:
        out.write(proto.SerializeToString())
    return proto


# torch.onnx.export's options beyond graphgrad's: some change nothing in a static, constant-
# folded export made by tracing; the others are accepted at the one value that describes it.
_INERT_TORCH_OPTIONS = {"verbose", "dynamo", "optimize", "do_constant_folding", "external_data",
                        "report", "verify", "profile", "dump_exported_program", "artifacts_dir",
                        "autograd_inlining"}
_FIXED_TORCH_OPTIONS = {  # option -> (the value it must have, why)
    "export_params": (True, "the weights are always written as initializers"),
    "keep_initializers_as_inputs": (False, "initializers are never graph inputs"),
    "dynamic_axes": (None, "shapes are static: the example inputs fix them"),
    "dynamic_shapes": (None, "shapes are static: the example inputs fix them"),
    "kwargs": (None, "the model is called with positional example inputs only"),
    "custom_translation_table": (None, "every primitive has its one translation"),
    "custom_opsets": (None, "only the default ONNX domain is written"),
    "export_modules_as_functions": (False, "modules are inlined"),
}


def _check_torch_options(options: dict) -> None:
    for name, value in options.items():
        if name in _INERT_TORCH_OPTIONS:
            continue
        if name not in _FIXED_TORCH_OPTIONS:
            raise TypeError(f"graphgrad.onnx.export() got an unexpected keyword argument "
                            f"{name!r}")
        allowed, why = _FIXED_TORCH_OPTIONS[name]
        if value != allowed and not (allowed is None and not value):
            raise OnnxExportError(f"graphgrad.onnx.export: {name}={value!r} is not supported "
                                  f"({why}); leave it out or pass {allowed!r}")


def _import_onnx():
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError as exc:
        raise ImportError(
            "graphgrad.onnx.export needs the onnx package: pip install graphgrad[onnx]"
        ) from exc
    return onnx


# ---------------------------------------------------------------------- what is exported
def _trace_module(model: Module, example_inputs):
    """The model's Graph, traced in eval mode (its modes are restored after), its example inputs,
    the names of its forward's arguments and, for each node, the module whose call created it."""
    inputs = _as_tensors(example_inputs)
    modes = [(m, m.training) for m in model.modules()]
    names = dict(model.named_parameters())
    names.update(model.named_buffers())
    spans: list = []
    handles = _attach_span_hooks(model, spans)
    model.eval()
    try:
        with no_grad():
            graph = trace(model, *inputs, names=names)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes:
            module.training = training
    return graph, inputs, _forward_argument_names(model, len(inputs)), _innermost(spans)


def _attach_span_hooks(model: Module, spans: list) -> list:
    """Hooks that note which node ids each module's call created, to name the module in errors."""
    handles = []
    for path, module in model.named_modules():
        label = f"{path or '<root>'} ({type(module).__name__})"

        def before(module, args, label=label):
            spans.append([label, _node_count(), None])

        def after(module, args, output, label=label):
            for span in reversed(spans):
                if span[0] == label and span[2] is None:
                    span[2] = _node_count()
                    break

        handles.append(module.register_forward_pre_hook(before))
        handles.append(module.register_forward_hook(after))
    return handles


def _node_count() -> int:
    graph = getattr(_state.state.capture, "graph", None)  # trace's recorder, while it records
    return -1 if graph is None else len(graph.nodes)


def _innermost(spans: list) -> dict:
    """Node id -> the innermost module whose call created it (a later, nested call wins)."""
    where = {}
    for label, start, stop in spans:
        if start >= 0 and stop is not None:
            where.update(dict.fromkeys(range(start, stop), label))
    return where


def _forward_argument_names(model: Module, count: int) -> list[str]:
    try:
        params = inspect.signature(model.forward).parameters.values()
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    if len(names) < count:
        return ["input" if count == 1 else f"input{i}" for i in range(count)]
    return names[:count]


def _as_tensors(example_inputs) -> list[Tensor]:
    items = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    tensors = []
    for i, x in enumerate(items):
        if not isinstance(x, (Tensor, np.ndarray)):
            raise TypeError(
                f"graphgrad.onnx.export: example input {i} must be a tensor or a NumPy array, got "
                f"{type(x).__name__}"
            )
        tensors.append(as_tensor(x))
    return tensors


def _graph_inputs(graph: Graph, example_inputs):
    """The values a run of ``graph`` is given: the examples, or zeros of the declared shapes."""
    if isinstance(example_inputs, dict):
        return {name: as_tensor(x) for name, x in example_inputs.items()}
    if example_inputs is not None:
        return _as_tensors(example_inputs)
    undeclared = [n.name for n in graph.inputs if n.shape is None]
    if undeclared:
        raise OnnxExportError(
            f"graphgrad.onnx.export: the graph's inputs {', '.join(map(repr, undeclared))} "
            f"declare no shape; pass example_inputs"
        )
    return [as_tensor(np.zeros(n.shape, n.dtype)) for n in graph.inputs]


def _unused_inputs(graph: Graph, inputs, values: dict) -> dict:
    """The inputs no output depends on (a run computes only what the outputs need): still
    inputs of the ONNX model, with their example's shape and dtype."""
    names = [n.name for n in graph.inputs]
    given = inputs if isinstance(inputs, dict) else dict(zip(names, inputs))
    return {n.id: given[n.name]._data for n in graph.inputs if n.id not in values}


def _dtypes(graph: Graph, values: dict) -> dict:
    """Each node's dtype: the one recorded at trace or build time when the examples are the
    inputs the graph was made for, else the run's. They differ where a traced Python number met a
    float32 tensor: eager code keeps float32, while a replay of the graph sees a 0-d int64 or
    float64 constant and NumPy widens the result, so the record is what the model computes."""
    as_made = all(
        n.shape == values[n.id].shape and np.dtype(n.dtype) == values[n.id].dtype
        for n in graph.inputs
    )
    return {
        i: np.dtype(node.dtype)
        if as_made and node.kind == "op" and node.dtype is not None
        else values[i].dtype
        for i, node in enumerate(graph.nodes)
        if i in values
    }


def _default_output_names(graph: Graph) -> list[str]:
    if len(graph.outputs) == 1:
        fallback = ["output"]
    else:
        fallback = [f"output{i}" for i in range(len(graph.outputs))]
    inputs = {n.name for n in graph.inputs}
    names = [graph.nodes[i].name for i in graph.outputs]
    usable = all(names) and len(set(names)) == len(names) and not inputs & set(names)
    return names if usable else fallback


def _names(kind: str, given, default: list[str]) -> list[str]:
    if given is None:
        return default
    given = list(given)
    if len(given) != len(default):
        raise OnnxExportError(
            f"graphgrad.onnx.export: {len(given)} {kind}_names given for {len(default)} {kind}s"
        )
    if not all(isinstance(n, str) and n for n in given) or len(set(given)) != len(given):
        raise OnnxExportError(
            f"graphgrad.onnx.export: {kind}_names must be distinct non-empty strings"
        )
    return given


def _check_supported(graph: Graph, where: dict) -> None:
    """One error naming every node whose primitive has no ONNX form here."""
    problems = []
    for i in graph.topological_order():
        node = graph.nodes[i]
        if node.kind != "op":
            continue
        reason = None
        if node.op not in _EMITTERS:
            reason = "no ONNX form"
        elif node.op == "elu" and node.params[2] != 1:
            reason = f"input_scale {node.params[2]} (ONNX's Elu and Selu have none)"
        elif node.op == "max_pool_indices" and not _only_pooled(graph, i):
            reason = "max-pooling indices (return_indices=True) have no ONNX form here"
        elif node.op in ("lstm_layer", "gru_layer") and not _reads_states_only(graph, i):
            reason = "its gate activations are read (ONNX's LSTM and GRU give the states only)"
        if reason:
            place = f" in module {where[i]}" if i in where else ""
            name = f" {node.name!r}" if node.name else ""
            problems.append(f"node #{i}{name} ({node.op}){place}: {reason}")
    if problems:
        raise UnsupportedOperatorError(
            f"graphgrad.onnx.export: {len(problems)} operation(s) cannot be exported:\n  "
            + "\n  ".join(problems)
            + f"\nsupported ops: {', '.join(sorted(_EMITTERS))}"
        )


def _only_pooled(graph: Graph, i: int) -> bool:
    """Whether node i (pooling indices) is read by max_pool alone, and is no output."""
    users = [n for n in graph.nodes if n.kind == "op" and i in n.inputs]
    return i not in graph.outputs and all(n.op == "max_pool" for n in users)


def _reads_states_only(graph: Graph, i: int) -> bool:
    """Whether what is read of fused recurrent node i is what ONNX's LSTM or GRU give: the
    hidden states of every step and (an LSTM's) last cell state. Indexing is followed through
    (``packed[-1][:, H:2H]``): only what leaves a chain of getitems counts as read."""
    node = graph.nodes[i]
    hidden = node.shape[2] // _PACKED_WIDTH[node.op]
    given = np.zeros(node.shape, bool)
    given[:, :, :hidden] = True
    if node.op == "lstm_layer":
        given[-1, :, hidden:2 * hidden] = True
    positions = np.arange(given.size).reshape(node.shape)
    return all(given.reshape(-1)[_read_positions(graph, i, positions)])


def _read_positions(graph: Graph, i: int, positions: np.ndarray) -> np.ndarray:
    """The flat positions of ``positions`` (node i's elements) that something other than a
    getitem, or the graph's outputs, reads."""
    users = [n for n in graph.nodes if n.kind == "op" and i in n.inputs]
    if i in graph.outputs or any(n.op != "getitem" for n in users):
        return positions.reshape(-1)
    picked = [_read_positions(graph, n.id, positions[n.params[0]]) for n in users]
    return np.concatenate(picked) if picked else np.zeros(0, np.int64)


# ---------------------------------------------------------------------- writing the model
class _Builder:
    """Collects the ONNX nodes and initializers of one graph; ``name[i]`` is node i's value."""

    def __init__(self, onnx, graph, values: dict, dtypes: dict, buffers: dict, opset: int) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.graph, self.values, self.dtypes, self.opset = graph, values, dtypes, opset
        self.buffers = buffers  # constant node id -> the module buffer's name, for initializers
        self.nodes: list = []
        self.initializers: list = []
        self.taken: set[str] = set()
        self.name: dict[int, str] = {}
        self.casts: dict = {}  # (node id, dtype) -> the name of that node's value in dtype

    def model(self, input_names: list[str], output_names: list[str]):
        helper, graph = self.helper, self.graph
        self.taken.update(input_names + output_names)
        for node, name in zip(graph.inputs, input_names):
            self.name[node.id] = name
        wanted = {}  # op node -> the output name its last ONNX node writes
        for position, i in enumerate(graph.outputs):
            if graph.nodes[i].kind == "op" and i not in wanted:
                wanted[i] = output_names[position]
        for i in graph.topological_order():
            node = graph.nodes[i]
            if node.kind == "parameter":  # constants are made by operand(), in the dtype used
                self.name[i] = self.initializer(self.values[i], node.name)
            elif node.kind == "op":
                out = wanted.get(i) or self.fresh(f"{node.op}_{i}")
                self.name[i] = _EMITTERS[node.op](self, node, out)
        for position, i in enumerate(graph.outputs):
            if wanted.get(i) != output_names[position]:  # an input, a weight, or listed twice
                self.emit("Identity", [self.value(i)], output_names[position])
        onnx_graph = helper.make_graph(
            self.nodes,
            "graphgrad",
            [self.value_info(n, i.id) for n, i in zip(input_names, graph.inputs)],
            [self.value_info(n, graph.nodes[i].id) for n, i in zip(output_names, graph.outputs)],
            initializer=self.initializers,
        )
        opsets = [helper.make_opsetid("", self.opset)]
        proto = helper.make_model(onnx_graph, opset_imports=opsets, producer_name="graphgrad")
        proto.ir_version = helper.find_min_ir_version_for(opsets)  # what older runtimes read
        return proto

    # helpers for the emitters
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.taken:
            name, k = f"{base}_{k}", k + 1
        self.taken.add(name)
        return name

    def initializer(self, array, base: str) -> str:
        name = self.fresh(base)
        tensor = self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(tensor)
        return name

    def const(self, value, dtype) -> str:
        return self.initializer(np.asarray(value, dtype), "const")

    def emit(self, op_type: str, inputs: list, out: str | None = None, **attributes) -> str:
        out = out or self.fresh(op_type.lower())
        self.nodes.append(
            self.helper.make_node(op_type, inputs, [out], name=self.fresh(f"/{op_type}"),
                                  **attributes)
        )
        return out

    def emit_outputs(self, op_type: str, inputs: list, count: int, **attributes) -> list[str]:
        """An operator with ``count`` outputs (LSTM's Y, Y_h, Y_c); their names."""
        outs = [self.fresh(f"{op_type.lower()}_{k}") for k in range(count)]
        self.nodes.append(
            self.helper.make_node(op_type, inputs, outs, name=self.fresh(f"/{op_type}"),
                                  **attributes)
        )
        return outs

    def dtype(self, i: int) -> np.dtype:
        return self.dtypes[i]

    def shape(self, i: int) -> tuple:
        return self.values[i].shape

    def operand(self, i: int, dtype) -> str:
        """Node i's value in ``dtype``: ONNX never promotes, so a mixed operation casts first
        (a constant is converted here; anything else gets a Cast node, made once)."""
        dtype = np.dtype(dtype)
        if self.graph.nodes[i].kind == "constant":
            key = (i, dtype)
            if key not in self.casts:
                base = self.buffers.get(i, f"const_{i}")
                self.casts[key] = self.initializer(self.values[i].astype(dtype), base)
            return self.casts[key]
        if self.dtype(i) == dtype:
            return self.name[i]
        key = (i, dtype)
        if key not in self.casts:
            self.casts[key] = self.emit("Cast", [self.name[i]], to=self.onnx_type(dtype))
        return self.casts[key]

    def promotion_operand(self, i: int):
        """What stands for node i in np.result_type: a Python number for a 0-d constant."""
        if self.graph.nodes[i].kind == "constant" and self.values[i].ndim == 0:
            return self.values[i].item()
        return self.dtype(i)

    def value(self, i: int) -> str:
        """Node i's value in its own dtype."""
        return self.operand(i, self.dtype(i))

    def onnx_type(self, dtype) -> int:
        return self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def value_info(self, name: str, i: int):
        return self.helper.make_tensor_value_info(
            name, self.onnx_type(self.dtype(i)), list(self.shape(i))
        )

    def reduce(self, op_type: str, x: str, axis, keepdims: bool, out: str) -> str:
        if axis == ():  # NumPy reduces over no axis; ONNX's empty axes would mean all of them
            return self.emit("Identity", [x], out)
        attributes = {"keepdims": int(keepdims)}
        if axis is None:
            return self.emit(op_type, [x], out, **attributes)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.emit(op_type, [x, self.const(list(axis), np.int64)], out, **attributes)
        return self.emit(op_type, [x], out, axes=list(axis), **attributes)


# ---------------------------------------------------------------------- one emitter per primitive
def _same_dtype(op_type: str):
    """An elementwise ONNX operator on every input, each in the output's dtype."""

    def emit(b: _Builder, node, out: str) -> str:
        dtype = b.dtype(node.id)
        return b.emit(op_type, [b.operand(i, dtype) for i in node.inputs], out)

    return emit


def _compare(op_type: str, negate: bool = False):
    """A comparison, its inputs in their common dtype. A 0-d constant (a traced Python number)
    counts as a number does, weakly: float32 x > 0 compares in float32, int64 n > 0.5 in float64."""

    def emit(b: _Builder, node, out: str) -> str:
        common = np.result_type(*(b.promotion_operand(i) for i in node.inputs))
        args = [b.operand(i, common) for i in node.inputs]
        if negate:
            return b.emit("Not", [b.emit(op_type, args)], out)
        return b.emit(op_type, args, out)

    return emit


def _logical(op_type: str):
    def emit(b: _Builder, node, out: str) -> str:
        return b.emit(op_type, [b.operand(i, np.bool_) for i in node.inputs], out)

    return emit


def _reduction(op_type: str):
    def emit(b: _Builder, node, out: str) -> str:
        axis, keepdims = node.params
        return b.reduce(op_type, b.operand(node.inputs[0], b.dtype(node.id)), axis, keepdims, out)

    return emit


def _boolean_reduction(op_type: str):
    """all / any: ONNX reduces no booleans, so over 0/1 as int32 (ReduceMin / ReduceMax)."""
    def emit(b: _Builder, node, out: str) -> str:
        axis, keepdims = node.params
        ints = b.emit("Cast", [b.value(node.inputs[0])], to=b.onnx_type(np.int32))
        reduced = b.reduce(op_type, ints, axis, keepdims, b.fresh(f"{node.op}_{node.id}_int"))
        return b.emit("Cast", [reduced], out, to=b.onnx_type(np.bool_))

    return emit


def _argmax(b: _Builder, node, out: str) -> str:
    """np.argmax (and torch's): the first largest, a NaN counting as the largest, over one
    axis or all. ONNX's ArgMax skips NaN, so a float input takes the first NaN where any."""
    axis, keepdims = node.params
    x, kind = b.value(node.inputs[0]), b.dtype(node.inputs[0]).kind
    if kind == "b":
        x = b.emit("Cast", [x], to=b.onnx_type(np.int32))
    if axis is None:
        x = b.emit("Reshape", [x, b.const([-1], np.int64)])
    attributes = {"axis": 0 if axis is None else axis, "keepdims": int(keepdims or axis is None)}
    found = b.emit("ArgMax", [x], **attributes)
    if kind == "f":
        nan = b.emit("Cast", [b.emit("IsNaN", [x])], to=b.onnx_type(np.int32))
        counted = b.reduce("ReduceMax", nan, (attributes["axis"],), attributes["keepdims"],
                           b.fresh("any_nan"))  # the opset's own form of ReduceMax's axes
        any_nan = b.emit("Cast", [counted], to=b.onnx_type(np.bool_))
        found = b.emit("Where", [any_nan, b.emit("ArgMax", [nan], **attributes), found])
    return b.emit("Reshape", [found, b.const(list(b.shape(node.id)), np.int64)], out)


def _take_along_dim(b: _Builder, node, out: str) -> str:
    """np.take_along_axis as GatherElements, the index first expanded to the result's shape
    (NumPy broadcasts the other dimensions, ONNX does not)."""
    axis = node.params[0]
    x, index = node.inputs
    shape = list(b.shape(node.id))
    where = b.value(index)
    if tuple(b.shape(index)) != tuple(shape):
        where = b.emit("Expand", [where, b.const(shape, np.int64)])
    source = b.value(x)
    wanted = [s if k != axis % len(shape) else b.shape(x)[k] for k, s in enumerate(shape)]
    if tuple(b.shape(x)) != tuple(wanted):
        source = b.emit("Expand", [source, b.const(wanted, np.int64)])
    return b.emit("GatherElements", [source, where], out, axis=axis)


def _softmax(op_type: str):
    def emit(b: _Builder, node, out: str) -> str:
        (axis,) = node.params
        return b.emit(op_type, [b.operand(node.inputs[0], b.dtype(node.id))], out, axis=axis)

    return emit


def _first_input(b: _Builder, node) -> str:
    return b.operand(node.inputs[0], b.dtype(node.id))


def _reshape(b: _Builder, node, out: str) -> str:
    # Every view primitive (reshape, view, flatten, squeeze, unsqueeze) has a known result shape.
    # A 0 in it means "copy the input's size" to ONNX unless allowzero (opset 14 on) says not.
    target = list(b.shape(node.id))
    shape = b.const(target, np.int64)
    if 0 not in target:
        return b.emit("Reshape", [_first_input(b, node), shape], out)
    if b.opset < 14:
        raise OnnxExportError(
            f"graphgrad.onnx.export: node #{node.id} ({node.op}) makes an empty tensor of "
            f"shape {target}, which ONNX's Reshape can say from opset 14 on; got "
            f"opset_version={b.opset}"
        )
    return b.emit("Reshape", [_first_input(b, node), shape], out, allowzero=1)


def _transpose(b: _Builder, node, out: str) -> str:
    (dims,) = node.params
    return b.emit("Transpose", [_first_input(b, node)], out, perm=[int(d) for d in dims])


def _expand(b: _Builder, node, out: str) -> str:
    shape = b.const(list(b.shape(node.id)), np.int64)
    return b.emit("Expand", [_first_input(b, node), shape], out)


def _repeat(b: _Builder, node, out: str) -> str:
    (reps,) = node.params
    x_shape = b.shape(node.inputs[0])
    padded = (1,) * (len(reps) - len(x_shape)) + tuple(x_shape)  # np.tile's leading ones
    x = b.emit("Reshape", [_first_input(b, node), b.const(list(padded), np.int64)])
    return b.emit("Tile", [x, b.const(list(reps), np.int64)], out)


def _cat(b: _Builder, node, out: str) -> str:
    (axis,) = node.params
    dtype = b.dtype(node.id)
    return b.emit("Concat", [b.operand(i, dtype) for i in node.inputs], out, axis=axis)


def _stack(b: _Builder, node, out: str) -> str:
    (axis,) = node.params
    dtype, where = b.dtype(node.id), b.const([axis], np.int64)
    parts = [b.emit("Unsqueeze", [b.operand(i, dtype), where]) for i in node.inputs]
    return b.emit("Concat", parts, out, axis=axis)


def _cast(b: _Builder, node, out: str) -> str:
    return b.emit("Cast", [b.value(node.inputs[0])], out, to=b.onnx_type(b.dtype(node.id)))


def _linear(b: _Builder, node, out: str) -> str:
    dtype = b.dtype(node.id)
    x, w, bias = (b.operand(i, dtype) for i in node.inputs)
    if len(b.shape(node.inputs[0])) == 2:
        return b.emit("Gemm", [x, w, bias], out, transB=1)
    product = b.emit("MatMul", [x, b.emit("Transpose", [w], perm=[1, 0])])
    return b.emit("Add", [product, bias], out)


def _end_pads(size, lo, kernel, stride, dilation, out_shape) -> list[int]:
    """The padding after each spatial axis that gives ``out_shape`` windows: what the last
    window reaches past the input (0 where torch leaves trailing input unread)."""
    return [max(0, (n - 1) * s + r * (k - 1) + 1 - (x + p))
            for x, p, k, s, r, n in zip(size, lo, kernel, stride, dilation, out_shape)]


def _has_value(b: _Builder, i: int) -> bool:
    """Whether operand i is given: a conv without bias has a value-less constant there."""
    return b.values.get(i) is not None


def _conv(b: _Builder, node, out: str) -> str:
    stride, lo, dilation, groups, out_shape = node.params
    dtype = b.dtype(node.id)
    x, w, bias = node.inputs
    kernel = b.shape(w)[2:]
    pads = list(lo) + _end_pads(b.shape(x)[2:], lo, kernel, stride, dilation, out_shape)
    operands = [b.operand(i, dtype) for i in (x, w, bias) if _has_value(b, i)]
    return b.emit("Conv", operands, out, kernel_shape=list(kernel), strides=list(stride),
                  pads=pads, dilations=list(dilation), group=groups)


def _conv_transpose(b: _Builder, node, out: str) -> str:
    stride, lo, dilation, groups, out_shape = node.params
    dtype = b.dtype(node.id)
    y, w, bias = node.inputs
    kernel, size = b.shape(w)[2:], b.shape(y)[2:]
    # ONNX's length: stride * (in - 1) + extent - begin - end + output_padding
    full = [s * (n - 1) + r * (k - 1) + 1 - p
            for s, n, r, k, p in zip(stride, size, dilation, kernel, lo)]
    end = [max(0, f - o) for f, o in zip(full, out_shape)]
    extra = [max(0, o - f) for f, o in zip(full, out_shape)]
    operands = [b.operand(i, dtype) for i in (y, w, bias) if _has_value(b, i)]
    return b.emit("ConvTranspose", operands, out, kernel_shape=list(kernel),
                  strides=list(stride), pads=list(lo) + end, dilations=list(dilation),
                  group=groups, output_padding=extra)


def _max_pool(b: _Builder, node, out: str) -> str:
    x, indices = node.inputs
    kernel, stride, lo, dilation, out_shape = b.graph.nodes[indices].params
    pads = list(lo) + _end_pads(b.shape(x)[2:], lo, kernel, stride, dilation, out_shape)
    return b.emit("MaxPool", [b.value(x)], out, kernel_shape=list(kernel),
                  strides=list(stride), pads=pads, dilations=list(dilation))


def _getitem(b: _Builder, node, out: str) -> str:
    """Any NumPy index (slices, integers, None, masks, index arrays: constants all) as one
    Gather of flat positions, worked out here on the static shape: exactly NumPy's selection,
    at the price of an int64 table the size of the result."""
    index, _ = node.params
    x = node.inputs[0]
    positions = np.arange(int(np.prod(b.shape(x))), dtype=np.int64).reshape(b.shape(x))[index]
    flat = b.emit("Reshape", [b.value(x), b.const([-1], np.int64)])
    return b.emit("Gather", [flat, b.const(positions, np.int64)], out, axis=0)


# One recurrent direction (the fused lstm_layer, gru_layer, rnn_layer primitives) becomes one
# ONNX LSTM, GRU or RNN. The primitive's input is already projected (x W_ih^T + biases), so the
# ONNX input weight W is a permutation matrix: it only reorders torch's gates into ONNX's order.
_ONNX_GATES = {"lstm_layer": (0, 3, 1, 2),  # torch (i, f, g, o) -> ONNX (i, o, f, c)
               "gru_layer": (1, 0, 2),  # torch (r, z, n) -> ONNX (z, r, h)
               "rnn_layer": (0,)}
_PACKED_WIDTH = {"lstm_layer": 6, "gru_layer": 5, "rnn_layer": 1}  # hidden sizes per step


def _gate_rows(op: str, hidden: int) -> np.ndarray:
    return np.concatenate([np.arange(g * hidden, (g + 1) * hidden) for g in _ONNX_GATES[op]])


def _recurrent(b: _Builder, node, out: str) -> str:
    xw, h0 = node.inputs[0], node.inputs[1]
    dtype = b.dtype(node.id)
    steps, batch, width = b.shape(xw)
    hidden = b.shape(h0)[-1]
    rows = _gate_rows(node.op, hidden)
    permutation = np.eye(width, dtype=dtype)[rows][None]  # (1, gates * H, gates * H)
    weight_hh = node.inputs[3] if node.op == "lstm_layer" else node.inputs[2]
    recurrence = b.emit("Gather", [b.operand(weight_hh, dtype), b.const(rows, np.int64)], axis=0)
    axis0 = b.const([0], np.int64)
    operands = [b.operand(xw, dtype), b.const(permutation, dtype),
                b.emit("Unsqueeze", [recurrence, axis0])]
    attributes = {"hidden_size": hidden}
    if node.op == "gru_layer":  # b_hn stays inside r * (W_hn h + b_hn): linear_before_reset
        recurrent_bias = b.emit("Gather", [b.operand(node.inputs[3], dtype),
                                           b.const(rows, np.int64)], axis=0)
        both = b.emit("Concat", [b.const(np.zeros(width, dtype), dtype), recurrent_bias],
                      axis=0)
        operands.append(b.emit("Unsqueeze", [both, axis0]))
        attributes["linear_before_reset"] = 1
    else:
        operands.append("")
    operands += ["", b.emit("Unsqueeze", [b.operand(h0, dtype), axis0])]
    if node.op == "lstm_layer":
        operands.append(b.emit("Unsqueeze", [b.operand(node.inputs[2], dtype), axis0]))
    if node.op == "rnn_layer":
        attributes["activations"] = [node.params[0].capitalize()]  # Tanh or Relu
    kind = {"lstm_layer": "LSTM", "gru_layer": "GRU", "rnn_layer": "RNN"}[node.op]
    outputs = b.emit_outputs(kind, operands, 3 if kind == "LSTM" else 2, **attributes)
    states = b.emit("Squeeze", [outputs[0], b.const([1], np.int64)])  # (T, B, H)
    if node.op == "rnn_layer":
        return b.emit("Identity", [states], out)
    # the packed output's other parts hold what only the backward reads (checked): zeros, but
    # for the LSTM's last cell state
    parts = [states]
    if node.op == "lstm_layer":
        cells = [outputs[2]] if steps == 1 else [
            b.const(np.zeros((steps - 1, batch, hidden), dtype), dtype), outputs[2]]
        parts.append(b.emit("Concat", cells, axis=0) if len(cells) > 1 else cells[0])
    rest = (_PACKED_WIDTH[node.op] - len(parts)) * hidden
    parts.append(b.const(np.zeros((steps, batch, rest), dtype), dtype))
    return b.emit("Concat", parts, out, axis=2)


def _index_add(b: _Builder, node, out: str) -> str:
    """Zeros of ``shape`` with the values added at a constant index (constant padding, the
    transpose of indexing): one ScatterElements into the flat zeros; repeated positions (an
    advanced index) add up, which ONNX can say from opset 16 on."""
    shape, index, advanced = node.params
    dtype = b.dtype(node.id)
    size = int(np.prod(shape))
    values_shape = b.shape(node.inputs[0])
    positions = np.broadcast_to(np.arange(size).reshape(shape)[index], values_shape).reshape(-1)
    attributes = {"axis": 0}
    if advanced and np.unique(positions).size != positions.size:
        if b.opset < 16:
            raise OnnxExportError(
                f"graphgrad.onnx.export: node #{node.id} (index_add) adds values at repeated "
                f"positions, which ONNX's ScatterElements can do from opset 16 on; got "
                f"opset_version={b.opset}"
            )
        attributes["reduction"] = "add"
    flat = b.emit("Reshape", [b.operand(node.inputs[0], dtype), b.const([-1], np.int64)])
    zeros = b.const(np.zeros(size, dtype), dtype)
    scattered = b.emit("ScatterElements", [zeros, b.const(positions, np.int64), flat],
                       **attributes)
    return b.emit("Reshape", [scattered, b.const(list(shape), np.int64)], out)


def _pooling_indices(b: _Builder, node, out: str) -> str:
    """Nothing: max_pool, its only user (checked), reads the pooling geometry from here."""
    return out


def _pow_scalar(b: _Builder, node, out: str) -> str:
    (exponent,) = node.params
    dtype = b.dtype(node.id)
    return b.emit("Pow", [_first_input(b, node), b.const(exponent, dtype)], out)


def _rsqrt(b: _Builder, node, out: str) -> str:
    return b.emit("Reciprocal", [b.emit("Sqrt", [_first_input(b, node)])], out)


def _silu(b: _Builder, node, out: str) -> str:
    x = _first_input(b, node)
    return b.emit("Mul", [x, b.emit("Sigmoid", [x])], out)


def _isfinite(b: _Builder, node, out: str) -> str:
    x = b.value(node.inputs[0])
    return b.emit("Not", [b.emit("Or", [b.emit("IsNaN", [x]), b.emit("IsInf", [x])])], out)


def _where(b: _Builder, node, out: str) -> str:
    cond, x, y = node.inputs
    dtype = b.dtype(node.id)
    return b.emit("Where", [b.operand(cond, np.bool_), b.operand(x, dtype), b.operand(y, dtype)],
                  out)


def _clamp(b: _Builder, node, out: str) -> str:
    # max(x, lo) then min(., hi), as the primitive computes it; the bounds are input nodes
    x, lo, hi = (b.operand(i, b.dtype(node.id)) for i in node.inputs)
    return b.emit("Min", [b.emit("Max", [x, lo]), hi], out)


def _hardtanh(b: _Builder, node, out: str) -> str:
    lo, hi = (b.const(bound, b.dtype(node.id)) for bound in node.params)
    return b.emit("Min", [b.emit("Max", [_first_input(b, node), lo]), hi], out)


def _softplus(b: _Builder, node, out: str) -> str:
    # torch's: log(1 + e^(beta x)) / beta, and x itself where beta x > threshold
    beta, threshold = node.params
    dtype = b.dtype(node.id)
    x = _first_input(b, node)
    scaled = b.emit("Mul", [x, b.const(beta, dtype)])
    curve = b.emit("Div", [b.emit("Softplus", [scaled]), b.const(beta, dtype)])
    linear = b.emit("Greater", [scaled, b.const(threshold, dtype)])
    return b.emit("Where", [linear, x, curve], out)


def _elu(b: _Builder, node, out: str) -> str:
    alpha, scale, _ = node.params  # input_scale is 1: _check_supported refuses any other
    x = _first_input(b, node)
    if scale == 1:
        return b.emit("Elu", [x], out, alpha=float(alpha))
    return b.emit("Selu", [x], out, alpha=float(alpha), gamma=float(scale))


def _celu(b: _Builder, node, out: str) -> str:
    alpha = node.params[0]
    return b.emit("Celu", [_first_input(b, node)], out, alpha=float(alpha))


_UNARY = {
    "neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "sign": "Sign",
    "sin": "Sin", "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan",
    "sinh": "Sinh", "cosh": "Cosh", "asinh": "Asinh", "acosh": "Acosh", "atanh": "Atanh",
    "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu", "erf": "Erf", "floor": "Floor",
    "ceil": "Ceil", "round": "Round",
}  # fmt: skip
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
           "maximum": "Max", "minimum": "Min"}  # fmt: skip
_COMPARE = {"eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
            "ge": "GreaterOrEqual"}  # fmt: skip
_REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "amax": "ReduceMax", "max": "ReduceMax",
           "amin": "ReduceMin", "min": "ReduceMin", "logsumexp": "ReduceLogSumExp"}  # fmt: skip
_VIEWS = ("reshape", "view", "flatten", "squeeze", "squeeze_dim", "squeeze_dims", "unsqueeze")

_EMITTERS = {
    **{op: _same_dtype(onnx_op) for op, onnx_op in {**_UNARY, **_BINARY}.items()},
    **{op: _compare(onnx_op) for op, onnx_op in _COMPARE.items()},
    "ne": _compare("Equal", negate=True),
    **{op: _logical(onnx_op) for op, onnx_op in
       {"logical_and": "And", "logical_or": "Or", "logical_xor": "Xor",
        "logical_not": "Not"}.items()},
    "isnan": lambda b, node, out: b.emit("IsNaN", [b.value(node.inputs[0])], out),
    "isinf": lambda b, node, out: b.emit("IsInf", [b.value(node.inputs[0])], out),
    "isfinite": _isfinite,
    **{op: _reduction(onnx_op) for op, onnx_op in _REDUCE.items()},
    "softmax": _softmax("Softmax"),
    "log_softmax": _softmax("LogSoftmax"),
    **dict.fromkeys(_VIEWS, _reshape),
    **dict.fromkeys(("permute", "transpose", "t"), _transpose),
    "expand": _expand,
    "repeat": _repeat,
    "cat": _cat,
    "stack": _stack,
    "cast": _cast,
    "matmul": _same_dtype("MatMul"),  # NumPy's rules: vectors, batch dimensions broadcast
    "linear": _linear,
    "pow_scalar": _pow_scalar,
    "rsqrt": _rsqrt,
    "silu": _silu,
    "where": _where,
    "clamp": _clamp,
    "hardtanh": _hardtanh,
    "softplus": _softplus,
    "elu": _elu,
    "celu": _celu,
    "conv": _conv,
    "lstm_layer": _recurrent,
    "gru_layer": _recurrent,
    "rnn_layer": _recurrent,
    "getitem": _getitem,
    "any": _boolean_reduction("ReduceMax"),
    "all": _boolean_reduction("ReduceMin"),
    "argmax": _argmax,
    "take_along_dim": _take_along_dim,
    "index_add": _index_add,
    "conv_transpose": _conv_transpose,
    "max_pool": _max_pool,
    "max_pool_indices": _pooling_indices,
}  # fmt: skip

SUPPORTED_OPS = frozenset(_EMITTERS)

__all__ = ["export", "OnnxExportError", "UnsupportedOperatorError", "SUPPORTED_OPS"]
