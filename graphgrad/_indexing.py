"""Sorting, scans, masks, selection and shape helpers as Tensor methods and free functions.

Each function here is ``graphgrad.f(x, ...)`` and, where torch has one, the method ``x.f(...)``.
Values that come out of a sort, a top-k or a running extremum are gathered from the input by a
primitive that takes the chosen positions as an input, so that their gradient is a scatter of
the positions and a recorded step (graphgrad.compile) recomputes them for each batch.

>>> import graphgrad as gg
>>> x = gg.tensor([3.0, 1.0, 2.0], requires_grad=True)
>>> values, indices = x.sort(descending=True)
>>> values.tolist(), indices.tolist()
([3.0, 2.0, 1.0], [0, 2, 1])
>>> x.cumsum(0).tolist()
[3.0, 4.0, 6.0]
"""

from __future__ import annotations

import builtins
import functools
import operator
import types
import warnings
from collections import namedtuple

import numpy as np

from . import _dtype, _state
from .ops import OPS
from .tensor import (
    Tensor,
    _array_of,
    _dim,
    _mark_modified,
    apply,
    cat,
    tensor_method,
    where,
    with_out,
    wrap,
    write_out,
)

__all__ = [
    "argsort",
    "cummax",
    "cummin",
    "cumprod",
    "cumsum",
    "diag",
    "diagonal",
    "index_select",
    "logcumsumexp",
    "masked_fill",
    "masked_select",
    "meshgrid",
    "moveaxis",
    "movedim",
    "nonzero",
    "repeat_interleave",
    "return_types",
    "roll",
    "sort",
    "std_mean",
    "take_along_dim",
    "topk",
    "tril",
    "triu",
    "unique",
    "var_mean",
]


def _return_type(name: str):
    """A ``(values, indices)`` named tuple printed as torch prints ``torch.return_types.name``."""
    base = namedtuple(name, ["values", "indices"])

    def __repr__(self) -> str:
        return f"graphgrad.return_types.{name}(\nvalues={self.values!r},\nindices={self.indices!r})"

    return type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__module__": __name__})


return_types = types.SimpleNamespace(
    **{name: _return_type(name) for name in ("sort", "topk", "cummax", "cummin")}
)


def _along(x: Tensor, dim, op: str):
    """``x`` with at least one dimension and ``dim`` as a non-negative axis: torch treats a 0-d
    tensor as having the one dim 0 (or -1); the caller reshapes results back with
    :func:`_restore`."""
    axis = _dim(dim, x.ndim, op)
    return (x.reshape(1) if x.ndim == 0 else x), axis


def _restore(result: Tensor, like: Tensor) -> Tensor:
    return result.reshape(()) if like.ndim == 0 else result


def _values_indices(op: str, x, flat, indices, *params):
    """The named tuple of ``op``: values gathered from ``flat`` at ``indices`` by primitive
    ``op``, both shaped back as ``x`` (0-d stays 0-d)."""
    values = apply(OPS[op], (flat, indices), params)
    return getattr(return_types, op)(_restore(values, x), _restore(indices, x))


def _with_outs(function):
    """torch's ``out=(values, indices)`` for a function returning a named tuple: the results
    are written into those tensors, returned as the same named tuple."""
    name = function.__name__

    @functools.wraps(function)
    def with_out_argument(*args, out=None, **kwargs):
        if out is None:
            return function(*args, **kwargs)
        if not (isinstance(out, (tuple, list)) and len(out) == 2
                and all(isinstance(t, Tensor) for t in out)):
            raise TypeError(f"{name}(): argument 'out' must be tuple of Tensors, not "
                            f"{type(out).__name__}")
        result = function(*args, **kwargs)
        if result.values.requires_grad:
            raise RuntimeError(
                f"{name}(): functions with out=... arguments don't support automatic "
                f"differentiation, but one of the arguments requires grad."
            )
        for got, into in zip(result, out):
            write_out(name, got._data, into)
        return type(result)(*out)

    return with_out_argument


