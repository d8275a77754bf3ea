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
    return x.sign() if isinstance(x, Tensor) else np.sign(x)


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
