"""The tensor side of ``ctx.xp``: what a vjp calls under ``create_graph=True``.

Same names as ``ops.numpy_ns``, built from differentiable tensor operations, so that a vjp run on
tensors records the backward pass as a graph of its own.
"""

import numpy as np

from . import _dtype
from .ops import OPS
from .tensor import Tensor, _binary, apply, where, wrap  # noqa: F401  (re-exported for vjps)


def exp(x):
    return x.exp()


def log(x):
    return x.log()


def sin(x):
    return x.sin()


def cos(x):
    return x.cos()


def sign(x):
    return x.sign()


def relu_backward(g, out):
    return g * (out > 0)


def zeros_like(x):
    return wrap(np.zeros(tuple(x.shape), x._data.dtype))


def reshape(x, shape):
    return apply(OPS["reshape"], (x,), (tuple(shape),))


def broadcast_to(x, shape):
    return apply(OPS["expand"], (x,), (tuple(shape),))


def expand_dims(x, axes):
    shape = list(x.shape)
    for a in sorted(axes):
        shape.insert(a, 1)
    return reshape(x, shape)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors Tensor.sum
    if axis is not None:
        axis = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    return apply(OPS["sum"], (x,), (axis, keepdims))


def sum_to(x, shape):
    if tuple(x.shape) == tuple(shape):
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    return reshape(sum(x, axes, keepdims=True), shape)


def permute(x, dims):
    return apply(OPS["permute"], (x,), (tuple(dims),))


def matrix_transpose(x):
    return x.transpose(-1, -2)


def cast(x, dtype):
    return apply(OPS["cast"], (x,), (_dtype.to_numpy_dtype(dtype),))


def index_add(shape, index, advanced, values):
    return apply(OPS["index_add"], (values,), (tuple(shape), index, advanced))


def scatter_add(shape, axis, index, values):
    return apply(OPS["scatter_add"], (values,), (tuple(shape), axis, index))


def gather(x, axis, index):
    return apply(OPS["gather"], (x,), (axis, index))


def prod_of_others(x, axis):
    """For each element, the product of the other elements along ``axis``, made of products of
    shifted slices only: no division, so zeros are safe, and differentiable again at any order.
    It is the exclusive product from the left times the exclusive product from the right."""
    dims = tuple(axis) + tuple(i for i in range(x.ndim) if i not in axis)
    moved = permute(x, dims)
    reduced, kept = tuple(moved.shape[: len(axis)]), tuple(moved.shape[len(axis) :])
    rows = reshape(moved, (-1,) + kept)  # the reduced elements along dim 0
    backwards = (slice(None, None, -1),)
    left = _exclusive_cumprod(rows)
    right = _slice(_exclusive_cumprod(_slice(rows, backwards)), backwards)
    return permute(reshape(left * right, reduced + kept), tuple(np.argsort(dims)))


def _exclusive_cumprod(rows):
    """``out[i] = rows[0] * ... * rows[i - 1]`` along dim 0 (``out[0]`` is ones), by doubling:
    log2(n) steps of one product each."""
    n = rows.shape[0]
    ones = wrap(np.ones((1,) + tuple(rows.shape[1:]), rows._data.dtype))
    out = apply(OPS["cat"], (ones, _slice(rows, (slice(0, n - 1),))), (0,))
    step = 1
    while step < n:
        shifted = _slice(out, (slice(0, n - step),)) * _slice(out, (slice(step, n),))
        out = apply(OPS["cat"], (_slice(out, (slice(0, step),)), shifted), (0,))
        step *= 2
    return out


def _slice(x, index):
    return apply(OPS["getitem"], (x,), (index, False))

# ---------------------------------------------------------------------- for ops/special.py


def _special(name):
    """The tensor side of an elementwise primitive: that primitive applied to the tensor."""
    def function(x):
        return apply(OPS[name], (x,))

    function.__name__ = name
    return function


