"""Shape primitives: views, broadcasting, indexing, joining. Their vjps only move gradients."""

import numpy as np

from . import Op, register, shape_str


@register
class Reshape(Op):
    name, grad_fn_name, saves = "reshape", "ViewBackward0", False
    forward = staticmethod(np.reshape)

    @staticmethod
    def vjp(ctx, g, x):
        return (ctx.xp.reshape(g, x.shape),)

    @staticmethod
    def error(x, shape):
        return f"shape {tuple(x.shape)} ({x.size} elements) cannot be reshaped to {tuple(shape)}"


# Same primitive, the names torch gives the node for each way of calling it.
for _name, _grad_fn in [
    ("unsqueeze", "UnsqueezeBackward0"),
    ("squeeze", "SqueezeBackward0"),
    ("squeeze_dim", "SqueezeBackward1"),
    ("squeeze_dims", "SqueezeBackward2"),
    ("flatten", "ViewBackward0"),
    ("view", "ViewBackward0"),
]:
    register(
        type(_name.title().replace("_", ""), (Reshape,), dict(name=_name, grad_fn_name=_grad_fn))
    )


@register
class Permute(Op):
    name, grad_fn_name, saves = "permute", "PermuteBackward0", False
    forward = staticmethod(np.transpose)

    @staticmethod
    def vjp(ctx, g, x):
        (dims,) = ctx.params
        return (ctx.xp.permute(g, tuple(np.argsort(dims))),)

    @staticmethod
    def error(x, dims):
        return (
            f"dims {tuple(dims)} are not a permutation of the {x.ndim} dimensions of {shape_str(x)}"
        )


register(type("Transpose", (Permute,), dict(name="transpose", grad_fn_name="TransposeBackward0")))
register(type("T", (Permute,), dict(name="t", grad_fn_name="TBackward0")))


@register
class Expand(Op):
    name, grad_fn_name, saves = "expand", "ExpandBackward0", False
    forward = staticmethod(np.broadcast_to)

    @staticmethod
    def vjp(ctx, g, x):
        return (g,)  # the engine sums the expanded gradient back to x's shape

    @staticmethod
    def error(x, shape):
        return f"shape {shape_str(x)} cannot be expanded to {tuple(shape)}"


@register
class Repeat(Op):
    name, grad_fn_name, saves = "repeat", "RepeatBackward0", False
    forward = staticmethod(np.tile)

    @staticmethod
    def vjp(ctx, g, x):
        (reps,) = ctx.params
        in_shape = (1,) * (len(reps) - x.ndim) + tuple(x.shape)
        split = [n for pair in zip(reps, in_shape) for n in pair]
        summed = ctx.xp.sum(ctx.xp.reshape(g, tuple(split)), tuple(range(0, 2 * len(reps), 2)))
        return (ctx.xp.reshape(summed, x.shape),)

    @staticmethod
    def error(x, reps):
        return (
            f"repeat sizes {tuple(reps)} are fewer than the {x.ndim} dimensions of {shape_str(x)}"
        )


@register
class Getitem(Op):
    """``x[index]``. params: the index (arrays, not tensors) and whether it is advanced indexing,
    in which case repeated positions must accumulate their gradient."""

    name, grad_fn_name, saves = "getitem", "IndexBackward0", False

    @classmethod
    def node_name(cls, node):
        index, advanced = node.params
        if advanced:
            return "IndexBackward0"
        parts = index if isinstance(index, tuple) else (index,)
        return "SelectBackward0" if any(isinstance(p, int) for p in parts) else "SliceBackward0"

    @staticmethod
    def forward(x, index, advanced):
        return x[index]

    @staticmethod
    def vjp(ctx, g, x):
        index, advanced = ctx.params
        return (ctx.xp.index_add(x.shape, index, advanced, g),)

    @staticmethod
    def error(x, index, advanced):
        return f"index {_index_str(index)} does not fit a tensor of shape {shape_str(x)}"


