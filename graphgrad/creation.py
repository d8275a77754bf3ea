"""Creating tensors: torch's factory functions, random numbers and printing."""

from __future__ import annotations

import math

import numpy as np

from . import _dtype, _state
from .tensor import (
    Size,
    Tensor,
    _new,
    _shape_arg,
    tensor_method,
    where,
    with_out,
)


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
        _check_python_data(data, array, np_dtype)
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


def _check_python_data(data, array: np.ndarray, np_dtype) -> None:
    """torch's errors for Python data it cannot hold: None, and integers beyond int64 (which
    NumPy would keep as uint64 or objects, and a cast to int64 would wrap around)."""
    if array.dtype.kind == "O":
        values = list(_flat(data)) if isinstance(data, (list, tuple)) else [data]
        if any(v is None for v in values):
            raise RuntimeError("tensor(): Could not infer dtype of NoneType")
        if any(isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values):
            raise ValueError("tensor(): Overflow when unpacking long long (an int beyond int64)")
    elif array.dtype == np.uint64 and (np_dtype is None or np_dtype.kind in "iu"):
        if np_dtype != np.uint64:
            raise ValueError("tensor(): Overflow when unpacking long long (an int beyond int64)")


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


def from_dlpack(ext_tensor, *, device=None, copy: bool | None = None) -> Tensor:
    """A tensor sharing memory with ``ext_tensor``, any CPU producer of DLPack (a torch tensor,
    a NumPy array, a graphgrad tensor), as torch.from_dlpack; ``copy=True`` copies instead.

    >>> import numpy as np, graphgrad as gg
    >>> a = np.zeros(3, np.float32)
    >>> t = gg.from_dlpack(a)
    >>> a[1] = 5.0
    >>> t.tolist(), t.dtype
    ([0.0, 5.0, 0.0], graphgrad.float32)
    """
    _check_device(device)
    if not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(
            f"from_dlpack expects an object with __dlpack__ and __dlpack_device__ (a tensor or "
            f"array), got {type(ext_tensor).__name__}; a bare DLPack capsule is not accepted"
        )
    array = np.from_dlpack(ext_tensor) if copy is None else np.from_dlpack(ext_tensor, copy=copy)
    _dtype.from_numpy_dtype(array.dtype)  # graphgrad's error for a dtype it cannot hold
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


def _factory(
    name, size, dtype, requires_grad, device, fill, default=_dtype.DEFAULT_FLOAT, kinds="fiub"
) -> Tensor:
    """A new leaf of ``size`` filled by ``fill(shape, numpy_dtype)``, after torch's checks of
    the size, the dtype (``kinds``: the NumPy kinds ``name`` is implemented for) and device."""
    _check_device(device)
    shape = _shape_arg(size, name)
    if any(n < 0 for n in shape):
        raise RuntimeError(
            f"{name}: Dimension size must be non-negative: trying to create tensor with "
            f"negative dimension, size {shape}"
        )
    np_dtype = default if dtype is None else _factory_dtype(name, dtype)
    if np_dtype.kind not in kinds:
        raise NotImplementedError(
            f"{name}: not implemented for dtype {_dtype.from_numpy_dtype(np_dtype)}"
        )
    t = _leaf(fill(shape, np_dtype), requires_grad)
    if _state.state.capture is not None:  # compile replays the fill: random draws stay live
        _state.note("draw", fill, shape, np_dtype, t)
    return t


def _factory_dtype(name: str, dtype) -> np.dtype:
    """torch's factories take a dtype object (or the Python types float, int and bool), never a
    string or a NumPy type."""
    if not isinstance(dtype, _dtype.dtype) and dtype not in (float, int, bool):
        raise TypeError(f"{name}(): argument 'dtype' must be graphgrad.dtype, not {dtype!r}")
    return np.dtype(_dtype.to_numpy_dtype(dtype))


def _size_of(name: str, args: tuple, size) -> tuple:
    """The size as numbers, one sequence, or ``size=`` (torch takes all three, and not none)."""
    if size is not None:
        if args:
            raise TypeError(f"{name}() got multiple values for argument 'size'")
        return (size,)
    if not args:
        raise TypeError(f"{name}() missing 1 required positional argument: 'size'")
    return args


