"""Reductions and the fused, numerically stable softmax family.

``axis`` is always None or a tuple of non-negative ints here; the tensor layer normalises torch's
``dim`` (int, negative, tuple) before calling.
"""

import math

import numpy as np

from . import Op, numpy_ns, register


def _unreduce(xp, g, x_shape, axis, keepdims):
    """Give a reduced gradient back its reduced axes (as size 1) so that it broadcasts over x."""
    if axis is not None and not keepdims:
        g = xp.expand_dims(g, axis)
    return g


def _axis_error(x, axis, keepdims=None):
    return f"axis {axis} is out of range for a tensor of shape {tuple(x.shape)}"


@register
class Sum(Op):
    name, grad_fn_name, saves = "sum", "SumBackward1", False
    error = staticmethod(_axis_error)

    @classmethod
    def node_name(cls, node):
        return "SumBackward0" if node.params[0] is None else "SumBackward1"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.add.reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def vjp(ctx, g, x):
        axis, keepdims = ctx.params
        return (ctx.xp.broadcast_to(_unreduce(ctx.xp, g, x.shape, axis, keepdims), x.shape),)


@register
class Mean(Op):
    name, grad_fn_name, saves = "mean", "MeanBackward1", False
    error = staticmethod(_axis_error)

    @classmethod
    def node_name(cls, node):
        return "MeanBackward0" if node.params[0] is None else "MeanBackward1"

    @staticmethod
    def forward(x, axis, keepdims):
        total = np.add.reduce(x, axis=axis, keepdims=keepdims)
        if x.size == 0:  # torch's nan for an empty mean, without NumPy's warning
            with np.errstate(invalid="ignore"):
                return total / _count(x.shape, axis)
        return total / _count(x.shape, axis)

    @staticmethod
    def vjp(ctx, g, x):
        axis, keepdims = ctx.params
        g = _unreduce(ctx.xp, g, x.shape, axis, keepdims)
        return (ctx.xp.broadcast_to(g, x.shape) / _count(x.shape, axis),)


def _count(shape, axis) -> int:
    """How many elements a reduction over ``axis`` combines."""
    return math.prod(shape) if axis is None else math.prod(shape[a] for a in axis)


@register
class Amax(Op):
    """Largest value over ``axis``; tied maxima share the gradient equally (as torch.amax)."""

    name, grad_fn_name = "amax", "AmaxBackward0"
    reduce = np.maximum.reduce
    vjp_reads_output = True

    @classmethod
    def forward(cls, x, axis, keepdims):
        return cls.reduce(x, axis=axis, keepdims=keepdims)  # NumPy refuses an empty reduced axis

    @staticmethod
    def vjp(ctx, g, x):
        xp = ctx.xp
        axis, keepdims = ctx.params
        g = _unreduce(xp, g, x.shape, axis, keepdims)
        mask = x == _unreduce(xp, ctx.out, x.shape, axis, keepdims)
        count = xp.sum(xp.cast(mask, x.dtype), axis, keepdims=True)
        return ((g / count) * mask,)

    @staticmethod
    def error(x, axis, keepdims):
        if x.size == 0:
            return f"cannot reduce a tensor of shape {tuple(x.shape)} with no elements"
        return _axis_error(x, axis)


@register
class Amin(Amax):
    name, grad_fn_name = "amin", "AminBackward0"
    reduce = np.minimum.reduce


@register
class Max(Amax):
    """``x.max()`` over all elements: torch names its node MaxBackward1."""

    name, grad_fn_name = "max", "MaxBackward1"


@register
class Min(Amin):
    name, grad_fn_name = "min", "MinBackward1"


@register
class Prod(Op):
    name, grad_fn_name = "prod", "ProdBackward1"
    error = staticmethod(_axis_error)
    vjp_reads_output = True

    @staticmethod
    def forward(x, axis):
        return np.prod(x, axis=axis, keepdims=True)

    @staticmethod
    def vjp(ctx, g, x):
        # torch's choice: out / x while no element is zero, else the product of the others.
        (axis,) = ctx.params
        if not (x == 0).any():
            return (g * (ctx.out / x),)
        return (g * ctx.xp.prod_of_others(x, axis),)


