"""Convolution and pooling primitives on BLAS: im2col by strided views (issue 13).

Every op works on ``d`` spatial dimensions (``x.ndim - 2``), so conv1d and conv2d share it, and
takes its geometry as parameters: ``stride``, the padding in front of each spatial dimension
(``lo``), ``dilation`` (tuples of ``d`` ints), ``groups``, and the spatial shape of what it
computes or of the operand it is the gradient of. The padding behind follows from that shape:
whatever the windows need (zeros, or -inf for max pooling), or a crop where they need less.

The three convolution ops are one closed family under vjp: ``conv`` (x, w -> y), its input
gradient ``conv_transpose`` (y, w -> x) and its weight gradient ``conv_weight`` (x, y -> w) are
bilinear, and each one's vjp is made of the other two. So gradients of any order exist, each a
single (batched) matmul plus, for ``conv_transpose``, a col2im scatter that loops over the kernel
offsets only.
"""

import math
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import Op, register, shape_str


def _needed(out_shape, kernel, stride, dilation) -> tuple:
    """The padded input size that ``out_shape`` windows of ``kernel`` reach."""
    return tuple(
        (n - 1) * s + d * (k - 1) + 1 for n, k, s, d in zip(out_shape, kernel, stride, dilation)
    )


def _padded(x, lo, size, fill=0):
    """``x`` (N, C, *S) at offset ``lo`` in a (N, C, *size) buffer of ``fill``; a dimension is
    cropped where ``size`` is shorter. Without front padding or growth, ``x`` itself: the
    windows then simply do not reach its end."""
    spatial = x.shape[2:]
    if not any(lo) and all(n <= s for n, s in zip(size, spatial)):
        return x
    out = np.full(x.shape[:2] + tuple(size), fill, x.dtype)
    inside, source = [slice(None)] * 2, [slice(None)] * 2
    for front, s, n in zip(lo, spatial, size):
        stop = max(min(front + s, n), front)
        inside.append(slice(front, stop))
        source.append(slice(0, stop - front))
    out[tuple(inside)] = x[tuple(source)]
    return out


def _windows(x, out_shape, kernel, stride, dilation):
    """A read-only view (N, C, *out_shape, *kernel) of the windows of a padded ``x``."""
    steps = x.strides[2:]
    return as_strided(
        x,
        x.shape[:2] + tuple(out_shape) + tuple(kernel),
        x.strides[:2]
        + tuple(t * s for t, s in zip(steps, stride))
        + tuple(t * d for t, d in zip(steps, dilation)),
        writeable=False,
    )


# Scratch buffers, one set per thread (a Graph runs independent nodes in threads): the im2col
# matrices and col2im sums live only inside one op's forward, and a fresh array of that size
# costs more in page faults than its copy (glibc gives large freed blocks back to the kernel, so
# every step faults them in again: 2,200 faults, 3.5 ms of LeNet's 9 ms step, seen here).
_SCRATCH = threading.local()
_SCRATCH_LIMIT = 64 << 20  # bytes: a larger buffer is allocated each time rather than kept