def _number(name: str, argument: str, value):
    """A Python number from a number or a one-element tensor (torch takes both)."""
    if isinstance(value, Tensor):
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if not isinstance(value, (int, float)):
        raise TypeError(
            f"{name}(): argument '{argument}' must be Number, not {type(value).__name__}"
        )
    return value


def _integer(name: str, argument: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}(): argument '{argument}' must be int, not {type(value).__name__}")
    return int(value)


def zeros(*args, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros; the size is given as numbers, as one tuple, or as ``size=``.

    >>> import graphgrad as gg
    >>> gg.zeros(2, 3).shape
    graphgrad.Size([2, 3])
    """
    return _factory(
        "zeros", _size_of("zeros", args, size), dtype, requires_grad, device, np.zeros
    )


def ones(*args, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory("ones", _size_of("ones", args, size), dtype, requires_grad, device, np.ones)


def empty(*args, size=None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _factory(  # zeroed: never uninitialised
        "empty", _size_of("empty", args, size), dtype, requires_grad, device, np.zeros
    )


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    if not isinstance(size, (tuple, list, Size)):
        raise TypeError(f"full(): argument 'size' must be tuple of ints, not {type(size).__name__}")
    fill_value = _number("full", "fill_value", fill_value)
    default = _dtype.default_dtype_for_category(_dtype.scalar_category(fill_value))
    return _factory(
        "full",
        size,
        dtype,
        requires_grad,
        device,
        lambda shape, d: np.full(shape, fill_value, dtype=d),
        default,
    )


def eye(
    n: int, m: int | None = None, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    n = _integer("eye", "n", n)
    m = n if m is None else _integer("eye", "m", m)
    for name, value in (("n", n), ("m", m)):
        if value < 0:
            raise RuntimeError(f"eye: {name} must be greater or equal to 0, got {value}")
    return _factory(
        "eye", (n, m), dtype, requires_grad, device, lambda shape, d: np.eye(*shape, dtype=d)
    )


def arange(
    start=0, end=None, step=1, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 unless an argument is a float.

    >>> import graphgrad as gg
    >>> gg.arange(5).tolist(), gg.arange(end=3).tolist(), gg.arange(4, 0, -2).tolist()
    ([0, 1, 2, 3, 4], [0, 1, 2], [4, 2])
    """
    if end is None:
        start, end = 0, start
    start, end, step = (_number("arange", k, v) for k, v in zip(_RANGE, (start, end, step)))
    if not all(math.isfinite(v) for v in (start, end)):
        raise RuntimeError(f"arange: unsupported range: {start} -> {end}")
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (step > 0 and end < start) or (step < 0 and end > start):
        raise RuntimeError(
            f"arange: upper bound and lower bound inconsistent with step sign "
            f"(start={start}, end={end}, step={step})"
        )
    is_float = any(isinstance(v, float) for v in (start, end, step))
    default = _dtype.DEFAULT_FLOAT if is_float else _dtype.DEFAULT_INT
    count = max(0, math.ceil((end - start) / step))
    values = start + np.arange(count, dtype=np.float64 if is_float else np.int64) * step
    return _factory(
        "arange",
        (count,),
        dtype,
        requires_grad,
        device,
        lambda shape, d: values.astype(d),
        default,
        kinds="fiu",
    )


_RANGE = ("start", "end", "step")


def linspace(
    start, end, steps: int, *, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    start, end = _number("linspace", "start", start), _number("linspace", "end", end)
    steps = _integer("linspace", "steps", steps)
    if steps < 0:
        raise RuntimeError(f"linspace: number of steps must be non-negative, got {steps}")
    return _factory(
        "linspace",
        (steps,),
        dtype,
        requires_grad,
        device,
        lambda shape, d: np.linspace(start, end, steps).astype(d),
        kinds="fiu",
    )


def _like(fn, t: Tensor, dtype, requires_grad, **kwargs) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(
            f"{fn.__name__}_like(): argument 'input' must be Tensor, not {type(t).__name__}"
        )
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
        seed = int(seed)
        if not -(2**63) <= seed < 2**64:  # torch's range: a negative seed wraps, as a uint64
            raise ValueError(f"manual_seed: Overflow when unpacking long long: {seed}")
        self._seed = seed % 2**64
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        return self._seed

    def seed(self) -> int:
        return self.manual_seed(int(np.random.SeedSequence().entropy % (2**63)))._seed

    def get_state(self) -> Tensor:
        """The generator's position as a uint8 tensor, as torch's ``Generator.get_state`` gives:
        a copy, which :meth:`set_state` puts back (the bytes are PCG64's, not torch's).

        >>> import graphgrad as gg
        >>> g = gg.Generator().manual_seed(0)
        >>> state = g.get_state()
        >>> state.dtype, tuple(state.shape)
        (graphgrad.uint8, (40,))
        >>> a = gg.rand(2, generator=g)
        >>> a.equal(gg.rand(2, generator=g.set_state(state)))
        True
        """
        state = self.rng.bit_generator.state
        words = (state["state"]["state"], state["state"]["inc"])
        raw = b"".join(w.to_bytes(16, "little") for w in words)
        raw += state["has_uint32"].to_bytes(4, "little") + state["uinteger"].to_bytes(4, "little")
        return _new(np.frombuffer(raw, dtype=np.uint8).copy(), False)

    def set_state(self, new_state) -> Generator:
        """Move the generator to ``new_state``, a tensor from :meth:`get_state`."""
        array = new_state.numpy() if isinstance(new_state, Tensor) else None
        if array is None or array.dtype != np.uint8 or array.shape != (_STATE_BYTES,):
            what = (f"a {array.dtype} tensor of shape {tuple(array.shape)}" if array is not None
                    else type(new_state).__name__)
            raise TypeError(f"Generator.set_state: expected the uint8 tensor of shape "
                            f"({_STATE_BYTES},) that get_state gives, got {what}")
        raw = array.tobytes()
        self.rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(raw[:16], "little"),
                      "inc": int.from_bytes(raw[16:32], "little")},
            "has_uint32": int.from_bytes(raw[32:36], "little"),
            "uinteger": int.from_bytes(raw[36:40], "little"),
        }
        return self


