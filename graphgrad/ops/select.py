"""Sorting and selection primitives (issue 13).

The order of a sort (or of a top-k) is data, not a parameter: ``argsort`` and ``topk_indices``
compute it as primitives of their own, and ``take_along_dim`` takes it as an input, so that a
recorded step (graphgrad.compile) sorts each new batch rather than replaying the first order.
"""

import numpy as np

from . import Op, register, shape_str


def _axis_error(x, axis, *rest):
    return f"dim {axis} is out of range for a tensor of shape {shape_str(x)}"


@register
class Argsort(Op):
    """The stable order along ``axis``; descending keeps tied elements in their first order and
    puts NaN first, as torch's ``sort(stable=True, descending=True)``."""

    name, differentiable, saves = "argsort", False, False
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, axis, descending):
        if not descending:
            return np.argsort(x, axis=axis, kind="stable")
        # The ascending stable order of the reversed array, read backwards: ties keep their
        # order and no negation is needed (none exists for bool, unsigned or NaN).
        backwards = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
        return x.shape[axis] - 1 - np.flip(backwards, axis)


@register
class TopkIndices(Op):
    """The positions of the ``k`` largest (or smallest) elements along ``axis``, in order: a
    partition then a sort of the ``k`` only."""

    name, differentiable, saves = "topk_indices", False, False
    error = staticmethod(_axis_error)

    @staticmethod
    def forward(x, k, axis, largest):
        n = x.shape[axis]
        if k in (0, n):
            return np.take(Argsort.forward(x, axis, largest), np.arange(k), axis=axis)
        kth = n - k if largest else k - 1
        picked = np.argpartition(x, kth, axis=axis)
        picked = np.take(picked, np.arange(n - k, n) if largest else np.arange(k), axis=axis)
        order = Argsort.forward(np.take_along_axis(x, picked, axis=axis), axis, largest)
        return np.take_along_axis(picked, order, axis=axis)


@register
class TakeAlongDim(Op):
    """``out[..., i, ...] = x[..., index[..., i, ...], ...]`` along ``axis``, the index an input
    (torch.take_along_dim). Subclasses name the node as torch names the op that chose it."""

    name, grad_fn_name = "take_along_dim", "GatherBackward0"

    @staticmethod
    def forward(x, index, axis, *_):
        return np.take_along_axis(x, index, axis=axis)

    @staticmethod
    def vjp(ctx, g, x, index):
        axis = ctx.params[0]
        return ctx.xp.scatter_add(x.shape, axis, np.asarray(index), g), None

    @staticmethod
    def error(x, index, axis, *_):
        return (
            f"index of shape {shape_str(index)} does not fit input {shape_str(x)} along dim {axis}"
        )


@register
class Sort(TakeAlongDim):
    """The values of a sort; params (axis, stable): torch names the node by ``stable``."""

    name, grad_fn_name = "sort", "SortBackward0"

    @classmethod
    def node_name(cls, node):
        return "SortBackward1" if node.params[1] else "SortBackward0"


register(type("Topk", (TakeAlongDim,), dict(name="topk", grad_fn_name="TopkBackward0")))