def _scratch(slot: str, shape, dtype, *, zeroed: bool = False):
    """An uninitialised (or ``zeroed``) C-contiguous array over this thread's buffer ``slot``,
    valid until the next call with that slot: never returned from an op."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    if size > _SCRATCH_LIMIT:
        return (np.zeros if zeroed else np.empty)(shape, dtype)
    buffers = _SCRATCH.__dict__.setdefault("buffers", {})
    if slot not in buffers or buffers[slot].nbytes < size:
        buffers[slot] = np.empty(size, np.uint8)
    out = buffers[slot][:size].view(dtype).reshape(shape)
    if zeroed:
        out.fill(0)
    return out


def _batch_last(x, lo, size):
    """``x`` (N, C, *S) as a contiguous (C, *size, N) scratch array, at offset ``lo`` in zeros
    (cropped where ``size`` is shorter): one copy that pads and moves the batch last.

    Batch last is the layout of every convolution product here: a window's row of im2col is
    then, for a stride of 1, one run of ``out_width * N`` contiguous numbers, where the batch-
    first layout copies runs of ``out_width`` (8 for LeNet's second convolution). NumPy's copy
    loops cost per run, so im2col is 2-5x faster this way, and so is col2im's scatter."""
    n, c, *spatial = x.shape
    whole = not any(lo) and tuple(size) == tuple(spatial)
    out = _scratch("batch_last", (c, *size, n), x.dtype, zeroed=not whole)
    inside, source = [slice(None)], [slice(None), slice(None)]
    for front, s, m in zip(lo, spatial, size):
        stop = max(min(front + s, m), front)
        inside.append(slice(front, stop))
        source.append(slice(0, stop - front))
    out[tuple(inside)] = np.moveaxis(x[tuple(source)], 0, -1)
    return out


def _columns(x, out_shape, kernel, stride, lo, dilation, groups):
    """im2col: (groups, C/groups * prod(kernel), prod(out_shape) * N) scratch, in one copy
    after :func:`_batch_last`. The whole batch is one matrix per group, so that each product is
    one large BLAS call: many small ones cost far more, above all when BLAS's threads must wait
    for a busy machine's cores."""
    n, c = x.shape[:2]
    padded = _batch_last(x, lo, _needed(out_shape, kernel, stride, dilation))
    steps = padded.strides[1:-1]
    view = as_strided(
        padded,
        (c, *kernel, *out_shape, n),
        (padded.strides[0], *(t * d for t, d in zip(steps, dilation)),
         *(t * s for t, s in zip(steps, stride)), padded.strides[-1]),
        writeable=False,
    )  # fmt: skip
    cols = _scratch("columns", view.shape, x.dtype)
    np.copyto(cols, view)
    rows = (c // groups) * math.prod(kernel)
    return cols.reshape(groups, rows, math.prod(out_shape) * n)


def _by_group(y, groups):
    """(N, O, *G) as (groups, O/groups, prod(G) * N) scratch: the layout of _columns'
    products."""
    n, o = y.shape[:2]
    out = _scratch("by_group", (o, *y.shape[2:], n), y.dtype)
    np.copyto(out, np.moveaxis(y, 0, -1))
    return out.reshape(groups, o // groups, -1)


def _from_groups(product, n, spatial):
    """A (groups, O/groups, prod(spatial) * N) product as (N, O, *spatial), contiguous."""
    groups, per_group = product.shape[:2]
    batch_last = product.reshape((groups * per_group, *spatial, n))
    return np.ascontiguousarray(np.moveaxis(batch_last, -1, 0))


def _per_group_matmul(a, b, out=None):
    """``a @ b`` for stacks of one matrix per group, as one 2-D BLAS call per group: NumPy's
    matmul of 3-D stacks may take its own loops instead of BLAS (30x slower seen here)."""
    if out is None:
        out = np.empty((a.shape[0], a.shape[1], b.shape[2]), np.result_type(a, b))
    for group in range(a.shape[0]):
        np.matmul(a[group], b[group], out=out[group])
    return out


def _add_bias(out, b):
    if b is not None:
        out += b.reshape((1, -1) + (1,) * (out.ndim - 2))
    return out


def _spatial_axes(x) -> tuple:
    return (0,) + tuple(range(2, x.ndim))


def _geometry_error(what, x, w, groups) -> str:
    return (
        f"{what} {shape_str(x)} does not fit weight {shape_str(w)} with groups={groups} "
        f"(see the checks of graphgrad.nn.functional)"
    )


@register
class Conv(Op):
    """``conv(x, w, b)``: x (N, C, *S), w (O, C/groups, *K), b (O,) or None; the output's
    spatial shape is the last parameter."""

    name, grad_fn_name = "conv", "ConvolutionBackward0"
    vjp_reads_output = False

    @staticmethod
    def forward(x, w, b, stride, lo, dilation, groups, out_shape):
        o = w.shape[0]
        cols = _columns(x, out_shape, w.shape[2:], stride, lo, dilation, groups)
        out = _per_group_matmul(w.reshape(groups, o // groups, cols.shape[1]), cols)
        return _add_bias(_from_groups(out, x.shape[0], out_shape), b)

    @staticmethod
    def vjp(ctx, g, x, w, b):
        xp = ctx.xp
        stride, lo, dilation, groups, _ = ctx.params
        need_x, need_w, need_b = ctx.needs_input_grad
        gx = gw = gb = None
        if need_x:
            gx = xp.conv_transpose(g, w, None, stride, lo, dilation, groups, tuple(x.shape[2:]))
        if need_w:
            gw = xp.conv_weight(x, g, stride, lo, dilation, groups, tuple(w.shape[2:]))
        if need_b:
            gb = xp.sum(g, _spatial_axes(g))
        return gx, gw, gb

    @staticmethod
    def error(x, w, b, stride, lo, dilation, groups, out_shape):
        return _geometry_error("input", x, w, groups)


@register
class ConvTranspose(Op):
    """``conv_transpose(y, w, b)``: the adjoint of ``conv`` in its input, y (N, O, *G) and w
    (O, C/groups, *K) as conv's; the output's spatial shape (conv's input's) is the last
    parameter."""

    name, grad_fn_name = "conv_transpose", "ConvolutionBackward0"
    vjp_reads_output = False

    @staticmethod
    def forward(y, w, b, stride, lo, dilation, groups, out_shape):
        n, o = y.shape[:2]
        kernel, grid = w.shape[2:], y.shape[2:]
        c = w.shape[1] * groups
        flat_w = w.reshape(groups, o // groups, c // groups * math.prod(kernel))
        by_group = _by_group(y, groups)
        rows = _scratch("rows", (groups, flat_w.shape[2], by_group.shape[2]),
                        np.result_type(w, y))
        _per_group_matmul(flat_w.transpose(0, 2, 1), by_group, out=rows)
        # (groups, C/groups, *K, *G, N): every window's share of the input gradient
        cols = rows.reshape((groups, c // groups, *kernel, *grid, n))
        size = tuple(max(a, f + s) for a, f, s in zip(_needed(grid, kernel, stride, dilation),
                                                       lo, out_shape))  # fmt: skip
        padded = _scratch("col2im", (groups, c // groups, *size, n), rows.dtype, zeroed=True)
        for offset in np.ndindex(*kernel):  # col2im: one strided add per kernel offset
            window = tuple(
                slice(k * d, k * d + (m - 1) * s + 1, s)
                for k, d, m, s in zip(offset, dilation, grid, stride)
            )
            padded[(slice(None), slice(None), *window)] += cols[(slice(None), slice(None),
                                                                 *offset)]
        crop = tuple(slice(f, f + s) for f, s in zip(lo, out_shape))
        out = padded.reshape((c, *size, n))[(slice(None), *crop)]
        return _add_bias(np.ascontiguousarray(np.moveaxis(out, -1, 0)), b)

    @staticmethod
    def vjp(ctx, h, y, w, b):
        xp = ctx.xp
        stride, lo, dilation, groups, _ = ctx.params
        need_y, need_w, need_b = ctx.needs_input_grad
        gy = gw = gb = None
        if need_y:
            gy = xp.conv(h, w, None, stride, lo, dilation, groups, tuple(y.shape[2:]))
        if need_w:
            gw = xp.conv_weight(h, y, stride, lo, dilation, groups, tuple(w.shape[2:]))
        if need_b:
            gb = xp.sum(h, _spatial_axes(h))
        return gy, gw, gb

    @staticmethod
    def error(y, w, b, stride, lo, dilation, groups, out_shape):
        return _geometry_error("input", y, w, groups)


@register
class ConvWeight(Op):
    """``conv_weight(x, y)``: the adjoint of ``conv`` in its weight, the weight gradient of
    x (N, C, *S) for an output gradient y (N, O, *G); the kernel shape is the last parameter."""

    name, grad_fn_name = "conv_weight", "ConvolutionBackwardBackward0"
    vjp_reads_output = False

    @staticmethod
    def forward(x, y, stride, lo, dilation, groups, kernel):
        o = y.shape[1]
        cols = _columns(x, y.shape[2:], kernel, stride, lo, dilation, groups)
        # cols @ y.T, transposed: OpenBLAS is about 2x faster this way round for these long,
        # thin products than for y @ cols.T
        total = _per_group_matmul(cols, _by_group(y, groups).transpose(0, 2, 1))
        return np.ascontiguousarray(total.transpose(0, 2, 1)).reshape(
            (o, x.shape[1] // groups, *kernel))

    @staticmethod
    def vjp(ctx, h, x, y):
        xp = ctx.xp
        stride, lo, dilation, groups, _ = ctx.params
        need_x, need_y = ctx.needs_input_grad
        gx = gy = None
        if need_x:
            gx = xp.conv_transpose(y, h, None, stride, lo, dilation, groups, tuple(x.shape[2:]))
        if need_y:
            gy = xp.conv(x, h, None, stride, lo, dilation, groups, tuple(y.shape[2:]))
        return gx, gy

    @staticmethod
    def error(x, y, stride, lo, dilation, groups, kernel):
        return f"input {shape_str(x)} and output gradient {shape_str(y)} do not fit"


@register
class MaxPoolIndices(Op):
    """Where each max-pooling window has its maximum: int64 (N, C, *out_shape), as flat indices
    into each (unpadded) input plane, as torch's ``return_indices``. Ties go to the first
    position, a window holding NaN to its last NaN, an all -inf window to its first position
    inside the input: torch's CPU kernel."""

    name, grad_fn_name, differentiable = "max_pool_indices", "", False

    @staticmethod
    def forward(x, kernel, stride, lo, dilation, out_shape):
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        padded = _padded(x, lo, _needed(out_shape, kernel, stride, dilation), lowest)
        view = _windows(padded, out_shape, kernel, stride, dilation)
        taps = [view[(Ellipsis,) + offset] for offset in np.ndindex(*kernel)]
        if x.dtype.kind == "f" and np.isnan(x).any():
            best = _first_best_or_nan(taps)
        else:
            best = _first_best(taps)
        if not any(lo):  # every window starts inside: flat index = window start + tap offset
            offsets = _tap_offsets(x.shape[2:], kernel, dilation)
            return _window_starts(x.shape[2:], out_shape, stride) + np.take(offsets, best)
        offsets = np.unravel_index(best, kernel)
        flat = np.zeros(best.shape, np.int64)
        for axis, (k, size) in enumerate(zip(offsets, x.shape[2:])):
            start = np.arange(out_shape[axis]) * stride[axis] - lo[axis]
            start = start.reshape((-1,) + (1,) * (len(kernel) - 1 - axis))
            flat *= size
            flat += np.clip(start + k * dilation[axis], 0, size - 1)
        return flat

    @staticmethod
    def error(x, kernel, stride, lo, dilation, out_shape):
        return f"input {shape_str(x)} does not fit kernel {tuple(kernel)}"


def _first_best(taps):
    """The first tap holding each window's maximum (torch's `val > max` keeps the first of
    ties), in bool and uint8 passes: several times cheaper than a select per tap."""
    largest = taps[0].copy()
    for tap in taps[1:]:
        np.maximum(largest, tap, out=largest)
    kind = np.uint8 if len(taps) < 256 else np.intp
    best = np.zeros(largest.shape, kind)
    found = taps[0] == largest
    for j, tap in enumerate(taps[1:], start=1):
        first = tap == largest
        first &= ~found
        found |= first
        best += first.astype(kind) * kind(j)
    return best


def _first_best_or_nan(taps):
    """torch's loop over a window's taps, ``val > max || isnan(val)``: the first maximum, or
    the last NaN."""
    largest = taps[0]
    best = np.zeros(largest.shape, np.intp)
    for j, tap in enumerate(taps[1:], start=1):
        better = (tap > largest) | np.isnan(tap)
        largest = np.where(better, tap, largest)
        best = np.where(better, j, best)
    return best


def _window_starts(size, out_shape, stride):
    """The flat index (in a plane of ``size``) of each window's first element, unpadded."""
    flat = np.zeros(out_shape, np.int64)
    for axis, (n, s) in enumerate(zip(size, stride)):
        start = np.arange(out_shape[axis]) * s
        flat = flat * n + start.reshape((-1,) + (1,) * (len(size) - 1 - axis))
    return flat


def _tap_offsets(size, kernel, dilation):
    """The flat offset (in a plane of ``size``) of each kernel tap from its window's start."""
    grids = np.meshgrid(*(np.arange(k) * d for k, d in zip(kernel, dilation)), indexing="ij")
    flat = np.zeros(kernel, np.int64)
    for grid, n in zip(grids, size):
        flat = flat * n + grid
    return flat.reshape(-1)


@register
class MaxPool(Op):
    """``x`` at the positions ``indices`` (from max_pool_indices) of each plane; the gradient
    goes to those positions, accumulating where windows overlap."""

    name, grad_fn_name = "max_pool", "MaxPool2DWithIndicesBackward0"
    vjp_reads_output = False

    @classmethod
    def node_name(cls, node):
        return f"MaxPool{node.arrays[0].ndim - 2}DWithIndicesBackward0"

    @staticmethod
    def forward(x, indices):
        n, c = x.shape[:2]
        planes = x.reshape(n, c, -1)
        return np.take_along_axis(planes, indices.reshape(n, c, -1), 2).reshape(indices.shape)

    @staticmethod
    def vjp(ctx, g, x, indices):
        return ctx.xp.max_pool_backward(g, indices, tuple(x.shape)), None