# ---------------------------------------------------------------------- sorting
@tensor_method
def sort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False):  # noqa: A002
    """``(values, indices)`` along ``dim``; tied elements keep their order (always stable).

    >>> import graphgrad as gg
    >>> gg.sort(gg.tensor([[2, 1, 2]]), descending=True).indices.tolist()
    [[0, 2, 1]]
    """
    flat, axis = _along(input, dim, "sort")
    indices = apply(OPS["argsort"], (flat,), (axis, builtins.bool(descending)))
    return _values_indices("sort", input, flat, indices, axis, builtins.bool(stable))


@tensor_method
def argsort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False):  # noqa: A002
    flat, axis = _along(input, dim, "argsort")
    return _restore(apply(OPS["argsort"], (flat,), (axis, builtins.bool(descending))), input)


@tensor_method
def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):  # noqa: A002
    """The ``k`` largest (``largest=False``: smallest) elements along ``dim`` and their
    positions, always in sorted order (which ``sorted=False`` allows too)."""
    flat, axis = _along(input, -1 if dim is None else dim, "topk")
    k = operator.index(k)
    if not 0 <= k <= flat.shape[axis]:
        raise RuntimeError(
            f"topk: selected index k out of range (k = {k}, size {flat.shape[axis]} along dim "
            f"{axis} of shape {tuple(input.shape)})"
        )
    indices = apply(OPS["topk_indices"], (flat,), (k, axis, builtins.bool(largest)))
    return _values_indices("topk", input, flat, indices, axis)


@tensor_method
def take_along_dim(input: Tensor, indices, dim=None) -> Tensor:  # noqa: A002
    """``input`` gathered at ``indices`` along ``dim`` (both flattened when ``dim`` is None);
    the two broadcast outside ``dim``, as torch's."""
    index = _integer_index("take_along_dim", indices)
    # the index stays the tensor it was, so that a recorded step reads each call's indices
    positions = indices.long() if isinstance(indices, Tensor) else wrap(index)
    if dim is None:
        _check_in_bounds(index, input.numel(), 0)
        return apply(OPS["take_along_dim"], (input.reshape(-1), positions.reshape(-1)), (0,))
    axis = _dim(dim, input.ndim, "take_along_dim")
    _check_in_bounds(index, input.shape[axis] if input.ndim else 1, axis)
    if index.ndim != input.ndim:
        raise RuntimeError(
            f"take_along_dim(): input and indices should have the same number of dimensions, "
            f"but got {input.ndim} dimensions for input, and {index.ndim} dimensions for indices"
        )
    shape = _broadcast_shape(
        "take_along_dim", _without(input.shape, axis), _without(index.shape, axis)
    )
    x = input.expand(*_with(shape, axis, input.shape[axis]))
    positions = positions.expand(*_with(shape, axis, index.shape[axis]))
    return apply(OPS["take_along_dim"], (x, positions), (axis,))


def _check_in_bounds(index: np.ndarray, size: int, axis: int) -> None:
    bad = index[(index < 0) | (index >= size)]
    if bad.size:
        raise RuntimeError(
            f"take_along_dim(): index {int(bad.flat[0])} is out of bounds for dimension {axis} "
            f"with size {size}"
        )


def _without(shape, axis: int) -> tuple:
    return _with(shape, axis, 1)


def _with(shape, axis: int, size: int) -> tuple:
    return tuple(n if i != axis else size for i, n in enumerate(shape))


sort, topk, take_along_dim = _with_outs(sort), _with_outs(topk), with_out(take_along_dim)


# ---------------------------------------------------------------------- scans
def _scan_input(input: Tensor, dtype) -> Tensor:  # noqa: A002
    """torch's result dtype of cumsum/cumprod: ``dtype`` if given, int64 for integers and bool."""
    if dtype is not None:
        return input.to(dtype)
    return input.to(_dtype.int64) if input._data.dtype.kind in "biu" else input


