"""The NumPy side of ``ctx.xp``: what a first-order vjp calls; the tensor side mirrors its names."""

import sys

import numpy as np

from . import OPS

exp, log, sin, cos, sign = np.exp, np.log, np.sin, np.cos, np.sign
where = np.where
reshape = np.reshape
zeros_like = np.zeros_like


def broadcast_to(x, shape):
    """``x`` repeated to ``shape``, as a new array: the gradient it becomes must be writable, and
    filling one is cheaper than NumPy's Python-level broadcast_to."""
    out = np.empty(shape, dtype=x.dtype)
    out[...] = x
    return out


expand_dims = np.expand_dims


def sum(x, axis=None, keepdims=False):  # noqa: A001 - mirrors Tensor.sum
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


def sum_to(x, shape: tuple):
    """Sum a broadcast result back to ``shape`` (the inverse of broadcasting)."""
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead:
        x = x.sum(axis=tuple(range(lead)))  # a fresh array, not a view: it can become a .grad
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and x.shape[i] != 1)
    return x.sum(axis=stretched, keepdims=True) if stretched else x


def permute(x, dims):
    return np.transpose(x, dims)


def matrix_transpose(x):
    return x.mT


def cast(x, np_dtype):
    return x.astype(np_dtype, copy=False)


_BLOCK = 1 << 15  # elements: a block's mask and operands stay in the L2 cache


def relu_backward(g, out):
    """``g * (out > 0)``, ReLU's gradient. A large gradient goes in blocks, so that the bool
    mask never takes memory the size of the layer (torch's threshold_backward makes none): a
    784-1024-1024-10 step's peak is 0.5 MiB lower."""
    size = g.size
    if size <= _BLOCK or g.shape != out.shape or not (g.flags.c_contiguous
                                                       and out.flags.c_contiguous):
        return g * (out > 0)
    result = np.empty(g.shape, g.dtype)
    flat_g, flat_out, flat_result = g.reshape(-1), out.reshape(-1), result.reshape(-1)
    mask = np.empty(_BLOCK, bool)
    for start in range(0, size, _BLOCK):
        stop = min(start + _BLOCK, size)
        active = np.greater(flat_out[start:stop], 0, out=mask[: stop - start])
        np.multiply(flat_g[start:stop], active, out=flat_result[start:stop])
    return result


