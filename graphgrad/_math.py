"""More elementwise math as Tensor methods and free functions (erf, asin, atan2, ...).

Each is torch's: the same name, arguments, result dtype (an integer tensor gives float32 where
torch's does) and gradient, and the free function takes ``out=`` as torch's does.

>>> import graphgrad as gg
>>> gg.atan2(gg.tensor([1.0], dtype=gg.float64), gg.tensor([1.0], dtype=gg.float64)).mul(4).item()
3.141592653589793
>>> gg.tensor([0.5, -2.7]).trunc().tolist(), gg.tensor([1, 2]).log2().dtype
([0.0, -2.0], graphgrad.float32)
"""

from __future__ import annotations

from .ops import OPS
from .tensor import Tensor, _binary, _tensor_argument, apply, tensor_method, with_out
from .tensor import _unary as _unary_method

_UNARY = "erf asin acos atan sinh cosh asinh acosh atanh log2 log10 exp2 trunc".split()
# torch's other names for the same functions (NumPy's spellings, and fix for trunc)
_ALIASES = {
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arcsinh": "asinh",
    "arccosh": "acosh", "arctanh": "atanh", "fix": "trunc", "arctan2": "atan2",
}  # fmt: skip


def _free_function(name: str, method):
    """``graphgrad.name(input, *, out=None)`` for the one-tensor method ``method``."""

    def function(input):  # noqa: A002 - torch's argument name
        if not isinstance(input, Tensor):
            raise TypeError(
                f"{name}(): argument 'input' (position 1) must be Tensor, not "
                f"{type(input).__name__}"
            )
        return method(input)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"Elementwise {name} (torch.{name}); the same as ``Tensor.{name}``."
    return with_out(function)


for _name in _UNARY:
    setattr(Tensor, _name, _unary_method(_name))
    globals()[_name] = _free_function(_name, getattr(Tensor, _name))


def atan2(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The angle of the point (other, input), in (-pi, pi]; integers give float32.

    >>> import graphgrad as gg
    >>> gg.atan2(gg.tensor([0.0]), gg.tensor([-1.0])).item() > 3.14
    True
    """
    _tensor_argument("atan2", "input", input)
    other = _tensor_argument("atan2", "other", other)
    return _binary(OPS["atan2"], input, other, float_only=True)


def fmod(input: Tensor, other) -> Tensor:  # noqa: A002
    """The remainder of input / other with the sign of ``input`` (C's fmod); ``other`` may be a
    number. Compare ``remainder``, whose result takes the sign of ``other``.

    >>> import graphgrad as gg
    >>> gg.fmod(gg.tensor([-5.0, 5.0]), 3).tolist(), gg.tensor([-5, 5]).fmod(3).tolist()
    ([-2.0, 2.0], [-2, 2])
    """
    _tensor_argument("fmod", "input", input)
    return _binary(OPS["fmod"], input, other)


def copysign(input: Tensor, other) -> Tensor:  # noqa: A002
    """|input| with the sign of ``other`` (a tensor or a number), as a float tensor.

    >>> import graphgrad as gg
    >>> gg.copysign(gg.tensor([1, -2]), -0.0).tolist()
    [-1.0, -2.0]
    """
    _tensor_argument("copysign", "input", input)
    return _binary(OPS["copysign"], input, other, float_only=True)


def logaddexp(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """log(e^input + e^other), without overflow.

    >>> import graphgrad as gg
    >>> gg.logaddexp(gg.tensor([1000.0]), gg.tensor([1000.0])).item()
    1000.6931762695312
    """
    _tensor_argument("logaddexp", "input", input)
    other = _tensor_argument("logaddexp", "other", other)
    if not (input.is_floating_point() or other.is_floating_point()):  # torch has no int kernel
        raise NotImplementedError(
            f'"logaddexp" not implemented for {input.dtype.name} and {other.dtype.name} '
            f"(use floating-point tensors)"
        )
    return _binary(OPS["logaddexp"], input, other)


def nan_to_num(input: Tensor, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:  # noqa: A002
    """NaN as ``nan``, +inf as ``posinf`` and -inf as ``neginf`` (by default the dtype's
    largest and lowest finite values); the gradient passes only where ``input`` is finite.

    >>> import graphgrad as gg
    >>> gg.tensor([float("nan"), -float("inf"), 2.0]).nan_to_num(neginf=-9.0).tolist()
    [0.0, -9.0, 2.0]
    """
    _tensor_argument("nan_to_num", "input", input)
    return apply(OPS["nan_to_num"], (input,), (nan, posinf, neginf))


def isclose(input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08,  # noqa: A002
            equal_nan: bool = False) -> Tensor:  # fmt: skip
    """|input - other| <= atol + rtol |other|, elementwise, as a bool tensor (infinities are
    close only to themselves, NaN to NaN only with ``equal_nan``).

    >>> import graphgrad as gg
    >>> gg.isclose(gg.tensor([1.0, 1.1]), gg.tensor([1.0 + 1e-7, 1.0])).tolist()
    [True, False]
    """
    _tensor_argument("isclose", "input", input)
    other = _tensor_argument("isclose", "other", other)
    if input._data.dtype != other._data.dtype:
        raise RuntimeError(
            f"isclose(): {input.dtype.name} did not match {other.dtype.name} (the two tensors "
            f"must have one dtype)"
        )
    for argument, value in (("rtol", rtol), ("atol", atol)):
        if value < 0:
            raise RuntimeError(
                f"isclose(): {argument} must be greater than or equal to zero, but got {value}"
            )
    return apply(OPS["isclose"], (input, other), (rtol, atol, equal_nan))


for _function in (atan2, fmod, copysign, logaddexp, nan_to_num, isclose):
    tensor_method(_function)
    if _function is not isclose:  # torch's isclose alone has no out=
        globals()[_function.__name__] = with_out(_function)

for _alias, _target in _ALIASES.items():
    setattr(Tensor, _alias, getattr(Tensor, _target))
    globals()[_alias] = globals()[_target]


__all__ = _UNARY + list(_ALIASES) + ["atan2", "fmod", "copysign", "logaddexp", "nan_to_num",
                                      "isclose"]  # fmt: skip