@register
class Logsumexp(Op):
    """log(sum(exp(x))) without overflow: the maximum is taken out first, as torch does."""

    name, grad_fn_name = "logsumexp", "LogsumexpBackward0"
    error = staticmethod(_axis_error)
    vjp_reads_output = True

    @staticmethod
    def forward(x, axis, keepdims):
        m = _finite_max(x, axis)
        with np.errstate(divide="ignore"):
            out = np.log(np.add.reduce(np.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axis)

    @staticmethod
    def vjp(ctx, g, x):
        xp = ctx.xp
        axis, keepdims = ctx.params
        out = _unreduce(xp, ctx.out, x.shape, axis, keepdims)
        return (_unreduce(xp, g, x.shape, axis, keepdims) * xp.exp(x - out),)


def _finite_max(x, axis):
    """The maximum along ``axis`` with infinities replaced by 0, so that x - max stays defined."""
    if x.size == 0:
        return np.zeros((), dtype=x.dtype)
    m = np.maximum.reduce(x, axis=axis, keepdims=True)
    return np.where(np.isinf(m), 0, m).astype(x.dtype, copy=False)


@register
class Softmax(Op):
    name, grad_fn_name = "softmax", "SoftmaxBackward0"
    error = staticmethod(_axis_error)
    vjp_reads_output = True

    @staticmethod
    def forward(x, axis):
        e = np.exp(x - np.maximum.reduce(x, axis=axis, keepdims=True))
        return e / np.add.reduce(e, axis=axis, keepdims=True)

    @staticmethod
    def vjp(ctx, g, x):
        (axis,) = ctx.params
        out = ctx.out
        return (out * (g - ctx.xp.sum(g * out, axis, keepdims=True)),)


@register
class LogSoftmax(Op):
    name, grad_fn_name = "log_softmax", "LogSoftmaxBackward0"
    error = staticmethod(_axis_error)
    vjp_reads_output = True

    @staticmethod
    def forward(x, axis):
        shifted = x - np.maximum.reduce(x, axis=axis, keepdims=True)
        return shifted - np.log(np.add.reduce(np.exp(shifted), axis=axis, keepdims=True))

    @staticmethod
    def vjp(ctx, g, x):
        (axis,) = ctx.params
        xp = ctx.xp
        return (g - xp.exp(ctx.out) * xp.sum(g, axis, keepdims=True),)


class _Arg(Op):
    differentiable, saves = False, False

    @staticmethod
    def error(x, axis, keepdims):
        if x.size == 0:
            return f"cannot take the arg-extremum of an empty tensor of shape {tuple(x.shape)}"
        return _axis_error(x, axis)


@register
class Argmax(_Arg):
    name = "argmax"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.argmax(x, axis=axis, keepdims=keepdims)


@register
class Argmin(_Arg):
    name = "argmin"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.argmin(x, axis=axis, keepdims=keepdims)


@register
class All(Op):
    """Whether every element (along ``axis``) is nonzero: a bool tensor, never a gradient. A
    primitive, not a NumPy call, so that a compiled step computes it from each call's input."""

    name, differentiable, saves = "all", False, False
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis, keepdims):
        return np.all(x, axis=axis, keepdims=keepdims)


@register
class Any(All):
    name = "any"

    @staticmethod
    def forward(x, axis, keepdims):
        return np.any(x, axis=axis, keepdims=keepdims)


@register
class NllLoss(Op):
    """torch's nll_loss: ``-x[i, target[i]]`` over log-probabilities ``x`` (classes along axis
    1, or 0 for one sample), weighted, reduced. The class targets are an input rather than a
    parameter, so that a recorded step (graphgrad.compile) reads each batch's labels. Forward
    and gradient follow the composite ``-gather(x, target) * weight`` then sum / mean, operation
    for operation, so the bits are those of that chain."""

    name, grad_fn_name = "nll_loss", "NllLossBackward0"

    @staticmethod
    def forward(x, target, weight, ignore_index, reduction):
        axis, safe, ignored = _nll_targets(x, target, ignore_index)
        picked = _pick(x, axis, safe)
        if weight is None and reduction == "mean" and ignored is None:
            return np.negative(np.add.reduce(picked, axis=None) / picked.size)
        weights = _nll_weights(x, safe, ignored, weight)
        loss = np.negative(picked) * weights
        if reduction == "none":
            return loss
        total = np.add.reduce(loss, axis=None)
        return total / np.add.reduce(weights, axis=None) if reduction == "mean" else total

    @staticmethod
    def vjp(ctx, g, x, target, weight):
        ignore_index, reduction = ctx.params
        # under create_graph the operands arrive as tensors; the targets and weights are
        # constants, read as arrays
        target, weight = np.asarray(target), None if weight is None else np.asarray(weight)
        axis, safe, ignored = _nll_targets(x, target, ignore_index)
        xp = ctx.xp
        if weight is None and reduction == "mean" and ignored is None:
            picked_grad = xp.broadcast_to(-g, safe.shape) / safe.size
        else:
            weights = _nll_weights(x, safe, ignored, weight)
            if reduction == "mean":
                g = g / np.add.reduce(weights, axis=None)
            picked_grad = -(xp.broadcast_to(g, safe.shape) * weights)
        if xp is numpy_ns and x.ndim == 2:  # one target a row: a plain indexed add suffices
            grad = np.zeros(x.shape, picked_grad.dtype)
            grad[np.arange(len(safe)), safe] += picked_grad
            return grad, None, None
        index = np.expand_dims(safe, axis)
        grad = xp.scatter_add(x.shape, axis, index, xp.expand_dims(picked_grad, (axis,)))
        return grad, None, None


def _nll_targets(x, target, ignore_index):
    """The class axis, the targets as int64 with ignored ones at class 0, and which are ignored
    (None when none is); a target outside the classes raises torch's IndexError."""
    axis = 1 if x.ndim >= 2 else 0
    safe = target.astype(np.int64, copy=False)
    # As unsigned a negative target is huge: where ignore_index is no class (the default -100),
    # one comparison clears the common case, every target a class; only otherwise are the
    # ignored and the bad ones told apart.
    classes = x.shape[axis]
    if not 0 <= ignore_index < classes and not (safe.view(np.uint64) >= classes).any():
        return axis, safe, None
    ignored = safe == ignore_index
    safe = np.where(ignored, 0, safe)
    bad = safe[(safe < 0) | (safe >= classes)]
    if bad.size:
        raise IndexError(f"Target {int(bad.flat[0])} is out of bounds.")
    return axis, safe, ignored if ignored.any() else None


def _pick(x, axis, safe):
    if x.ndim == 2:
        return x[np.arange(len(safe)), safe]
    return np.take_along_axis(x, np.expand_dims(safe, axis), axis=axis).squeeze(axis)


def _nll_weights(x, safe, ignored, weight):
    weights = np.ones(safe.shape) if weight is None else weight[safe]
    if ignored is not None:
        weights = np.where(ignored, 0.0, weights)
    return weights.astype(np.asarray(x).dtype)
