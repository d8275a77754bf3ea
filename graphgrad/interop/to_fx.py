"""A Graph as a ``torch.fx`` program (issue 14): one torch call per operation node.

Inputs become placeholders, in the graph's input order and named as its inputs; parameters
become ``nn.Parameter``s of the module, named after the graph's parameters (a dotted name such as
``0.weight`` keeps its sub-modules, so the state_dict reads like the torch model's); constants,
and the arrays inside op parameters (index arrays), become buffers. So ``.to(device)`` and
``.to(dtype)`` move everything the program reads, and no tensor is made inside the forward but on
its inputs' device.

Each primitive has one lowering in :func:`lowerings`, a function of the op's forward arguments
(input nodes, then the op's parameters, exactly as its NumPy ``forward`` takes them) that names
the torch call. Where torch has no single function with the primitive's semantics (an internal
primitive such as ``conv_weight`` or ``lstm_layer``, or one whose torch twin differs at an edge)
the call is to a small helper below, written in torch alone. torch is imported only when a graph
is lowered: ``import graphgrad`` never needs it.

Mixed dtypes promote by torch's rules, not NumPy's: a 0-d operand of a wider float dtype (a
float32 input times a float64 0-d constant) and int / int give float32 here, float64 in a NumPy
run. Graphs traced from graphgrad's tensor code cast their operands first, so they do not meet it.
"""

from __future__ import annotations

import functools
import itertools
import keyword
import math
import operator
import re

import numpy as np

from ..graph.core import Graph, GraphError


class LoweringError(GraphError):
    """A graph that cannot be lowered to torch: an op without a lowering, or parameters that a
    lowering refuses; the message names the op and the node."""


def graph_to_fx(graph: Graph):
    """``graph`` as a ``torch.fx.GraphModule``: inputs in, output (a tuple for several) out.

    >>> import graphgrad as gg, torch
    >>> g = gg.Graph()
    >>> x, w = g.input("x"), g.parameter("w", 3.0)
    >>> _ = g.output((x * w).exp(), name="y")
    >>> gm = graph_to_fx(g)
    >>> [name for name, _ in gm.named_parameters()]
    ['w']
    >>> gm(torch.tensor([0.0, 1.0])).tolist() == torch.exp(torch.tensor([0.0, 3.0])).tolist()
    True
    """
    torch = _torch()
    if not graph.outputs:
        raise LoweringError("graph_to_fx: the graph has no outputs: mark one with g.output()")
    build = _Builder(torch)
    env = {}  # graph node id -> fx node
    for node in graph.inputs:
        env[node.id] = build.placeholder(node)
    parameters = {node.id: build.parameter(node) for node in graph.parameters}  # used or not
    for node_id in graph.topological_order():
        node = graph.nodes[node_id]
        if node.kind == "parameter":
            env[node_id] = build.get_attr(parameters[node_id], node)
        elif node.kind == "constant":
            env[node_id] = build.constant(node)
        elif node.kind == "op":
            env[node_id] = build.op(node, [env[i] for i in node.inputs])
    outputs = [env[i] for i in graph.outputs]
    build.fx.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
    return build.module()