def _index_str(index):
    parts = index if isinstance(index, tuple) else (index,)
    return (
        "["
        + ", ".join(f"array{shape_str(p)}" if isinstance(p, np.ndarray) else repr(p) for p in parts)
        + "]"
    )


@register
class IndexAdd(Op):
    """Zeros of ``shape`` with ``values`` added at ``index``: the transpose of getitem."""

    name, grad_fn_name, saves = "index_add", "IndexPutBackward0", False

    @staticmethod
    def forward(values, shape, index, advanced):
        out = np.zeros(shape, dtype=values.dtype)
        if advanced:
            np.add.at(out, index, values)
        else:
            out[index] = values
        return out

    @staticmethod
    def vjp(ctx, g, values):
        _, index, advanced = ctx.params
        return (g[index],)


@register
class Gather(Op):
    """torch.gather: ``out[i][j] = x[i][index[i][j]]`` along ``axis``."""

    name, grad_fn_name, saves = "gather", "GatherBackward0", False

    @staticmethod
    def forward(x, axis, index):
        return np.take_along_axis(x, index, axis=axis)

    @staticmethod
    def vjp(ctx, g, x):
        axis, index = ctx.params
        return (ctx.xp.scatter_add(x.shape, axis, index, g),)

    @staticmethod
    def error(x, axis, index):
        return (
            f"index of shape {shape_str(index)} does not fit input {shape_str(x)} along dim {axis}"
        )


@register
class ScatterAdd(Op):
    name, grad_fn_name, saves = "scatter_add", "ScatterAddBackward0", False

    @staticmethod
    def forward(values, shape, axis, index):
        out = np.zeros(shape, dtype=values.dtype)
        np.add.at(out, _along_axis(index, axis), values)
        return out

    @staticmethod
    def vjp(ctx, g, values):
        _, axis, index = ctx.params
        return (ctx.xp.gather(g, axis, index),)


def _along_axis(index, axis):
    grids = list(np.indices(index.shape, sparse=True))
    grids[axis] = index
    return tuple(grids)


@register
class Cat(Op):
    name, grad_fn_name, saves = "cat", "CatBackward0", False

    @staticmethod
    def forward(*args):
        *arrays, axis = args
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def vjp(ctx, g, *inputs):
        (axis,) = ctx.params
        grads, start = [], 0
        lead = (slice(None),) * axis
        for x, need in zip(inputs, ctx.needs_input_grad):
            stop = start + x.shape[axis]
            grads.append(g[lead + (slice(start, stop),)] if need else None)
            start = stop
        return tuple(grads)

    @staticmethod
    def error(*args):
        *arrays, axis = args
        return f"shapes {', '.join(shape_str(a) for a in arrays)} differ outside dim {axis}"


@register
class Stack(Op):
    name, grad_fn_name, saves = "stack", "StackBackward0", False

    @staticmethod
    def forward(*args):
        *arrays, axis = args
        return np.stack(arrays, axis=axis)

    @staticmethod
    def vjp(ctx, g, *inputs):
        (axis,) = ctx.params
        lead = (slice(None),) * axis
        return tuple(
            g[lead + (i,)] if need else None for i, need in enumerate(ctx.needs_input_grad)
        )

    @staticmethod
    def error(*args):
        *arrays, axis = args
        return f"shapes {', '.join(shape_str(a) for a in arrays)} must all be equal"


@register
class Cast(Op):
    name, grad_fn_name, saves = "cast", "ToCopyBackward0", False

    @classmethod
    def node_name(cls, node):
        same = node.params[0] == node.arrays[0].dtype
        return "CloneBackward0" if same else "ToCopyBackward0"

    @staticmethod
    def forward(x, np_dtype):
        return x.astype(np_dtype)

    @staticmethod
    def vjp(ctx, g, x):
        return (ctx.xp.cast(g, x.dtype),)