def index_add(shape, index, advanced, values):
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices accumulate."""
    return OPS["index_add"].forward(values, shape, index, advanced)


def scatter_add(shape, axis, index, values):
    return OPS["scatter_add"].forward(values, shape, axis, index)


def gather(x, axis, index):
    return np.take_along_axis(x, index, axis=axis)


def prod_of_others(x, axis):
    """For each element, the product of the other elements along ``axis``, without dividing:
    the exclusive cumulative product from the left times the one from the right (torch's)."""
    kept = tuple(n for i, n in enumerate(x.shape) if i not in axis)
    moved = np.moveaxis(x, axis, tuple(range(len(axis)))).reshape((-1,) + kept)
    left = np.cumprod(np.concatenate([np.ones_like(moved[:1]), moved[:-1]]), axis=0)
    right = np.cumprod(np.concatenate([np.ones_like(moved[:1]), moved[:0:-1]]), axis=0)[::-1]
    others = (left * right).reshape(tuple(x.shape[a] for a in axis) + kept)
    return np.moveaxis(others, tuple(range(len(axis))), axis)


# ---------------------------------------------------------------------- for ops/special.py

sqrt, cosh, sinh, tanh, trunc, isfinite = np.sqrt, np.cosh, np.sinh, np.tanh, np.trunc, np.isfinite
sigmoid = OPS["sigmoid"].forward


def softplus(x):
    """log(1 + e^x) as torch's softplus with its default beta 1 and threshold 20."""
    return OPS["softplus"].forward(x, 1.0, 20.0)


# ------------------------------------------------------------ for ops/select.py and ops/scan.py

def cumsum(x, axis):
    return np.cumsum(x, axis=axis)


def cumprod(x, axis):
    return np.cumprod(x, axis=axis)


def logcumsumexp(x, axis):
    return np.logaddexp.accumulate(x, axis=axis)


def reverse(x, axis):
    """``x`` read backwards along ``axis`` (a view: its base is the caller's fresh result)."""
    return np.flip(x, axis)


# ---------------------------------------------------------------------- for ops/decomp.py

def einsum(subscripts, *operands):
    return OPS["einsum"].forward(*operands, subscripts)


def solve(a, b):
    """``a^-1 b`` for a batch of matrices ``b``."""
    return np.linalg.solve(a, b)


def primitive(name, inputs, params):
    """Primitive ``name``'s forward (the tensor side records it)."""
    return OPS[name].forward(*inputs, *params)


def narrow(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def concat_last(parts):
    return np.concatenate(parts, axis=-1)


def embed_last(x, start, total):
    """Zeros of x's shape but ``total`` long in the last axis, with ``x`` from ``start``."""
    out = np.zeros(x.shape[:-1] + (total,), dtype=x.dtype)
    out[..., start : start + x.shape[-1]] = x
    return out


def eye_like(x, n):
    return np.eye(n, dtype=x.dtype)


def ones_vector(x, n):
    return np.ones(n, dtype=x.dtype)


def tril_mask(x, offset):
    """Ones on and below diagonal ``offset`` of x's last two dimensions, zeros above."""
    return np.tri(*x.shape[-2:], offset, dtype=x.dtype)


def is_zero(x) -> bool:
    return not x.any()


def any_zero(x) -> bool:
    return bool((x == 0).any())


# ---------------------------------------------------------------------- for ops/conv.py


def conv(x, w, b, stride, lo, dilation, groups, out_shape):
    return OPS["conv"].forward(x, w, b, stride, lo, dilation, groups, out_shape)


def conv_transpose(y, w, b, stride, lo, dilation, groups, out_shape):
    return OPS["conv_transpose"].forward(y, w, b, stride, lo, dilation, groups, out_shape)


def conv_weight(x, y, stride, lo, dilation, groups, kernel):
    return OPS["conv_weight"].forward(x, y, stride, lo, dilation, groups, kernel)


def max_pool_backward(g, indices, shape):
    """Zeros of ``shape`` (N, C, *S) with ``g`` added at each plane's flat ``indices``: one
    bincount over all planes (windows may overlap, so positions repeat)."""
    planes, size = shape[0] * shape[1], int(np.prod(shape[2:]))
    flat = indices.reshape(planes, -1) + np.arange(0, planes * size, size)[:, None]
    sums = np.bincount(flat.ravel(), weights=g.ravel(), minlength=planes * size)
    return sums.astype(g.dtype, copy=False).reshape(shape)

# ---------------------------------------------------------------------- for ops/recurrent.py


def lstm_layer_backward(grad, out, h0, c0, w_hh):
    return OPS["lstm_layer"].backward_numpy(grad, out, h0, c0, w_hh)


def gru_layer_backward(grad, out, h0, w_hh):
    return OPS["gru_layer"].backward_math(
        grad, out, h0, w_hh, lambda xs, axis: np.concatenate(xs, axis), np.zeros_like
    )


def rnn_layer_backward(grad, out, h0, w_hh, nonlinearity):
    return OPS["rnn_layer"].backward_math(
        grad, out, h0, w_hh, nonlinearity, lambda xs, axis: np.concatenate(xs, axis),
        np.zeros_like,
    )


class VjpContext:
    """What a first-order vjp reads of its node (``params``, ``out``, ``needs_input_grad``,
    ``xp``) where no engine node exists: a Graph run, explain, a compiled replay."""

    __slots__ = ("params", "out", "needs_input_grad")
    xp = None  # this module, set below: a class body cannot name the module it is in

    def __init__(self, params, out, needs_input_grad) -> None:
        self.params, self.out, self.needs_input_grad = params, out, needs_input_grad


VjpContext.xp = sys.modules[__name__]