_STATE_BYTES = 40  # PCG64: 128-bit state and increment, then the buffered 32-bit half-draw


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


def rand(
    *args, size=None, generator=None, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """Uniform samples from [0, 1), of a floating-point dtype."""
    return _factory(
        "rand",
        _size_of("rand", args, size),
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).random(shape).astype(d),
        kinds="f",
    )


def randn(
    *args, size=None, generator=None, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    """Standard normal samples, of a floating-point dtype."""
    return _factory(
        "randn",
        _size_of("randn", args, size),
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).standard_normal(shape).astype(d),
        kinds="f",
    )


def randint(
    low=0,
    high=None,
    size=None,
    *,
    generator=None,
    dtype=None,
    device=None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers from ``low`` (default 0) to ``high`` (exclusive): ``randint(high, size)`` too.

    >>> import graphgrad as gg
    >>> gg.randint(3, (4,)).shape, gg.randint(high=2, size=(2, 2), dtype=gg.bool).dtype
    (graphgrad.Size([4]), graphgrad.bool)
    """
    if size is None:
        if high is None or not isinstance(high, (tuple, list, Size)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    low, high = _integer("randint", "low", low), _integer("randint", "high", high)
    if high <= low:
        raise RuntimeError(f"randint: expects low < high, got low={low}, high={high}")
    if dtype is not None:
        _check_randint_bounds(low, high, _factory_dtype("randint", dtype))
    return _factory(
        "randint",
        size,
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).integers(low, high, shape).astype(d),
        _dtype.DEFAULT_INT,
    )


def _check_randint_bounds(low: int, high: int, np_dtype: np.dtype, name="randint") -> None:
    """torch refuses a range the dtype cannot hold rather than wrap its draws around."""
    if np_dtype.kind == "f":
        return
    info = (0, 1) if np_dtype.kind == "b" else (np.iinfo(np_dtype).min, np.iinfo(np_dtype).max)
    dtype = _dtype.from_numpy_dtype(np_dtype)
    if not info[0] <= low <= info[1]:
        raise RuntimeError(f"{name}: from ({low}) is out of bounds for {dtype}")
    if not info[0] <= high - 1 <= info[1]:
        raise RuntimeError(f"{name}: to - 1 ({high - 1}) is out of bounds for {dtype}")


def randperm(
    n: int, *, generator=None, dtype=None, device=None, requires_grad: bool = False
) -> Tensor:
    n = _integer("randperm", "n", n)
    return _factory(
        "randperm",
        (n,),
        dtype,
        requires_grad,
        device,
        lambda shape, d: _rng(generator).permutation(n).astype(d),
        _dtype.DEFAULT_INT,
        kinds="fiu",
    )


def rand_like(input: Tensor, *, generator=None, dtype=None, device=None,  # noqa: A002
              requires_grad: bool = False) -> Tensor:
    return _like(rand, input, dtype, requires_grad, generator=generator, device=device)


def randn_like(input: Tensor, *, generator=None, dtype=None, device=None,  # noqa: A002
               requires_grad: bool = False) -> Tensor:
    return _like(randn, input, dtype, requires_grad, generator=generator, device=device)


def randint_like(input: Tensor, low=0, high=None, *, generator=None, dtype=None,  # noqa: A002
                 device=None, requires_grad: bool = False) -> Tensor:
    """Integers from ``low`` to ``high`` (exclusive) shaped like ``input``, of its dtype.

    >>> import graphgrad as gg
    >>> x = gg.randint_like(gg.zeros(2, 3), 5)
    >>> x.shape, x.dtype, bool(((x >= 0) & (x < 5)).all())
    (graphgrad.Size([2, 3]), graphgrad.float32, True)
    """
    if not isinstance(input, Tensor):
        raise TypeError(
            f"randint_like(): argument 'input' must be Tensor, not {type(input).__name__}"
        )
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, generator=generator,
                   dtype=input.dtype if dtype is None else dtype, device=device,
                   requires_grad=requires_grad)


@with_out
def normal(mean, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples with torch's four forms: ``normal(mean_tensor, std_tensor)`` (shapes
    broadcast), ``normal(mean_tensor, std=1.0)``, ``normal(mean, std_tensor)`` and
    ``normal(mean, std, size)``. As in torch, a result computed from tensors that require grad
    requires grad, and its gradient with respect to them is zero (use ``mean + std * randn``
    to differentiate through a sample).

    >>> import graphgrad as gg
    >>> _ = gg.manual_seed(0)
    >>> gg.normal(2.0, 0.5, (2, 3)).shape, gg.normal(gg.zeros(4), 1.0).dtype
    (graphgrad.Size([2, 3]), graphgrad.float32)
    >>> gg.normal(gg.zeros(2, 1), gg.ones(3)).shape
    graphgrad.Size([2, 3])
    """
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError(
                f"normal() received an invalid combination of arguments - got "
                f"({type(mean).__name__}, {type(std).__name__}): with a number mean and std, "
                f"pass a size, as normal(mean, std, size)"
            )
        mean, std = _number("normal", "mean", mean), _number("normal", "std", std)
        _check_std(std)
        return _factory(
            "normal", size, dtype, requires_grad, device,
            lambda shape, d: (_rng(generator).standard_normal(shape) * std + mean).astype(d),
            kinds="f",
        )
    if size is not None or dtype is not None or requires_grad:
        raise TypeError("normal(): size, dtype and requires_grad are only taken with a number "
                        "mean and std: normal(mean, std, size, dtype=..., requires_grad=...)")
    _check_device(device)
    for t in tensors:
        if t._data.dtype.kind != "f":
            raise NotImplementedError(f'"normal_kernel_cpu" not implemented for {t.dtype}')
    if not isinstance(std, Tensor):
        _check_std(_number("normal", "std", std))
    elif _state.state.capture is None and bool((std._data < 0).any()):  # a replay cannot check
        raise RuntimeError("normal expects all elements of std >= 0.0")
    if not isinstance(mean, Tensor):
        mean = _number("normal", "mean", mean)
    shape = np.broadcast_shapes(*(t._data.shape for t in tensors))
    np_dtype = np.result_type(*(t._data for t in tensors))
    # torch: output.normal_(0, 1), then output.mul_(std).add_(mean); these ops are recorded
    noise = randn(shape, generator=generator, dtype=_dtype.from_numpy_dtype(np_dtype))
    sample = noise * _detached(std) + _detached(mean)
    return _zero_gradient(sample, tensors)


def _check_std(std) -> None:
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")


def _detached(value):
    return value.detach() if isinstance(value, Tensor) else value


def _zero_gradient(sample: Tensor, sources: list) -> Tensor:
    """``sample``, but requiring grad when a source does, with a zero gradient for each source
    (torch's for a random draw from given parameters): ``where`` of an all-False mask passes
    ``sample`` through exactly and routes zeros back to the source."""
    needing = [t for t in sources if t.requires_grad and _state.is_grad_enabled()]
    if not needing:
        return sample
    nowhere = zeros(sample.shape, dtype=_dtype.bool_)
    for source in needing:
        sample = where(nowhere, source, sample)
    return sample


@with_out
def bernoulli(input: Tensor, p=None, *, generator=None) -> Tensor:  # noqa: A002
    """0/1 samples of ``input``'s dtype, 1 with probability ``input`` (or ``p``) elementwise.

    >>> import graphgrad as gg
    >>> _ = gg.manual_seed(0)
    >>> gg.bernoulli(gg.tensor([0.0, 1.0, 1.0])).tolist(), gg.zeros(2).bernoulli(1.0).tolist()
    ([0.0, 1.0, 1.0], [1.0, 1.0])
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f'"bernoulli_tensor_cpu_p_" not implemented for {input.dtype}')
    if p is None:
        if _state.state.capture is None and not bool(  # a replay cannot check
                ((input._data >= 0) & (input._data <= 1)).all()):
            raise RuntimeError("bernoulli: every probability in input must be in [0, 1] "
                               "(torch: Expected p_in >= 0 && p_in <= 1 to be true)")
        probability = input.detach()
    else:
        probability = _number("bernoulli", "p", p)
        if not 0 <= probability <= 1:
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={probability}")
    uniform = rand(input.shape, generator=generator, dtype=_dtype.float64)
    sample = (uniform < probability).to(input.dtype)
    return _zero_gradient(sample, [input])


def poisson(input: Tensor, generator=None) -> Tensor:  # noqa: A002
    """Poisson samples with the rates in ``input``, of its (floating-point) dtype.

    >>> import graphgrad as gg
    >>> _ = gg.manual_seed(0)
    >>> gg.poisson(gg.tensor([0.0, 0.0])).tolist()
    [0.0, 0.0]
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"poisson(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input._data.dtype.kind != "f":
        raise NotImplementedError(f'"poisson_cpu" not implemented for {input.dtype}')
    _state.note("read", input, "poisson()")  # its draws depend on the rates' values
    rates = input._data
    if not bool((rates >= 0).all()):
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    sample = _new(_rng(generator).poisson(rates).astype(rates.dtype), False)
    return _zero_gradient(sample, [input])


@with_out
def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator=None) -> Tensor:
    """Indices (int64) drawn from the categories of each row of ``input`` (1-D or 2-D,
    non-negative weights that need not sum to 1); without ``replacement``, each index at most
    once per row.

    >>> import graphgrad as gg
    >>> _ = gg.manual_seed(0)
    >>> gg.multinomial(gg.tensor([0.0, 5.0, 0.0]), 2, replacement=True).tolist()
    [1, 1]
    >>> sorted(gg.multinomial(gg.tensor([[1.0, 2.0, 3.0]]), 3)[0].tolist())
    [0, 1, 2]
    """
    if not isinstance(input, Tensor):
        raise TypeError(
            f"multinomial(): argument 'input' must be Tensor, not {type(input).__name__}"
        )
    num_samples = _integer("multinomial", "num_samples", num_samples)
    weights = input._data
    if weights.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got {weights.ndim} dims")
    if weights.dtype.kind != "f":
        raise RuntimeError(
            f"multinomial only supports floating-point dtypes for input, got: {input.dtype}"
        )
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    categories = weights.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(
            f"cannot sample n_sample > prob_dist.size(-1) samples without replacement "
            f"(n_sample={num_samples}, prob_dist.size(-1)={categories})"
        )
    _state.note("read", input, "multinomial()")  # its draws depend on the weights' values
    rows = weights.reshape(-1, categories).astype(np.float64)
    if not bool(np.isfinite(rows).all() and (rows >= 0).all()):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(axis=1)
    if not bool((totals > 0).all()):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = _rng(generator)
    if replacement:
        indices = _inverse_cdf(rows / totals[:, None], rng.random((len(rows), num_samples)))
    else:  # torch's way: the top-k of weight / Exponential(1), in order
        keys = -rows / rng.standard_exponential(rows.shape)
        if num_samples < categories:  # only the k smallest keys need sorting
            indices = np.argpartition(keys, num_samples - 1, axis=1)[:, :num_samples]
            order = np.argsort(np.take_along_axis(keys, indices, 1), axis=1, kind="stable")
            indices = np.take_along_axis(indices, order, 1)
        else:
            indices = np.argsort(keys, axis=1, kind="stable")
    return _new(indices.reshape(weights.shape[:-1] + (num_samples,)).astype(np.int64), False)