@tensor_method
def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:  # noqa: A002
    """Running sums along ``dim``.

    >>> import graphgrad as gg
    >>> gg.cumsum(gg.tensor([[1, 2], [3, 4]]), dim=0).tolist()
    [[1, 2], [4, 6]]
    """
    flat, axis = _along(_scan_input(input, dtype), dim, "cumsum")
    return _restore(apply(OPS["cumsum"], (flat,), (axis,)), input)


@tensor_method
def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:  # noqa: A002
    """Running products along ``dim``; the gradient is right where elements are zero."""
    flat, axis = _along(_scan_input(input, dtype), dim, "cumprod")
    return _restore(apply(OPS["cumprod"], (flat,), (axis,)), input)


@tensor_method
def logcumsumexp(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    """``log(cumsum(exp(input)))`` along ``dim``, without overflow or underflow."""
    if input._data.dtype.kind != "f":
        raise NotImplementedError(
            f'"logcumsumexp_out_cpu" not implemented for '
            f"'{_TORCH_TYPE_NAMES.get(input._data.dtype.name, input.dtype.name)}'"
        )
    flat, axis = _along(input, dim, "logcumsumexp")
    return _restore(apply(OPS["logcumsumexp"], (flat,), (axis,)), input)


_TORCH_TYPE_NAMES = dict(int64="Long", int32="Int", int16="Short", int8="Char", uint8="Byte",
                         bool="Bool")


def _cum_extremum(kind: str, input: Tensor, dim: int):
    flat, axis = _along(input, dim, kind)
    indices = apply(OPS["cum_extremum_indices"], (flat,), (axis, kind == "cummax"))
    return _values_indices(kind, input, flat, indices, axis)


@tensor_method
def cummax(input: Tensor, dim: int):  # noqa: A002
    """``(values, indices)`` of the running maximum along ``dim``; a tie takes the latest
    position, as torch's."""
    return _cum_extremum("cummax", input, dim)


@tensor_method
def cummin(input: Tensor, dim: int):  # noqa: A002
    return _cum_extremum("cummin", input, dim)


cumsum, cumprod, logcumsumexp = with_out(cumsum), with_out(cumprod), with_out(logcumsumexp)
cummax, cummin = _with_outs(cummax), _with_outs(cummin)


# ---------------------------------------------------------------------- triangles, diagonals
def _triangle(input: Tensor, keep: np.ndarray) -> Tensor:  # noqa: A002
    return where(keep, input, np.zeros((), input._data.dtype))


def _matrix_dims(name: str, input: Tensor) -> tuple:
    if input.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    return input.shape[-2], input.shape[-1]


@tensor_method
def tril(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """The lower triangle of the last two dims (``diagonal`` > 0 keeps more, < 0 fewer).

    >>> import graphgrad as gg
    >>> gg.tril(gg.ones(2, 3)).tolist()
    [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    """
    rows, cols = _matrix_dims("tril", input)
    return _triangle(input, np.tri(rows, cols, diagonal, dtype=bool))


@tensor_method
def triu(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    rows, cols = _matrix_dims("triu", input)
    return _triangle(input, ~np.tri(rows, cols, diagonal - 1, dtype=bool))


def _diagonal_positions(rows: int, cols: int, offset: int) -> tuple:
    """The (row, column) positions of diagonal ``offset`` in a rows x cols matrix."""
    first_row, first_col = builtins.max(-offset, 0), builtins.max(offset, 0)
    length = builtins.max(builtins.min(rows - first_row, cols - first_col), 0)
    steps = np.arange(length)
    return steps + first_row, steps + first_col


@tensor_method
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:  # noqa: A002
    """Diagonal ``offset`` of the matrices in dims ``dim1``, ``dim2``, as the last dim."""
    d1, d2 = _dim(dim1, input.ndim, "diagonal"), _dim(dim2, input.ndim, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = tuple(d for d in range(input.ndim) if d not in (d1, d2))
    moved = input.permute(*rest, d1, d2)
    rows, cols = _diagonal_positions(input.shape[d1], input.shape[d2], offset)
    # distinct positions: the gradient is a plain indexed write, no accumulation
    return apply(OPS["getitem"], (moved,), ((Ellipsis, rows, cols), False))


_diagonal_of = diagonal  # diag's argument ``diagonal`` hides this function's name there


@tensor_method
def diag(input: Tensor, diagonal: int = 0) -> Tensor:  # noqa: A002
    """A 1-D tensor as the ``diagonal`` of a square matrix; a matrix's ``diagonal`` as 1-D.

    >>> import graphgrad as gg
    >>> gg.diag(gg.tensor([1, 2]), 1).tolist()
    [[0, 1, 0], [0, 0, 2], [0, 0, 0]]
    """
    if input.ndim == 2:
        return _diagonal_of(input, diagonal)
    if input.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")
    size = input.shape[0] + builtins.abs(diagonal)
    positions = _diagonal_positions(size, size, diagonal)
    return apply(OPS["index_add"], (input,), ((size, size), positions, False))


tril, triu, diag = with_out(tril), with_out(triu), with_out(diag)


# ---------------------------------------------------------------------- masks and indices
def _reads_values(tensor, how: str) -> None:
    """``how`` turns ``tensor``'s values into positions or a shape outside the op stream, which
    a compiled step cannot replay: the recorder is told, and runs such a step eagerly."""
    if isinstance(tensor, Tensor) and _state.state.capture is not None:
        _state.note("read", tensor, how)


def _bool_mask(op: str, mask) -> np.ndarray:
    array = np.asarray(_array_of(mask))
    if array.dtype != bool:
        if op == "masked_select":
            raise RuntimeError("masked_select: expected BoolTensor for mask")
        raise RuntimeError(
            f"{op} only supports boolean masks, but got mask with dtype "
            f"{_dtype.from_numpy_dtype(array.dtype).name}"
        )
    return array


def _broadcast_shape(op: str, a: tuple, b: tuple) -> tuple:
    """torch's broadcast error, naming the op, for shapes that do not broadcast."""
    for i, (m, n) in enumerate(zip(reversed(a), reversed(b))):
        if m != n and 1 not in (m, n):
            raise RuntimeError(
                f"{op}: The size of tensor a ({m}) must match the size of tensor b ({n}) at "
                f"non-singleton dimension {builtins.max(len(a), len(b)) - 1 - i}"
            )
    return np.broadcast_shapes(a, b)


def _fill_value(op: str, value, input: Tensor):
    """``value`` in ``input``'s dtype: a 0-d array for a number, a (differentiable) tensor."""
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(
                f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.ndim} dimension(s)."
            )
        return value if value._data.dtype == input._data.dtype else value.to(input.dtype)
    return np.asarray(value).astype(input._data.dtype)


@tensor_method
def masked_fill(input: Tensor, mask, value) -> Tensor:  # noqa: A002
    """``input`` with ``value`` where ``mask`` (bool, broadcast) holds; a 0-d tensor ``value``
    receives the gradient of the positions it fills.

    >>> import graphgrad as gg
    >>> gg.tensor([1.0, 2.0]).masked_fill(gg.tensor([True, False]), -1).tolist()
    [-1.0, 2.0]
    """
    mask_array = _bool_mask("masked_fill_", mask)
    _broadcast_shape("masked_fill", mask_array.shape, tuple(input.shape))
    return where(mask if isinstance(mask, Tensor) else mask_array, _fill_value(
        "masked_fill_", value, input), input)


def masked_fill_(self: Tensor, mask, value) -> Tensor:
    """In place: refused on a tensor that requires grad while grad is enabled, as ``add_``."""
    if self._requires_grad and _state.state.grad_enabled:
        self._refuse_inplace("masked_fill_")
    mask_array = _bool_mask("masked_fill_", mask)
    shape = tuple(self.shape)
    if _broadcast_shape("masked_fill_", shape, mask_array.shape) != shape:
        raise RuntimeError(
            f"masked_fill_: output with shape {list(shape)} doesn't match the broadcast shape "
            f"{list(np.broadcast_shapes(shape, mask_array.shape))}"
        )
    fill = _fill_value("masked_fill_", value, self)
    try:
        np.copyto(self._data, _array_of(fill), where=mask_array)
    except ValueError as exc:  # read-only memory (an expanded tensor)
        raise RuntimeError(f"masked_fill_: {exc} (tensor of shape {shape})") from None
    _mark_modified(self)
    return self


Tensor.masked_fill_ = masked_fill_


@tensor_method
def masked_select(input: Tensor, mask) -> Tensor:  # noqa: A002
    """The elements of ``input`` where ``mask`` holds, both broadcast, as a 1-D tensor."""
    _reads_values(mask, "masked_select's mask")
    mask_array = _bool_mask("masked_select", mask)
    shape = _broadcast_shape("masked_select", tuple(input.shape), mask_array.shape)
    x = input if tuple(input.shape) == shape else input.expand(*shape)
    # distinct positions: the gradient is a plain indexed write, no accumulation
    return apply(OPS["getitem"], (x,), (np.broadcast_to(mask_array, shape), False))


def _integer_index(op: str, index) -> np.ndarray:
    array = np.asarray(_array_of(index))
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int32 or int64 for index")
    return array.astype(np.int64, copy=False)


@tensor_method
def index_select(input: Tensor, dim: int, index) -> Tensor:  # noqa: A002
    """The entries of ``input`` along ``dim`` at ``index`` (a 1-D or 0-d integer tensor);
    repeated indices add up their gradients."""
    axis = _dim(dim, input.ndim, "index_select")
    positions = _integer_index("index_select", index)
    if positions.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    size = input.shape[axis] if input.ndim else 1
    if positions.size and (positions.min() < -size or positions.max() >= size):
        raise IndexError(
            f"index_select(): index out of range in self (index {positions.tolist()} for "
            f"size {size} along dim {axis})"
        )
    positions = positions.reshape(-1) % builtins.max(size, 1)
    if input.ndim == 0:
        if positions.size != 1:
            raise RuntimeError(
                f"index_select(): Index to scalar can have only 1 value, got {positions.size} "
                f"value(s)"
            )
        return input.reshape(1)[positions].reshape(())
    if isinstance(index, Tensor):  # an input of a gather: a compiled step reads each call's index
        along = [1] * input.ndim
        along[axis] = positions.size
        full = list(input.shape)
        full[axis] = positions.size
        spread = index.long().reshape(along).expand(*full)
        return apply(OPS["take_along_dim"], (input, spread), (axis,))
    return apply(OPS["getitem"], (input,), ((slice(None),) * axis + (positions,), True))


masked_select, index_select = with_out(masked_select), with_out(index_select)


@tensor_method
def nonzero(input: Tensor, *, as_tuple: bool = False):  # noqa: A002
    """The positions of the nonzero elements: an (n, ndim) int64 tensor, or with
    ``as_tuple=True`` one 1-D tensor per dim (one for a 0-d tensor, as torch)."""
    _reads_values(input, "nonzero")
    array = _array_of(input)
    if as_tuple:
        return tuple(wrap(i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(array)))
    return wrap(np.argwhere(array).astype(np.int64))


nonzero = with_out(nonzero)


@tensor_method
def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,  # noqa: A002
           return_counts: bool = False, dim=None):
    """The distinct elements (sorted), with the inverse map and the counts on request; with
    ``dim``, the distinct slices along it. No gradient flows through (torch has none)."""
    _reads_values(input, "unique")
    array = _array_of(input)
    axis = None if dim is None else _dim(dim, input.ndim, "unique")
    values, inverse, counts = np.unique(
        array, return_inverse=True, return_counts=True, axis=axis, equal_nan=False
    )
    inverse = inverse.reshape(array.shape if axis is None else -1)
    results = [wrap(values)]
    if return_inverse:
        results.append(wrap(inverse.astype(np.int64)))
    if return_counts:
        results.append(wrap(counts.astype(np.int64)))
    return results[0] if len(results) == 1 else tuple(results)


# ---------------------------------------------------------------------- moving data around
@tensor_method
def roll(input: Tensor, shifts, dims=None) -> Tensor:  # noqa: A002
    """Elements shifted along ``dims`` (of the flattened tensor when ``dims`` is None), those
    that fall off one end coming back at the other."""
    shifts = (shifts,) if isinstance(shifts, (builtins.int, np.integer)) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"roll: shifts and dimensions must align. shifts: {len(shifts)}, "
                               f"dims:0")
        return roll(input.reshape(-1), shifts, 0).reshape(input.shape)
    dims = (dims,) if isinstance(dims, (builtins.int, np.integer)) else tuple(dims)
    if input.ndim == 0:
        raise IndexError(f"roll: Dimension specified as {dims[0]} but tensor has no dimensions")
    if len(shifts) != len(dims):
        raise RuntimeError(
            f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    out = input.clone()  # a new tensor even when every shift is a whole turn, as torch's
    for shift, dim in zip(shifts, dims):
        axis = _dim(dim, input.ndim, "roll")
        size = input.shape[axis]
        start = size - operator.index(shift) % size if size else 0
        if start in (0, size):
            continue
        lead = (slice(None),) * axis
        out = cat([out[lead + (slice(start, None),)], out[lead + (slice(0, start),)]], axis)
    return out


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids from 1-D tensors: ``indexing='ij'`` (the default, with torch's warning
    when it is not given) or ``'xy'`` (the first two dims swapped, as NumPy's).

    >>> import graphgrad as gg
    >>> [t.tolist() for t in gg.meshgrid(gg.tensor([1, 2]), gg.tensor([3]), indexing="ij")]
    [[[1], [2]], [[3], [3]]]
    """
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn(
            "graphgrad.meshgrid: in an upcoming release, it will be required to pass the "
            "indexing argument.",
            UserWarning,
            stacklevel=2,
        )
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise RuntimeError(
            f'meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(
                f"meshgrid: Expected 0D or 1D tensor in the tensor list but got a tensor of "
                f"shape {tuple(t.shape)}"
            )
    sizes = [t.numel() for t in tensors]
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0  # the grid's dim 0 follows the second tensor
    shape = [sizes[i] for i in order]
    grids = []
    for i, t in enumerate(tensors):
        view = [1] * len(tensors)
        view[order.index(i)] = -1
        grids.append(t.reshape(view).expand(*shape))
    return tuple(grids)


@tensor_method
def repeat_interleave(input: Tensor, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    """Each element (or slice along ``dim``) repeated ``repeats`` times in place, ``repeats``
    an int or a tensor of one count each; ``repeat_interleave(counts)`` alone repeats
    ``arange(len(counts))``.

    >>> import graphgrad as gg
    >>> gg.tensor([1, 2]).repeat_interleave(gg.tensor([2, 1])).tolist()
    [1, 1, 2]
    """
    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = _repeat_counts(input, 1 if input.ndim == 0 else input.shape[0], 0)
        return wrap(np.repeat(np.arange(counts.size, dtype=np.int64), counts))
    x = input.reshape(-1) if dim is None else input
    axis = 0 if dim is None else _dim(dim, input.ndim, "repeat_interleave")
    if x.ndim == 0:
        x = x.reshape(1)
    counts = _repeat_counts(repeats, x.shape[axis], axis)
    total = builtins.int(counts.sum())
    if output_size is not None and output_size != total:
        raise RuntimeError(
            f"repeat_interleave: Invalid output_size, expected {total} but got {output_size}"
        )
    positions = np.repeat(np.arange(x.shape[axis]), counts)
    return apply(OPS["getitem"], (x,), ((slice(None),) * axis + (positions,), True))


def _repeat_counts(repeats, size: int, axis: int) -> np.ndarray:
    _reads_values(repeats, "repeat_interleave's repeats")
    counts = np.asarray(_array_of(repeats))
    if counts.dtype.kind not in "iu":
        raise RuntimeError("repeat_interleave: repeats has to be Long or Int tensor")
    if counts.ndim > 1:
        raise RuntimeError("repeat_interleave: repeats must be 0-dim or 1-dim tensor")
    if (counts < 0).any():
        raise RuntimeError("repeat_interleave: Repeats must be non-negative")
    if counts.size == 1:
        return np.full(size, counts.reshape(()))
    if counts.shape[0] != size:
        raise RuntimeError(
            f"repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{counts.shape[0]} and input.size({axis}) = {size}"
        )
    return counts


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """The windows of ``size`` elements every ``step`` along ``dimension``: that dim counts the
    windows and a new last dim holds each window (torch.Tensor.unfold).

    >>> import graphgrad as gg
    >>> gg.arange(5).unfold(0, 2, 2).tolist()
    [[0, 1], [2, 3]]
    """
    axis = _dim(dimension, self.ndim, "unfold")
    x = self.reshape(1) if self.ndim == 0 else self
    length = x.shape[axis]
    if size > length:
        raise RuntimeError(
            f"maximum size for tensor at dimension {axis} is {length} but size is {size}"
        )
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    starts = np.arange((length - size) // step + 1) * step
    windows = starts[:, None] + np.arange(size)
    picked = apply(OPS["getitem"], (x,), ((slice(None),) * axis + (windows,), True))
    out = movedim(picked, axis + 1, -1)
    return out.reshape(size) if self.ndim == 0 else out


Tensor.unfold = unfold


@tensor_method
def movedim(input: Tensor, source, destination) -> Tensor:  # noqa: A002
    """The dims ``source`` moved to positions ``destination``, the others keeping their order.

    >>> import graphgrad as gg
    >>> gg.zeros(2, 3, 4).movedim(0, -1).shape
    graphgrad.Size([3, 4, 2])
    """
    src = (source,) if isinstance(source, (builtins.int, np.integer)) else tuple(source)
    dst = (destination,) if isinstance(destination, (builtins.int, np.integer)) else tuple(
        destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    src = tuple(_dim(d, input.ndim, "movedim") for d in src)
    dst = tuple(_dim(d, input.ndim, "movedim") for d in dst)
    for name, dims in (("source", src), ("destination", dst)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(dims)})")
    if input.ndim == 0:  # its one dim is 0 (or -1): nothing to move
        return input.view(())
    order = [None] * input.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(input.ndim) if d not in src)
    order = [next(rest) if d is None else d for d in order]
    return input.permute(*order)


@tensor_method
def moveaxis(input: Tensor, source, destination) -> Tensor:  # noqa: A002
    return movedim(input, source, destination)


# ---------------------------------------------------------------------- statistics
def _var_mean_arguments(dim, unbiased):
    """torch's ``var_mean(x, unbiased)`` form: a bool in ``dim``'s place is ``unbiased``."""
    if isinstance(dim, builtins.bool):
        return None, dim
    return dim, unbiased


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None) -> tuple:
    """``(var, mean)`` over ``dim``, ``correction`` (or ``unbiased``) as in ``var``."""
    dim, unbiased = _var_mean_arguments(dim, unbiased)
    variance = input.var(dim, unbiased, keepdim, correction=correction)
    return variance, input.mean(dim, keepdim)


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,  # noqa: A002
             correction=None) -> tuple:
    """``(std, mean)`` over ``dim``, ``correction`` (or ``unbiased``) as in ``std``.

    >>> import graphgrad as gg
    >>> [t.item() for t in gg.std_mean(gg.tensor([1.0, 3.0]))]
    [1.4142135381698608, 2.0]
    """
    dim, unbiased = _var_mean_arguments(dim, unbiased)
    deviation = input.std(dim, unbiased, keepdim, correction=correction)
    return deviation, input.mean(dim, keepdim)