class _Builder:
    """The fx graph being written and the module state it reads: parameters, and constants and
    op-parameter arrays as buffers, registered on a holder module under their final names."""

    def __init__(self, torch) -> None:
        self.torch = torch
        self.fx = torch.fx.Graph()
        self.holder = torch.nn.Module()  # what the get_attr nodes read while building
        self.state: list = []  # (target, tensor, is_buffer) for the finished module

    def placeholder(self, node):
        fx_node = self.fx.placeholder(_identifier(node.name, "x"))
        fx_node.target = fx_node.name  # the argument's name: fx made it unique and legal
        fx_node.meta["graphgrad_node"] = node.id
        return fx_node

    def register(self, name: str, value, buffer: bool) -> str:
        target = _attach(self.holder, name, value, buffer)
        self.state.append((target, value, buffer))
        return target

    def parameter(self, node) -> str:
        value = self.torch.nn.Parameter(_tensor_of(self.torch, node.value.detach().numpy()))
        return self.register(node.name, value, buffer=False)

    def get_attr(self, target: str, node):
        fx_node = self.fx.get_attr(target)
        fx_node.meta["graphgrad_node"] = node.id
        return fx_node

    def constant(self, node):
        if node.value is None:  # an operand left out (conv without bias): torch's None too
            return None
        # a name given by hand is kept; one made from the value ("0.5", "const(3, 4)") is not
        named = re.fullmatch(r"[A-Za-z_]\w*", node.name)
        name = node.name if named else f"const{node.id}"
        value = _tensor_of(self.torch, node.value.detach().numpy())
        return self.get_attr(self.register(name, value, buffer=True), node)

    def op(self, node, inputs: list):
        target, args, kwargs = _lower(lowerings(), node, inputs)
        arrays = itertools.count()

        def buffer(array):
            name = f"{node.op}{node.id}_array{next(arrays)}"
            return self.get_attr(self.register(name, _tensor_of(self.torch, array), True), node)

        args, kwargs = _with_buffers(args, buffer), _with_buffers(kwargs, buffer)
        name = _identifier(node.name, node.op) if node.name else node.op
        fx_node = self.fx.create_node("call_function", target, args, kwargs, name=name)
        fx_node.meta["graphgrad_node"] = node.id
        return fx_node

    def module(self):
        module = self.torch.fx.GraphModule(self.holder, self.fx, class_name="GraphgradGraph")
        # fx copies only what get_attr reads, and as persistent buffers: every parameter is
        # registered, and constants stay out of the state_dict (it holds what training changes)
        for target, value, buffer in self.state:
            _attach(module, target, value, buffer, exact=True)
        return module


def _torch():
    try:
        import torch
        import torch.fx
    except ImportError as exc:
        raise ImportError(
            f"graph_to_fx needs PyTorch (pip install 'graphgrad[torch]'): {exc}"
        ) from None
    if not hasattr(torch, "fx") or not hasattr(torch.fx, "GraphModule"):
        raise ImportError(
            "graph_to_fx needs the real PyTorch, but `import torch` gave "
            f"{getattr(torch, '__file__', torch)!r} (graphgrad's torch alias?)"
        )
    return torch


def _lower(table: dict, node, inputs: list):
    where = f"node {node.label!r} (#{node.id})"
    lowering = table.get(node.op)
    if lowering is None:
        raise LoweringError(
            f"graph_to_fx: op {node.op!r} of {where} has no torch lowering "
            f"({len(table)} ops have one; see graphgrad.interop.to_fx.lowerings)"
        )
    try:
        return lowering(*inputs, *node.params)
    except LoweringError as exc:
        raise LoweringError(f"graph_to_fx: op {node.op!r} of {where}: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise LoweringError(
            f"graph_to_fx: op {node.op!r} of {where} cannot be lowered with parameters "
            f"{node.params!r}: {exc}"
        ) from exc


def _call(target, *args, **kwargs):
    """What a lowering returns: the torch call, written as it is called."""
    return target, args, kwargs


