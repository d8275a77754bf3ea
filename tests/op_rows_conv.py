"""Op-table rows: convolution and pooling (graphgrad/ops/conv.py).

The NumPy references compute each op from its definition, one kernel offset at a time (no
im2col, no strided views), so they share nothing with the implementation.
"""

import itertools

import numpy as np
from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401


def _offsets(kernel):
    return itertools.product(*(range(k) for k in kernel))


def _taps(offset, out_shape, stride, dilation):
    """The padded-input positions that kernel ``offset`` reads for every output position."""
    return tuple(
        slice(k * d, k * d + (n - 1) * s + 1, s)
        for k, n, s, d in zip(offset, out_shape, stride, dilation)
    )


def _padded(x, padding, value=0.0):
    return np.pad(x, ((0, 0), (0, 0)) + tuple((p, p) for p in padding), constant_values=value)


def _conv_ref(x, w, b, stride, padding, dilation, groups):
    kernel = w.shape[2:]
    xp = _padded(x, padding)
    out_shape = tuple(
        (n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(xp.shape[2:], kernel, stride, dilation)
    )
    n, c = x.shape[:2]
    o = w.shape[0]
    out = np.zeros((n, groups, o // groups) + out_shape)
    weights = w.reshape((groups, o // groups) + w.shape[1:])
    for offset in _offsets(kernel):
        patch = xp[(Ellipsis,) + _taps(offset, out_shape, stride, dilation)]
        patch = patch.reshape((n, groups, c // groups) + out_shape)
        out += np.einsum("ngc...,goc->ngo...", patch, weights[(Ellipsis,) + offset])
    out = out.reshape((n, o) + out_shape)
    return out if b is None else out + b.reshape((1, -1) + (1,) * len(kernel))


def _conv_transpose_ref(x, w, b, stride, padding, output_padding, groups, dilation):
    """Each input element scatters its weighted kernel into the output (the definition)."""
    kernel = w.shape[2:]
    n, c = x.shape[:2]
    out_c = w.shape[1] * groups
    grid = x.shape[2:]
    full = tuple(
        (m - 1) * s + d * (k - 1) + 1 + e
        for m, s, d, k, e in zip(grid, stride, dilation, kernel, output_padding)
    )
    out = np.zeros((n, groups, out_c // groups) + full)
    weights = w.reshape((groups, c // groups) + w.shape[1:])
    inputs = x.reshape((n, groups, c // groups) + grid)
    for offset in _offsets(kernel):
        taps = _taps(offset, grid, stride, dilation)
        out[(Ellipsis,) + taps] += np.einsum(
            "ngc...,gco->ngo...", inputs, weights[(Ellipsis,) + offset]
        )
    crop = tuple(slice(p, f - p) for p, f in zip(padding, full))
    out = out.reshape((n, out_c) + full)[(slice(None), slice(None)) + crop]
    return out + b.reshape((1, -1) + (1,) * len(kernel))


def _conv_weight_ref(x, g, kernel, stride, padding, dilation, groups):
    """sum over batch and positions of g[n, o, s] * x_padded[n, c, s * stride + k * dilation]."""
    xp = _padded(x, padding)
    n, c = x.shape[:2]
    o = g.shape[1]
    out_shape = g.shape[2:]
    grads = g.reshape((n, groups, o // groups) + out_shape)
    weight = np.zeros((groups, o // groups, c // groups) + tuple(kernel))
    for offset in _offsets(kernel):
        patch = xp[(Ellipsis,) + _taps(offset, out_shape, stride, dilation)]
        patch = patch.reshape((n, groups, c // groups) + out_shape)
        weight[(Ellipsis,) + offset] = (grads[:, :, :, None] * patch[:, :, None]).sum(
            (0,) + tuple(range(4, 4 + len(kernel)))
        )
    return weight.reshape((o, c // groups) + tuple(kernel))


def _pool_windows(x, kernel, stride, padding, dilation, out_shape, fill):
    """Every window's values, (N, C, *out_shape, prod(kernel)), by explicit offsets."""
    spatial = x.shape[2:]
    reach = [(m - 1) * s + d * (k - 1) + 1 for m, s, d, k in zip(out_shape, stride, dilation,
                                                                  kernel)]  # fmt: skip
    after = [max(r - p - n, 0) for r, p, n in zip(reach, padding, spatial)]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(zip(padding, after)), constant_values=fill)
    return np.stack(
        [xp[(Ellipsis,) + _taps(o, out_shape, stride, dilation)] for o in _offsets(kernel)], -1
    )


def _max_pool_ref(x, kernel, stride, padding, out_shape, dilation=None):
    dilation = dilation or (1,) * len(kernel)
    return _pool_windows(x, kernel, stride, padding, dilation, out_shape, -np.inf).max(-1)


def _max_pool_index_ref(x, kernel, stride, padding, out_shape):
    """Flat plane index of each window's (distinct) maximum."""
    windows = _pool_windows(x, kernel, stride, padding, (1,) * len(kernel), out_shape, -np.inf)
    rows, cols = np.unravel_index(windows.argmax(-1), kernel)
    start_rows = (np.arange(out_shape[0]) * stride[0] - padding[0])[:, None]
    start_cols = np.arange(out_shape[1]) * stride[1] - padding[1]
    return (start_rows + rows) * x.shape[3] + start_cols + cols


def _conv_weight_call(L, x, g, **kw):
    """The weight gradient of conv2d, reached as torch reaches it: autograd.grad with
    create_graph=True (graphgrad records a conv_weight node; its value does not depend on w)."""
    w = L.zeros((4, 2, 2, 3), dtype=x.dtype, requires_grad=True)
    out = L.nn.functional.conv2d(x, w, **kw)
    return L.autograd.grad(out, w, g, create_graph=True)[0]


CONV_KW = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}

ROWS: list[OpCase] = [
    OpCase(
        "conv",
        lambda L, x, w, b: L.nn.functional.conv2d(x, w, b, **CONV_KW),
        lambda x, w, b: _conv_ref(x, w, b, (2, 1), (1, 0), (1, 2), 2),
        [((2, 4, 5, 6), (4, 2, 2, 3), (4,))],
    ),
    OpCase(
        "conv",
        lambda L, x, w, b: L.nn.functional.conv1d(x, w, b, stride=2, padding=1),
        lambda x, w, b: _conv_ref(x, w, b, (2,), (1,), (1,), 1),
        [((2, 3, 7), (2, 3, 3), (2,))],
    ),
    OpCase(
        "conv_transpose",
        lambda L, x, w, b: L.nn.functional.conv_transpose2d(
            x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=1
        ),
        lambda x, w, b: _conv_transpose_ref(x, w, b, (2, 1), (1, 0), (1, 0), 2, (1, 1)),
        [((1, 4, 3, 3), (4, 1, 2, 3), (2,))],
    ),
    OpCase(
        "conv_weight",
        lambda L, x, g: _conv_weight_call(L, x, g, **CONV_KW),
        lambda x, g: _conv_weight_ref(x, g, (2, 3), (2, 1), (1, 0), (1, 2), 2),
        [((2, 4, 5, 6), (2, 4, 3, 2))],
    ),
    OpCase(
        "max_pool",
        lambda L, x: L.nn.functional.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
        lambda x: _max_pool_ref(x, (3, 3), (2, 2), (1, 1), (3, 4)),
        [((2, 2, 5, 6),)],
        distinct=True,
    ),
    OpCase(
        "max_pool",
        lambda L, x: L.nn.functional.max_pool1d(x, 2, stride=1, dilation=2),
        lambda x: _max_pool_ref(x, (2,), (1,), (0,), (4,), (2,)),
        [((2, 3, 6),)],
        distinct=True,
    ),
    OpCase(
        "max_pool_indices",
        lambda L, x: L.nn.functional.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)[1],
        lambda x: _max_pool_index_ref(x, (2, 2), (1, 1), (1, 1), (5, 4)),
        [((2, 2, 4, 3),)],
        grad=False,
        distinct=True,
    ),
]