def _inverse_cdf(probabilities: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """For each row, the category each uniform number falls in: one searchsorted over all rows,
    each row's CDF shifted by its row number so that the rows stay apart."""
    rows, categories = probabilities.shape
    offsets = np.arange(rows, dtype=np.float64)[:, None]
    cdf = np.cumsum(probabilities, axis=1)
    found = np.searchsorted((cdf + offsets).ravel(), (uniform + offsets).ravel(), side="right")
    found = found.reshape(uniform.shape) - np.arange(rows)[:, None] * categories
    # a draw past a CDF that rounds below 1 belongs to the row's last category of weight > 0
    last = categories - 1 - np.argmax(probabilities[:, ::-1] > 0, axis=1)
    return np.minimum(found, last[:, None])


tensor_method(bernoulli)
tensor_method(multinomial)


def _bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    """``x.bernoulli_(p)``: every element becomes 1 with probability ``p`` (a number, or a
    tensor of probabilities that broadcasts to ``x``), else 0; ``x`` keeps its dtype."""
    if isinstance(p, Tensor):
        probability = p._data
        if not bool(((probability >= 0) & (probability <= 1)).all()):
            raise RuntimeError("bernoulli_: every probability in p must be in [0, 1]")
    else:
        probability = _number("bernoulli_", "p", p)
        if not 0 <= probability <= 1:
            raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={probability}")
    draws = _rng(generator).random(self._data.shape) < probability
    return self._assign("bernoulli_", draws.astype(self._data.dtype))


def _random_(self: Tensor, *bounds, generator=None) -> Tensor:
    """``x.random_()``, ``x.random_(to)``, ``x.random_(from, to)``: integers from ``from``
    (default 0) to ``to`` exclusive; without ``to``, up to the largest integer the dtype holds
    exactly (2**24 for float32, as torch)."""
    if len(bounds) > 2:
        raise TypeError(f"random_() takes at most 2 positional arguments ({len(bounds)} given)")
    low, high = bounds if len(bounds) == 2 else (0, *bounds, None)[:2]
    dtype = self._data.dtype
    if high is None:
        high = _RANDOM_TOP.get(dtype.str[1:]) or (int(np.iinfo(dtype).max) + 1
                                                  if dtype.kind in "iu" else 2)
    low, high = _integer("random_", "from", low), _integer("random_", "to", high)
    if low >= high:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    _check_randint_bounds(low, high, dtype, "random_")
    draws = _rng(generator).integers(low, high, self._data.shape)
    return self._assign("random_", draws.astype(dtype))


# random_() without 'to' draws up to 2**digits, the integers a float dtype holds exactly
_RANDOM_TOP = {"f2": 2**11 + 1, "f4": 2**24 + 1, "f8": 2**53 + 1}

Tensor.bernoulli_ = _bernoulli_
Tensor.random_ = _random_


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
    and name not in ("annotations", "builtins", "math", "np", "Size", "Tensor", "tensor_method",
                     "where", "with_out")
]