def _with_buffers(value, buffer):
    """``value`` (an op's arguments) with every NumPy array replaced by a buffer node (integer
    arrays are indices, int64 for torch) and NumPy scalars by Python numbers."""
    if isinstance(value, np.ndarray):
        return buffer(value.astype(np.int64) if value.dtype.kind in "iu" else value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_with_buffers(v, buffer) for v in value)
    if isinstance(value, dict):
        return {k: _with_buffers(v, buffer) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(*(_with_buffers(v, buffer) for v in (value.start, value.stop, value.step)))
    return value


def _tensor_of(torch, array: np.ndarray):
    """A torch tensor holding a copy of ``array`` (contiguous and writable)."""
    try:
        return torch.from_numpy(np.array(array, copy=True))
    except TypeError as exc:
        raise LoweringError(f"an array of dtype {array.dtype} has no torch dtype: {exc}") from None


# ---------------------------------------------------------------------- names


def _identifier(name: str, fallback: str) -> str:
    """``name`` as a Python identifier: other characters become ``_``, a keyword gets one."""
    text = re.sub(r"\W", "_", name)
    if not text:
        return fallback
    if text[0].isdigit():
        text = "_" + text
    return text + "_" if keyword.iskeyword(text) else text


def _part(name: str) -> str:
    """One component of an attribute path: an identifier, or digits (as nn.Sequential's)."""
    return name if name.isdigit() else _identifier(name, "_")


@functools.cache
def _reserved() -> frozenset:
    """Attribute names a GraphModule has already (forward, graph, code, training...)."""
    torch = _torch()
    return frozenset(dir(torch.fx.GraphModule)) | frozenset(vars(torch.nn.Module()))


def _attach(module, path: str, value, buffer: bool, exact: bool = False) -> str:
    """Register ``value`` (a parameter, or a non-persistent buffer) at dotted ``path`` under
    ``module``, making sub-modules as needed; returns the path used. Unless ``exact``, a taken
    name gets a suffix, and a path through a name that is no module is flattened with ``_``."""
    import torch

    parts = path.split(".") if exact else [_part(p) for p in path.split(".")]
    owner = module
    for part in parts[:-1]:
        child = owner._modules.get(part)
        if child is None and not exact and (hasattr(owner, part) or part in _reserved()):
            return _attach(module, "_".join(parts), value, buffer)  # no module there: flatten
        if child is None:
            child = torch.nn.Module()
            owner.add_module(part, child)
        owner = child
    field = parts[-1]
    if not exact:
        base, n = field, 0
        while hasattr(owner, field) or field in _reserved():
            n += 1
            field = f"{base}_{n}"
    if buffer:
        owner.register_buffer(field, value, persistent=False)
    else:
        owner.register_parameter(field, value)
    return ".".join(parts[:-1] + [field])


# ---------------------------------------------------------------------- the lowering table


@functools.cache
def lowerings() -> dict:
    """The lowering of every primitive: op name -> ``f(*inputs, *params)`` giving the torch
    call. Inputs are fx nodes; params are the op's own, as its NumPy forward takes them.

    >>> from graphgrad.ops import OPS
    >>> sorted(set(OPS) - set(lowerings()))
    []
    """
    torch = _torch()
    F = torch.nn.functional

    def unary(fn):
        return lambda x: _call(fn, x)

    def binary(fn):
        return lambda a, b: _call(fn, a, b)

    def take_along(x, index, axis, *_):
        return _call(torch.take_along_dim, x, index, axis)

    def reduction(fn):
        return lambda x, axis, keepdims: _call(fn, x, _dims(axis), keepdims)

    table = {
        # elementwise (ops/elementwise.py)
        "add": binary(torch.add),
        "sub": binary(torch.sub),
        "mul": binary(torch.mul),
        "div": binary(torch.div),
        "pow_scalar": lambda x, exponent: _call(torch.pow, x, exponent),
        "pow": binary(torch.pow),
        "maximum": binary(torch.maximum),
        "minimum": binary(torch.minimum),
        "where": lambda cond, a, b: _call(torch.where, cond, a, b),
        "clamp": lambda x, lo, hi: _call(torch.clamp, x, lo, hi),
        "remainder": binary(torch.remainder),
        "floor_divide": binary(torch.floor_divide),
        "div_floor": lambda a, b: _call(torch.div, a, b, rounding_mode="floor"),
        "neg": unary(torch.neg),
        "exp": unary(torch.exp),
        "log": unary(torch.log),
        "log1p": unary(torch.log1p),
        "sqrt": unary(torch.sqrt),
        "rsqrt": unary(torch.rsqrt),
        "abs": unary(torch.abs),
        "sign": unary(torch.sign),
        "sin": unary(torch.sin),
        "cos": unary(torch.cos),
        "tan": unary(torch.tan),
        "tanh": unary(torch.tanh),
        "sigmoid": unary(torch.sigmoid),
        "floor": unary(torch.floor),
        "ceil": unary(torch.ceil),
        "round": unary(torch.round),  # half to even, as NumPy
        "relu": unary(torch.relu),
        "eq": binary(torch.eq),
        "ne": binary(torch.ne),
        "lt": binary(torch.lt),
        "le": binary(torch.le),
        "gt": binary(torch.gt),
        "ge": binary(torch.ge),
        "logical_and": binary(torch.logical_and),
        "logical_or": binary(torch.logical_or),
        "logical_xor": binary(torch.logical_xor),
        "logical_not": unary(torch.logical_not),
        "isnan": unary(torch.isnan),
        "isinf": unary(torch.isinf),
        "isfinite": unary(torch.isfinite),
        # elementwise math and activations (ops/special.py)
        "erf": unary(torch.erf),
        "asin": unary(torch.asin),
        "acos": unary(torch.acos),
        "atan": unary(torch.atan),
        "sinh": unary(torch.sinh),
        "cosh": unary(torch.cosh),
        "asinh": unary(torch.asinh),
        "acosh": unary(torch.acosh),
        "atanh": unary(torch.atanh),
        "log2": unary(torch.log2),
        "log10": unary(torch.log10),
        "exp2": unary(torch.exp2),
        "trunc": unary(torch.trunc),
        "atan2": binary(torch.atan2),
        "fmod": binary(torch.fmod),
        "copysign": binary(torch.copysign),
        "logaddexp": binary(torch.logaddexp),
        "nan_to_num": lambda x, nan, posinf, neginf: _call(
            torch.nan_to_num, x, nan=nan, posinf=posinf, neginf=neginf
        ),
        "isclose": lambda a, b, rtol, atol, equal_nan: _call(
            _isclose, a, b, rtol, atol, equal_nan
        ),
        "silu": unary(F.silu),
        "softplus": lambda x, beta, threshold: _call(F.softplus, x, beta, threshold),
        # torch's elu kernel has all three constants (selu and celu call it)
        "elu": lambda x, alpha, scale, input_scale: _call(
            torch.ops.aten.elu, x, alpha, scale, input_scale
        ),
        "celu": _celu,
        "hardtanh": lambda x, min_val, max_val: _call(F.hardtanh, x, min_val, max_val),
        "mish": unary(F.mish),
        # products (ops/linalg.py, ops/decomp.py)
        "matmul": binary(torch.matmul),
        "linear": lambda x, w, b: _call(F.linear, x, w, b),
        "einsum": lambda *args: _call(torch.einsum, args[-1], *args[:-1]),
        "addmm": lambda input, a, b, beta, alpha: _call(_addmm, input, a, b, beta, alpha),
        # reductions and the softmax family (ops/reduce.py)
        "sum": reduction(torch.sum),
        "mean": reduction(torch.mean),
        "amax": lambda x, axis, keepdims: _call(torch.amax, x, _dims(axis) or (), keepdims),
        "amin": lambda x, axis, keepdims: _call(torch.amin, x, _dims(axis) or (), keepdims),
        "max": lambda x, axis, keepdims: _call(torch.amax, x, _dims(axis) or (), keepdims),
        "min": lambda x, axis, keepdims: _call(torch.amin, x, _dims(axis) or (), keepdims),
        "prod": lambda x, axis: _call(_prod, x, _dims(axis)),
        "logsumexp": lambda x, axis, keepdims: _call(
            torch.logsumexp, x, _dims(axis) or (), keepdims
        ),
        "softmax": lambda x, axis: _call(torch.softmax, x, axis),
        "log_softmax": lambda x, axis: _call(torch.log_softmax, x, axis),
        "argmax": reduction(torch.argmax),
        "argmin": reduction(torch.argmin),
        "all": reduction(torch.all),
        "any": reduction(torch.any),
        "nll_loss": lambda x, target, weight, ignore_index, reduction: _call(
            _nll_loss, x, target, weight, ignore_index, reduction
        ),
        "vector_norm": lambda x, ord, axis, keepdims: _call(
            torch.linalg.vector_norm, x, ord, _dims(axis), keepdims
        ),
        # sorting, selection and scans (ops/select.py, ops/scan.py)
        "argsort": lambda x, axis, descending: _call(
            torch.argsort, x, dim=axis, descending=descending, stable=True
        ),
        "topk_indices": lambda x, k, axis, largest: _call(_topk_indices, x, k, axis, largest),
        "take_along_dim": take_along,
        "sort": take_along,
        "topk": take_along,
        "cummax": take_along,
        "cummin": take_along,
        "cumsum": lambda x, axis: _call(torch.cumsum, x, axis),
        "cumprod": lambda x, axis: _call(torch.cumprod, x, axis),
        "logcumsumexp": lambda x, axis: _call(torch.logcumsumexp, x, axis),
        "cum_extremum_indices": lambda x, axis, largest: _call(
            _cum_extremum_indices, x, axis, largest
        ),
        # shapes, indexing, joining (ops/shape.py); every reshape-like op has its target shape
        **{
            name: lambda x, shape: _call(torch.reshape, x, tuple(shape))
            for name in ("reshape", "unsqueeze", "squeeze", "squeeze_dim", "squeeze_dims",
                         "flatten", "view")
        },  # fmt: skip
        **{
            name: lambda x, dims: _call(torch.permute, x, tuple(dims))
            for name in ("permute", "transpose", "t")
        },
        "expand": lambda x, shape: _call(torch.broadcast_to, x, tuple(shape)),
        "repeat": lambda x, reps: _call(torch.tile, x, tuple(reps)),  # np.tile's rules
        "getitem": lambda x, index, advanced: _getitem_call(x, _positions(index)),
        "index_add": lambda values, shape, index, advanced: _call(
            _index_add, values, tuple(shape), _positions(index)
        ),
        "gather": lambda x, axis, index: _call(torch.take_along_dim, x, index, axis),
        "scatter_add": lambda values, shape, axis, index: _call(
            _scatter_add, values, tuple(shape), axis, index
        ),
        "cat": lambda *args: _call(torch.cat, list(args[:-1]), args[-1]),
        "stack": lambda *args: _call(torch.stack, list(args[:-1]), args[-1]),
        "cast": lambda x, np_dtype: _call(torch.Tensor.to, x, _torch_dtype(torch, np_dtype)),
        # convolution and pooling (ops/conv.py)
        "conv": lambda x, w, b, *geometry: _call(_conv, x, w, b, *geometry),
        "conv_transpose": lambda y, w, b, *geometry: _call(_conv_transpose, y, w, b, *geometry),
        "conv_weight": lambda x, y, *geometry: _call(_conv_weight, x, y, *geometry),
        "max_pool_indices": lambda x, *geometry: _call(_max_pool_indices, x, *geometry),
        "max_pool": lambda x, indices: _call(_max_pool, x, indices),
        # recurrent layers (ops/recurrent.py)
        "lstm_layer": lambda xw, h0, c0, w_hh: _call(_lstm_layer, xw, h0, c0, w_hh),
        "gru_layer": lambda xw, h0, w_hh, b_hh: _call(_gru_layer, xw, h0, w_hh, b_hh),
        "rnn_layer": lambda xw, h0, w_hh, nonlinearity: _call(
            _rnn_layer, xw, h0, w_hh, nonlinearity
        ),
        # decompositions and solvers, packed as ops/decomp.py packs them
        "decomp_part": lambda packed, start, stop, core, total: _call(
            _decomp_part, packed, start, stop, tuple(core)
        ),
        "linalg_inv": unary(torch.linalg.inv),
        "linalg_solve": lambda a, b, vector: _call(_solve, a, b, vector),
        "linalg_det": unary(torch.linalg.det),
        "linalg_slogdet": lambda a: _call(_slogdet, a),
        "linalg_cholesky": lambda a, upper: _call(_cholesky, a, upper),
        "linalg_qr": lambda a, mode: _call(_qr, a, mode),
        "linalg_svd": lambda a, full_matrices: _call(_svd, a, full_matrices),
        "linalg_eigh": lambda a, uplo: _call(_eigh, a, uplo),
        "linalg_pinv": lambda a, atol, rtol: _call(torch.linalg.pinv, a, atol=atol, rtol=rtol),
        "linalg_lstsq": lambda a, b, rtol: _call(_lstsq, a, b, rtol),
    }
    return table


def _dims(axis):
    """A reduction's axes for torch: None (every axis) or a tuple. torch reads an empty tuple
    as every axis, where NumPy reduces none: refused rather than lowered wrongly."""
    if axis is not None and not isinstance(axis, int) and len(axis) == 0:
        raise LoweringError("a reduction over no axes (axis=()) has no torch twin")
    return axis


def _celu(x, alpha, scale, input_scale):
    """torch.celu differentiates with 1 / float32(alpha), as ops/special.Celu does; an elu with
    other constants is the elu kernel."""
    import torch

    if scale == 1.0 and input_scale == 1.0 / alpha:
        return _call(torch.celu, x, alpha)
    return _call(torch.ops.aten.elu, x, alpha, scale, input_scale)


def _torch_dtype(torch, np_dtype):
    return _tensor_of(torch, np.zeros(0, np_dtype)).dtype


def _positions(index):
    """An index with each boolean mask replaced by the integer positions it selects (NumPy's
    ``mask.nonzero()`` rule): a constant mask then gives a fixed output shape, which
    torch.compile needs."""
    parts = index if isinstance(index, tuple) else (index,)
    out = []
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype == bool:
            out.extend(np.nonzero(part))
        else:
            out.append(part)
    return tuple(out)


def _getitem_call(x, index):
    """``x[index]``; through :func:`_getitem` only for NumPy's negative steps."""
    backwards = any(isinstance(p, slice) and p.step is not None and p.step < 0 for p in index)
    return _call(_getitem if backwards else operator.getitem, x, index)


# ---------------------------------------------------------------------- helpers, torch only


def _getitem(x, index: tuple):
    """``x[index]`` where slices may step backwards (NumPy's, which torch refuses): each such
    dimension is flipped and sliced forwards instead."""
    import torch

    parts = list(index)
    fixed = sum(p is not None and p is not Ellipsis for p in parts)
    dim = 0
    for k, part in enumerate(parts):
        if part is Ellipsis:
            dim += x.ndim - fixed
            continue
        if part is None:
            continue
        if isinstance(part, slice) and part.step is not None and part.step < 0:
            n = x.shape[dim]
            start, stop, step = part.indices(n)
            count = len(range(start, stop, step))
            first = n - 1 - start if count else 0
            x = torch.flip(x, (dim,))
            parts[k] = slice(first, first + count * -step, -step)
        dim += 1
    return x[tuple(parts)]


def _index_add(values, shape: tuple, index: tuple):
    """Zeros of ``shape`` with ``values`` added at ``index``, repeated positions summed: the
    flat positions ``index`` reads, then one index_add."""
    import torch

    size = math.prod(shape)
    where = _getitem(torch.arange(size, device=values.device).reshape(shape), index)
    flat = values.new_zeros(size).index_add(
        0, where.reshape(-1), values.broadcast_to(where.shape).reshape(-1)
    )
    return flat.reshape(shape)


def _scatter_add(values, shape: tuple, axis: int, index):
    return values.new_zeros(shape).scatter_add(axis, index, values.broadcast_to(index.shape))


def _isclose(a, b, rtol, atol, equal_nan):
    """torch.isclose wants one dtype; NumPy compares in the promoted one."""
    import torch

    common = torch.promote_types(a.dtype, b.dtype)
    return torch.isclose(a.to(common), b.to(common), rtol, atol, equal_nan)


def _addmm(input, a, b, beta, alpha):  # noqa: A002 - torch's name
    """``beta * input + alpha * (a @ b)`` in any rank; with beta 0 the input is not read."""
    import torch

    out = torch.matmul(a, b)
    if alpha != 1:
        out = out * alpha
    if beta == 0:
        return out.broadcast_to(torch.broadcast_shapes(out.shape, input.shape)).clone()
    return out + (input if beta == 1 else input * beta)


def _prod(x, axis):
    """The product over ``axis`` (None: every axis), reduced axes kept."""
    import torch

    for dim in range(x.ndim) if axis is None else axis:
        x = torch.prod(x, dim, keepdim=True)
    return x


def _nll_loss(x, target, weight, ignore_index, reduction):
    """torch's nll_loss wants int64 targets and weights of the input's dtype; the weights are
    constants, as graphgrad's nll_loss sends them no gradient (torch's refuses to)."""
    import torch

    weight = None if weight is None else weight.detach().to(x.dtype)
    return torch.nn.functional.nll_loss(
        x, target.long(), weight, ignore_index=ignore_index, reduction=reduction
    )


def _topk_indices(x, k, axis, largest):
    """The first ``k`` of the stable order: torch.topk's order among ties is its own."""
    import torch

    return torch.argsort(x, dim=axis, descending=largest, stable=True).narrow(axis, 0, k)


def _cum_extremum_indices(x, axis, largest):
    import torch

    return (torch.cummax if largest else torch.cummin)(x, axis).indices


def _reach(out_shape, kernel, stride, dilation) -> list:
    """The padded input size that ``out_shape`` windows of ``kernel`` reach (ops/conv.py)."""
    return [
        (n - 1) * s + d * (k - 1) + 1 for n, k, s, d in zip(out_shape, kernel, stride, dilation)
    ]


def _pad(x, before, after):
    """``x`` (N, C, *S) padded with zeros, cropped where an amount is negative."""
    import torch

    if not any(before) and not any(after):
        return x
    amounts = [n for pair in reversed(list(zip(before, after))) for n in pair]
    return torch.nn.functional.pad(x, amounts)


def _conv(x, w, b, stride, lo, dilation, groups, out_shape):
    """ops/conv.Conv: ``lo`` padding in front, behind whatever ``out_shape`` windows need."""
    import torch

    spatial = list(x.shape[2:])
    after = [r - f - n for r, f, n in zip(_reach(out_shape, w.shape[2:], stride, dilation), lo,
                                          spatial)]  # fmt: skip
    zeros = [0] * len(stride)
    if list(lo) == after:  # torch's own symmetric padding
        return torch.convolution(x, w, b, stride, lo, dilation, False, zeros, groups)
    x = _pad(x, lo, after)
    return torch.convolution(x, w, b, stride, zeros, dilation, False, zeros, groups)


def _conv_transpose(y, w, b, stride, lo, dilation, groups, out_shape):
    """ops/conv.ConvTranspose: the whole transposed convolution, then the window ``lo`` to
    ``lo + out_shape`` of it (zeros where it reaches past the end), then the bias."""
    import torch

    zeros = [0] * len(stride)
    full = torch.convolution(y, w, None, stride, zeros, dilation, True, zeros, groups)
    after = [f + n - m for f, n, m in zip(lo, out_shape, full.shape[2:])]
    out = _pad(full, [-f for f in lo], after)
    return out if b is None else out + b.reshape((1, -1) + (1,) * len(stride))


def _conv_weight(x, y, stride, lo, dilation, groups, kernel):
    """ops/conv.ConvWeight: the weight gradient of conv for output gradient ``y``, by torch's
    convolution_backward (the weight only gives it the shape)."""
    import torch

    after = [r - f - n for r, f, n in zip(_reach(y.shape[2:], kernel, stride, dilation), lo,
                                          x.shape[2:])]  # fmt: skip
    x = _pad(x, lo, after)
    weight = y.new_empty(1).expand(y.shape[1], x.shape[1] // groups, *kernel)
    zeros = [0] * len(stride)
    return torch.ops.aten.convolution_backward(
        y, x, weight, None, stride, zeros, dilation, False, zeros, groups, (False, True, False)
    )[1]


def _max_pool_indices(x, kernel, stride, lo, dilation, out_shape):
    """ops/conv.MaxPoolIndices: torch's max_pool with return_indices (flat positions in each
    unpadded plane), in ceil mode where ``out_shape`` is the larger size."""
    import torch

    floor_shape = [(n + 2 * p - d * (k - 1) - 1) // s + 1
                   for n, k, s, p, d in zip(x.shape[2:], kernel, stride, lo, dilation)]  # fmt: skip
    pool = getattr(torch.nn.functional, f"max_pool{len(kernel)}d")
    _, indices = pool(x, kernel, stride, lo, dilation, ceil_mode=floor_shape != list(out_shape),
                      return_indices=True)  # fmt: skip
    if tuple(indices.shape[2:]) != tuple(out_shape):
        raise ValueError(
            f"max_pool_indices: torch's pooling of {tuple(x.shape)} by kernel {tuple(kernel)} "
            f"gives windows {tuple(indices.shape[2:])}, not {tuple(out_shape)}"
        )
    return indices


def _max_pool(x, indices):
    """ops/conv.MaxPool: each plane of ``x`` read at ``indices``."""
    import torch

    picked = torch.take_along_dim(x.flatten(2), indices.flatten(2), 2)
    return picked.reshape(indices.shape)


def _lstm_layer(xw, h0, c0, w_hh):
    """ops/recurrent.LSTMLayer: per step [h, c, i, f, g, o] side by side, (T, B, 6H)."""
    import torch

    hidden = h0.shape[-1]
    h, c, steps = h0, c0, []
    for t in range(xw.shape[0]):
        gates = torch.matmul(h, w_hh.mT) + xw[t]
        i, f, g, o = gates.split(hidden, -1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        steps.append(torch.cat([h, c, i, f, g, o], -1))
    return torch.stack(steps) if steps else xw.new_zeros(0, xw.shape[1], 6 * hidden)


def _gru_layer(xw, h0, w_hh, b_hh):
    """ops/recurrent.GRULayer: per step [h, r, z, n, W_hn h + b_hn], (T, B, 5H)."""
    import torch

    hidden = h0.shape[-1]
    h, steps = h0, []
    for t in range(xw.shape[0]):
        hw = torch.matmul(h, w_hh.mT) + b_hh
        x_r, x_z, x_n = xw[t].split(hidden, -1)
        h_r, h_z, hn = hw.split(hidden, -1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(r * hn + x_n)
        h = (h - n) * z + n
        steps.append(torch.cat([h, r, z, n, hn], -1))
    return torch.stack(steps) if steps else xw.new_zeros(0, xw.shape[1], 5 * hidden)


def _rnn_layer(xw, h0, w_hh, nonlinearity):
    """ops/recurrent.RNNLayer: the hidden states (T, B, H)."""
    import torch

    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    h, steps = h0, []
    for t in range(xw.shape[0]):
        h = act(torch.matmul(h, w_hh.mT) + xw[t])
        steps.append(h)
    return torch.stack(steps) if steps else xw.new_zeros(xw.shape)


def _pack(parts, batch):
    """ops/decomp.pack: each part flattened per matrix, side by side in the last axis."""
    import torch

    return torch.cat([p.reshape(*batch, -1) for p in parts], -1)


def _decomp_part(packed, start, stop, core):
    return packed[..., start:stop].reshape(*packed.shape[:-1], *core)


def _solve(a, b, vector):
    """``X`` with ``A @ X = B``; ``vector`` says what B is, where torch.linalg.solve guesses
    from the shapes (a batch of matrices shaped like A's batch of vectors, unsqueezed, cannot be
    mistaken)."""
    import torch

    if vector:
        return torch.linalg.solve(a, b.unsqueeze(-1)).squeeze(-1)
    if b.ndim == a.ndim - 1:
        b = b.unsqueeze(0)
    return torch.linalg.solve(a, b)


def _slogdet(a):
    import torch

    return torch.stack(torch.linalg.slogdet(a), -1)


def _cholesky(a, upper):
    """From A's lower triangle, as NumPy's (torch's upper=True reads the upper one)."""
    import torch

    low = torch.linalg.cholesky(a)
    return low.mT if upper else low


def _qr(a, mode):
    import torch

    q, r = torch.linalg.qr(a, mode)
    return _pack([r] if mode == "r" else [q, r], a.shape[:-2])


def _svd(a, full_matrices):
    import torch

    return _pack(torch.linalg.svd(a, full_matrices), a.shape[:-2])


def _eigh(a, uplo):
    import torch

    return _pack(torch.linalg.eigh(a, uplo), a.shape[:-2])


def _lstsq(a, b, rtol):
    """ops/decomp.LinalgLstsq: the pseudo-inverse's solution, not a LAPACK driver's."""
    import torch

    return torch.matmul(torch.linalg.pinv(a, atol=0.0, rtol=rtol), b)