sqrt, cosh, sinh, tanh, trunc, sigmoid, isfinite = (
    _special(name) for name in ("sqrt", "cosh", "sinh", "tanh", "trunc", "sigmoid", "isfinite")
)


def softplus(x):
    return apply(OPS["softplus"], (x,), (1.0, 20.0))


# ------------------------------------------------------------ for ops/select.py and ops/scan.py

def cumsum(x, axis):
    return apply(OPS["cumsum"], (x,), (axis,))


def cumprod(x, axis):
    return apply(OPS["cumprod"], (x,), (axis,))


def logcumsumexp(x, axis):
    return apply(OPS["logcumsumexp"], (x,), (axis,))


def reverse(x, axis):
    return _slice(x, (slice(None),) * axis + (slice(None, None, -1),))


# ---------------------------------------------------------------------- for ops/decomp.py

def einsum(subscripts, *operands):
    return apply(OPS["einsum"], operands, (subscripts,))


def solve(a, b):
    return apply(OPS["linalg_solve"], (a, b), (False,))


def primitive(name, inputs, params):
    return apply(OPS[name], inputs, params)


def narrow(x, axis, start, stop):
    return _slice(x, (slice(None),) * axis + (slice(start, stop),))


def concat_last(parts):
    return apply(OPS["cat"], tuple(parts), (parts[0].ndim - 1,))


def embed_last(x, start, total):
    batch, width, dtype = tuple(x.shape[:-1]), x.shape[-1], x._data.dtype
    before = wrap(np.zeros(batch + (start,), dtype))
    after = wrap(np.zeros(batch + (total - start - width,), dtype))
    return apply(OPS["cat"], (before, x, after), (x.ndim - 1,))


def eye_like(x, n):
    return wrap(np.eye(n, dtype=x._data.dtype))


def ones_vector(x, n):
    return wrap(np.ones(n, dtype=x._data.dtype))


def tril_mask(x, offset):
    return wrap(np.tri(*x.shape[-2:], offset, dtype=x._data.dtype))


def is_zero(x) -> bool:
    return not x._data.any()


def any_zero(x) -> bool:
    return bool((x._data == 0).any())


# ---------------------------------------------------------------------- for ops/conv.py


def conv(x, w, b, stride, lo, dilation, groups, out_shape):
    return apply(OPS["conv"], (x, w, b), (stride, lo, dilation, groups, out_shape))


def conv_transpose(y, w, b, stride, lo, dilation, groups, out_shape):
    return apply(OPS["conv_transpose"], (y, w, b), (stride, lo, dilation, groups, out_shape))


def conv_weight(x, y, stride, lo, dilation, groups, kernel):
    return apply(OPS["conv_weight"], (x, y), (stride, lo, dilation, groups, kernel))


def max_pool_backward(g, indices, shape):
    flat_shape = (shape[0], shape[1], int(np.prod(shape[2:])))
    rows = indices._data.reshape(flat_shape[:2] + (-1,))
    values = reshape(g, flat_shape[:2] + (rows.shape[2],))
    return reshape(apply(OPS["scatter_add"], (values,), (flat_shape, 2, rows)), shape)

# ---------------------------------------------------------------------- for ops/recurrent.py


def lstm_layer_backward(grad, out, h0, c0, w_hh):
    return OPS["lstm_layer"].backward_math(
        grad, out, h0, c0, w_hh, lambda xs, axis: apply(OPS["cat"], tuple(xs), (axis,)),
        lambda x: apply(OPS["tanh"], (x,)), zeros_like,
    )


def gru_layer_backward(grad, out, h0, w_hh):
    return OPS["gru_layer"].backward_math(
        grad, out, h0, w_hh, lambda xs, axis: apply(OPS["cat"], tuple(xs), (axis,)), zeros_like
    )


def rnn_layer_backward(grad, out, h0, w_hh, nonlinearity):
    return OPS["rnn_layer"].backward_math(
        grad, out, h0, w_hh, nonlinearity,
        lambda xs, axis: apply(OPS["cat"], tuple(xs), (axis,)), zeros_like,
    )
