"""dtypes with PyTorch's names, and PyTorch's type-promotion rules on top of NumPy dtypes.

NumPy and PyTorch agree on most promotions, but not all: in PyTorch an integer tensor combined
with a Python float becomes float32 (NumPy: float64), and a 0-d tensor never widens a dimensioned
tensor of the same category (NumPy: it does). This module is the one place that knows the rules.
"""

from __future__ import annotations

import builtins

import numpy as np


class dtype:
    """A tensor element type, e.g. ``graphgrad.float32``.

    >>> import graphgrad as gg
    >>> gg.tensor([1.0]).dtype
    graphgrad.float32
    """

    __slots__ = ("name", "np", "is_floating_point", "itemsize")

    def __init__(self, name: str, np_dtype) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = self.np.kind == "f"
        self.itemsize = self.np.itemsize

    def __repr__(self) -> str:
        return f"graphgrad.{self.name}"


float16 = dtype("float16", np.float16)
float32 = dtype("float32", np.float32)
float64 = dtype("float64", np.float64)
int8 = dtype("int8", np.int8)
int16 = dtype("int16", np.int16)
int32 = dtype("int32", np.int32)
int64 = dtype("int64", np.int64)
uint8 = dtype("uint8", np.uint8)
bool_ = dtype("bool", np.bool_)

_BY_NUMPY = {d.np: d for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool_)}

DEFAULT_FLOAT = np.dtype(np.float32)
DEFAULT_INT = np.dtype(np.int64)
BOOL = np.dtype(np.bool_)


def from_numpy_dtype(np_dtype: np.dtype) -> dtype:
    try:
        return _BY_NUMPY[np_dtype]
    except KeyError:
        raise TypeError(f"graphgrad does not support the NumPy dtype {np_dtype}") from None


def to_numpy_dtype(d) -> np.dtype:
    """Accept a graphgrad dtype, a NumPy dtype or a Python type (``float`` means float64)."""
    if isinstance(d, dtype):
        return d.np
    if d is builtins.float:
        return np.dtype(np.float64)
    if d is builtins.int:
        return DEFAULT_INT
    if d is builtins.bool:
        return BOOL
    try:
        np_dtype = np.dtype(d)
    except TypeError:
        raise TypeError(f"expected a dtype such as graphgrad.float32, got {d!r}") from None
    from_numpy_dtype(np_dtype)  # reject what graphgrad does not support
    return np_dtype


# Categories order the kinds: a higher category always wins (bool < integer < floating).
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def category(np_dtype: np.dtype) -> builtins.int:
    return _CATEGORY[np_dtype.kind]


def scalar_category(value) -> builtins.int:
    if isinstance(value, (builtins.bool, np.bool_)):
        return 0
    if isinstance(value, (builtins.int, np.integer)):
        return 1
    return 2


def default_dtype_for_category(cat: builtins.int) -> np.dtype:
    return (BOOL, DEFAULT_INT, DEFAULT_FLOAT)[cat]


def result_type(dims: list, scalars: list) -> np.dtype:
    """PyTorch's result dtype for tensors with dimensions, 0-d tensors and Python scalars.

    ``dims`` and ``scalars`` hold NumPy dtypes: ``dims[0]`` the dtypes of tensors with at least one
    dimension, ``dims[1]`` those of 0-d tensors; ``scalars`` holds Python numbers. The highest
    category wins; within it, the highest-priority group that has that category decides.
    """
    dimensioned, zero_dim = dims
    groups = [list(dimensioned), list(zero_dim)]
    best = max(
        [category(d) for d in dimensioned]
        + [category(d) for d in zero_dim]
        + [scalar_category(s) for s in scalars]
    )
    for group in groups:
        same = [d for d in group if category(d) == best]
        if same:
            return np.result_type(*same)
    return default_dtype_for_category(best)


# PyTorch's aliases; defined last because they shadow builtins inside this module.
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001
