"""Creating tensors: torch's factory functions, random numbers and printing."""

from __future__ import annotations

import math

import numpy as np

from . import _dtype
from .tensor import Size, Tensor, _new, _shape_arg


def _to_array(data, dtype=None) -> np.ndarray:
    """Data as an array with torch's dtype inference: Python floats become float32, ints int64."""
    np_dtype = None if dtype is None else _dtype.to_numpy_dtype(dtype)
    if isinstance(data, Tensor):
        array = data._data
    elif isinstance(data, (np.ndarray, np.generic)):  # NumPy's own dtype is kept, as in torch
        array = np.asarray(data)
    elif isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        array = np.array([_to_array(x) for x in data])
    else:
        array = np.array(data)
        if np_dtype is None and array.dtype.kind == "f":
            array = array.astype(_dtype.DEFAULT_FLOAT)
        elif np_dtype is None and array.dtype.kind in "iu":
            array = array.astype(_dtype.DEFAULT_INT)
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"can't convert data of dtype {array.dtype} to a tensor: only numbers and "
            f"booleans are supported"
        )
    if np_dtype is not None and array.dtype != np_dtype:
        array = array.astype(np_dtype)
    _dtype.from_numpy_dtype(array.dtype)
    return array


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def tensor(data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (numbers, nested lists, arrays, tensors).

    >>> import graphgrad as gg
    >>> gg.tensor([[1, 2], [3, 4]]).dtype
    graphgrad.int64
    """
    _check_device(device)
    array = np.array(_to_array(data, dtype), copy=True)
    return _leaf(array, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but shares memory with a NumPy array or tensor when it can."""
    _check_device(device)
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return _leaf(_to_array(data, dtype), False)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares memory with ``array``; changes to one show in the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    _dtype.from_numpy_dtype(array.dtype)
    return _new(array, False)


def _leaf(array: np.ndarray, requires_grad: bool) -> Tensor:
    t = _new(array, False)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _check_device(device) -> None:
    if device is not None and str(device) != "cpu":
        raise RuntimeError(
            f"graphgrad runs on the CPU only; device {str(device)!r} is not available"
        )


def _factory(size, dtype, requires_grad, device, fill, default=_dtype.DEFAULT_FLOAT) -> Tensor:
    _check_device(device)
    shape = _shape_arg(size)
    if any(n < 0 for n in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {shape}")
    np_dtype = default if dtype is None else _dtype.to_numpy_dtype(dtype)
    return _leaf(fill(shape, np_dtype), requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; the size is given as numbers or as one tuple.

    >>> import graphgrad as gg
    >>> gg.zeros(2, 3).shape
    graphgrad.Size([2, 3])
    """
    return _factory(size, dtype, requires_grad, device, np.zeros)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(size, dtype, requires_grad, device, np.ones)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(size, dtype, requires_grad, device, np.zeros)  # zeroed: never uninitialised


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    default = _dtype.default_dtype_for_category(_dtype.scalar_category(fill_value))
    return _factory(
        (size,) if isinstance(size, int) else size,
        dtype,
        requires_grad,
        device,
        lambda shape, d: np.full(shape, fill_value, dtype=d),
        default,
    )


def eye(
    n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    return _factory(
        (n, n if m is None else m),
        dtype,
        requires_grad,
        device,
        lambda shape, d: np.eye(*shape, dtype=d),
    )


def arange(
    start, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 unless an argument is a float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    numbers = (start, end, step)
    is_float = any(isinstance(v, float) for v in numbers)
    default = _dtype.DEFAULT_FLOAT if is_float else _dtype.DEFAULT_INT
    count = max(0, math.ceil((end - start) / step))
    values = start + np.arange(count, dtype=np.float64 if is_float else np.int64) * step
    return _factory(
        (count,), dtype, requires_grad, device, lambda shape, d: values.astype(d), default
    )


def linspace(
    start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    return _factory(
        (steps,),
        dtype,
        requires_grad,
        device,
        lambda shape, d: np.linspace(start, end, steps).astype(d),
    )


def _like(fn, t: Tensor, dtype, requires_grad, **kwargs) -> Tensor:
    return fn(
        t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad, **kwargs
    )


def zeros_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _like(zeros, input, dtype, requires_grad)


def ones_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _like(ones, input, dtype, requires_grad)


def empty_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _like(empty, input, dtype, requires_grad)


def full_like(
    input: Tensor,
    fill_value,
    *,
    dtype=None,  # noqa: A002
    requires_grad: bool = False,
) -> Tensor:
    return full(
        input.shape,
        fill_value,
        dtype=input.dtype if dtype is None else dtype,
        requires_grad=requires_grad,
    )


# ---------------------------------------------------------------------- random numbers


class Generator:
    """A seedable source of random numbers (NumPy's PCG64 underneath).

    Streams are reproducible for a seed, but not the same numbers torch draws for that seed.

    >>> import graphgrad as gg
    >>> g = gg.Generator().manual_seed(0)
    >>> a = gg.rand(3, generator=g); _ = g.manual_seed(0)
    >>> a.equal(gg.rand(3, generator=g))
    True
    """

    def __init__(self, device: str = "cpu") -> None:
        _check_device(device)
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))._seed

    def get_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        self.rng.bit_generator.state = state
        return self


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator: the same seed gives the same random tensors."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def _rng(generator: Generator | None) -> np.random.Generator:
    return (generator or default_generator).rng


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uniform samples from [0, 1)."""
    return _factory(
        size, dtype, requires_grad, device, lambda shape, d: _rng(generator).random(shape).astype(d)
    )


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples."""
    return _factory(
        size,
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).standard_normal(shape).astype(d),
    )


def randint(
    low,
    high=None,
    size=None,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers from ``low`` (default 0) to ``high`` (exclusive): ``randint(high, size)`` too."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list, Size)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"randint: expects low < high, got low={low}, high={high}")
    return _factory(
        size,
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).integers(low, high, shape).astype(d),
        _dtype.DEFAULT_INT,
    )


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    return _factory(
        (n,),
        dtype,
        False,
        device,
        lambda shape, d: _rng(generator).permutation(n).astype(d),
        _dtype.DEFAULT_INT,
    )


def rand_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _like(rand, input, dtype, requires_grad)


def randn_like(input: Tensor, *, dtype=None, requires_grad: bool = False) -> Tensor:  # noqa: A002
    return _like(randn, input, dtype, requires_grad)


def randint_like(input: Tensor, low=0, high=None, *, dtype=None) -> Tensor:  # noqa: A002
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=input.dtype if dtype is None else dtype)


# ---------------------------------------------------------------------- printing


def _format_tensor(t: Tensor) -> str:
    """``tensor([1., 2.], requires_grad=True)``, laid out the way torch prints."""
    data = t._data
    kind = data.dtype.kind
    if data.size == 0:
        body = "[]"
    elif kind == "f":
        body = _format_floats(data)
    else:
        body = np.array2string(
            data,
            separator=", ",
            prefix="tensor(",
            formatter={"bool": lambda v: "True" if v else "False"},
        )
    extras = []
    if data.size == 0 and data.ndim != 1:
        extras.append(f"size={tuple(data.shape)}")
    default = (
        _dtype.DEFAULT_FLOAT if kind in "f" else _dtype.DEFAULT_INT if kind in "iu" else _dtype.BOOL
    )
    if data.dtype != default:
        extras.append(f"dtype={t.dtype}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def _format_floats(data: np.ndarray) -> str:
    finite = data[np.isfinite(data)]
    integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
    big = finite.size and (
        np.abs(finite).max() >= 1e8
        or (np.abs(finite[finite != 0]).min() < 1e-4 if np.any(finite != 0) else False)
    )
    if integral and not big:
        formatter = {"float_kind": lambda v: _special(v) or f"{v:.0f}."}
    elif big:
        formatter = {"float_kind": lambda v: _special(v) or f"{v:.4e}"}
    else:
        formatter = {"float_kind": lambda v: _special(v) or f"{v:.4f}"}
    return np.array2string(data, separator=", ", prefix="tensor(", formatter=formatter)


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


__all__ = [
    name
    for name in dir()
    if not name.startswith("_")
    and name not in ("annotations", "builtins", "math", "np", "Size", "Tensor")
]
