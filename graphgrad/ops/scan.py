"""Cumulative primitives: cumsum, cumprod, logcumsumexp, and the indices of cummax/cummin
(issue 13). ``axis`` is one non-negative int; the tensor layer handles 0-d tensors."""

import numpy as np

from . import Op, numpy_ns, register, shape_str
from .select import TakeAlongDim


def _axis_error(x, axis, *rest):
    return f"dim {axis} is out of range for a tensor of shape {shape_str(x)}"


def _reverse_cumsum(xp, x, axis):
    """``out[i] = x[i] + x[i + 1] + ...`` along ``axis``: the transpose of cumsum."""
    return xp.reverse(xp.cumsum(xp.reverse(x, axis), axis), axis)


@register
class Cumsum(Op):
    name, grad_fn_name, saves = "cumsum", "CumsumBackward0", False
    vjp_reads_inputs = False
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis):
        return np.cumsum(x, axis=axis)

    @staticmethod
    def vjp(ctx, g, x):
        (axis,) = ctx.params
        return (_reverse_cumsum(ctx.xp, g, axis),)


@register
class Cumprod(Op):
    name, grad_fn_name = "cumprod", "CumprodBackward0"
    vjp_reads_output = True
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis):
        return np.cumprod(x, axis=axis)

    @staticmethod
    def vjp(ctx, g, x):
        # torch's choice: the reverse cumsum of g * out divided by x while no element is zero,
        # else a formula without division: O(n) at first order, O(n^2) but differentiable
        # again under create_graph.
        (axis,) = ctx.params
        if not (x == 0).any():
            return (_reverse_cumsum(ctx.xp, g * ctx.out, axis) / x,)
        if ctx.xp is numpy_ns:
            return (_cumprod_grad_first_zero(g, x, ctx.out, axis),)
        return (_cumprod_grad_without_division(ctx.xp, g, x, axis),)


def _cumprod_grad_first_zero(g, x, out, axis):
    """The gradient where some x are zero, slice by slice around the first zero z: before it,
    the no-zero formula (out is 0 from z on); at it, the product before z times the sum of g[i]
    times the product of x after z up to i; after it, 0 (every output there has the factor
    x[z] = 0 besides x[k])."""
    n = x.shape[axis]
    positions = np.arange(n).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    is_zero = x == 0
    first = np.where(is_zero.any(axis, keepdims=True), is_zero.argmax(axis, keepdims=True), n)
    before = positions < first
    with np.errstate(divide="ignore", invalid="ignore"):
        grad = np.where(before, _reverse_cumsum(numpy_ns, g * out, axis) / x, 0)
    after = np.cumprod(np.where(positions > first, x, 1), axis=axis)
    at_zero = np.prod(np.where(before, x, 1), axis=axis, keepdims=True) * np.sum(
        np.where(positions >= first, g * after, 0), axis=axis, keepdims=True
    )
    return np.where(positions == first, at_zero, grad)


def _cumprod_grad_without_division(xp, g, x, axis):
    """``grad[k] = sum over i >= k of g[i] * prod(x[j] for j <= i, j != k)``: row k of an
    (n, n) matrix is the cumprod of x with x[k] replaced by one, so zeros need no care and the
    formula is differentiable again (O(n^2) memory along ``axis``)."""
    ndim = len(x.shape)
    n = x.shape[axis]
    to_last = tuple(d for d in range(ndim) if d != axis) + (axis,)
    x_last, g_last = xp.permute(x, to_last), xp.permute(g, to_last)
    rows = np.arange(n)
    without_k = xp.where(rows[:, None] == rows, 1.0, xp.expand_dims(x_last, (ndim - 1,)))
    products = xp.cumprod(without_k, ndim)
    reached = rows[:, None] <= rows  # output i >= k depends on x[k]
    terms = xp.where(reached, xp.expand_dims(g_last, (ndim - 1,)) * products, 0.0)
    return xp.permute(xp.sum(terms, ndim), tuple(np.argsort(to_last)))


@register
class Logcumsumexp(Op):
    """log(cumsum(exp(x))) by a running logaddexp: exact for any range of values."""

    name, grad_fn_name = "logcumsumexp", "LogcumsumexpBackward0"
    vjp_reads_output = True
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis):
        return np.logaddexp.accumulate(x, axis=axis)

    @staticmethod
    def vjp(ctx, g, x):
        # torch's formula: grad[k] = sum over i >= k of g[i] exp(x[k] - out[i]), summed in log
        # space, positive and negative parts of g apart, so nothing overflows.
        (axis,) = ctx.params
        xp, out = ctx.xp, ctx.out
        lowest = float(np.finfo(_dtype_of(x)).min)
        nonzero = g != 0
        log_abs = xp.log(xp.where(nonzero, g * xp.sign(g), 1.0))
        parts = []
        # ``lowest`` stands for log(0): a sum with it may round past it to -inf, which exp
        # takes to the 0 it means, so NumPy's overflow warning says nothing here.
        with np.errstate(over="ignore"):
            for side in (g > 0, g < 0):
                log_part = xp.where(side, log_abs, lowest) - out
                summed = xp.reverse(xp.logcumsumexp(xp.reverse(log_part, axis), axis), axis)
                parts.append(xp.exp(summed + x))
        return (parts[0] - parts[1],)


def _dtype_of(x):
    return getattr(x, "_data", x).dtype  # a tensor under create_graph, else an array


@register
class CumExtremumIndices(Op):
    """Where the running maximum (``largest``) or minimum along ``axis`` was last reached: ties
    take the latest position, and a NaN holds from where it appears, as torch's cummax."""

    name, differentiable, saves = "cum_extremum_indices", False, False
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis, largest):
        running = (np.maximum if largest else np.minimum).accumulate(x, axis=axis)
        reached = x == running
        if x.dtype.kind == "f":
            reached |= np.isnan(x)
        positions = np.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1))
        return np.maximum.accumulate(np.where(reached, positions, 0), axis=axis)


register(type("Cummax", (TakeAlongDim,), dict(name="cummax", grad_fn_name="CummaxBackward0")))
register(type("Cummin", (TakeAlongDim,), dict(name="cummin", grad_fn_name="CumminBackward0")))
