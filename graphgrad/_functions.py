"""torch-style free functions (``graphgrad.exp(x)``) for the Tensor methods of the same name.

As in torch, a Python number may stand for the tensor in the arithmetic ones, and ``x=``/``a=``
spell ``input=``:

>>> import graphgrad as gg
>>> gg.pow(2.0, gg.tensor([1.0, 3.0])).tolist(), gg.sub(1, gg.tensor([3])).tolist()
([2.0, 8.0], [-2])
>>> gg.sum(a=gg.ones(2, 3), axis=1).tolist()
[3.0, 3.0]
"""

from __future__ import annotations

import builtins

import numpy as np

from . import tensor as _tensor
from .tensor import Tensor, _binary_dtype, chunk, split, with_out, wrap  # noqa: F401

# torch lets a Python number stand for the tensor in these (its argument parser's list, plus the
# Scalar-first overloads of pow and remainder): add(2, x) is 2 + x.
_NUMBERS_AS_TENSORS = frozenset(
    "add sub mul div true_divide divide multiply subtract floor_divide pow remainder".split()
)
_SCALAR_FIRST_ONLY = frozenset(("pow", "remainder"))  # pow(2, 3) and remainder(2, 3) are refused
_NUMBERS = (builtins.int, builtins.float, builtins.bool)
_INPUT_ALIASES = ("x", "a", "x1")  # torch's NumPy spellings of `input`; `x2` is `other`'s


def _function_of(method_name: str):
    method = getattr(Tensor, method_name)
    numbers_ok = method_name in _NUMBERS_AS_TENSORS

    def function(*args, **kwargs):
        if kwargs:
            args = _input_keyword(method_name, args, kwargs)
        if args and isinstance(args[0], Tensor):
            return method(*args, **kwargs)
        if not args:
            raise TypeError(f"{method_name}() missing 1 required positional argument: 'input'")
        number, *rest = args
        if not (numbers_ok and isinstance(number, _NUMBERS)):
            raise TypeError(
                f"{method_name}(): argument 'input' must be a Tensor, not {type(number).__name__}"
            )
        if method_name == "pow" and rest and isinstance(rest[0], Tensor) and not kwargs:
            return rest[0].__rpow__(number)  # torch's pow(Scalar, Tensor): PowBackward2
        return method(_number_as_tensor(method_name, number, rest, kwargs), *rest, **kwargs)

    function.__name__ = function.__qualname__ = method_name
    function.__doc__ = method.__doc__ or f"Same as ``Tensor.{method_name}``."
    return with_out(function) if method_name in _WITH_OUT else function


def _input_keyword(name: str, args: tuple, kwargs: dict) -> tuple:
    """Move ``input=`` (or its NumPy spellings) into ``args`` and ``x2=`` to ``other=``."""
    for key in ("input",) + _INPUT_ALIASES:
        if key in kwargs:
            if args:
                raise TypeError(f"{name}() got multiple values for argument 'input'")
            args = (kwargs.pop(key),)
            break
    if "x2" in kwargs and "other" not in kwargs:
        kwargs["other"] = kwargs.pop("x2")
    return args


def _number_as_tensor(name: str, number, rest: list, kwargs: dict) -> Tensor:
    """The number as a 0-d tensor of the dtype torch gives ``number op other``: the number
    promotes as a Python scalar does (``add(2.5, float16 tensor)`` stays float16)."""
    other = rest[0] if rest else kwargs.get("exponent" if name == "pow" else "other")
    if name in _SCALAR_FIRST_ONLY and not isinstance(other, Tensor):
        raise TypeError(
            f"{name}(): with a number as 'input', the other argument must be a Tensor, not "
            f"{type(other).__name__}"
        )
    if not isinstance(other, (Tensor, *_NUMBERS)):
        other = number  # a list or array: the method refuses or converts it; the number is alone
    return wrap(np.asarray(number, dtype=_binary_dtype(number, other)))


# The functions that take torch's out= (torch's own list, read off its signatures).
_WITH_OUT = frozenset("""
add sub mul div true_divide divide multiply subtract pow neg negative exp log log1p sqrt rsqrt sin
cos tan tanh sigmoid abs sign floor ceil round clamp clip clamp_min clamp_max maximum minimum
remainder floor_divide square reciprocal lerp eq ne lt le gt ge logical_and logical_or logical_xor
logical_not all any gather sum mean nansum var std prod max min amax amin argmax argmin logsumexp
softmax log_softmax norm mm bmm dot
""".split())

_METHODS = """
add sub mul div true_divide divide multiply subtract pow neg negative exp log log1p sqrt rsqrt sin
cos tan tanh sigmoid relu abs sign floor ceil round clamp clip clamp_min clamp_max maximum minimum
remainder floor_divide square reciprocal lerp eq ne lt le gt ge equal logical_and logical_or
logical_xor logical_not isnan isinf isfinite all any allclose reshape flatten unflatten squeeze
unsqueeze permute transpose swapaxes t narrow gather sum mean nansum var std prod max min amax amin
argmax argmin logsumexp softmax log_softmax norm mm bmm dot numel clone detach flip
""".split()

for _name in _METHODS:
    globals()[_name] = _function_of(_name)

matmul, where, cat, stack = (with_out(f) for f in (_tensor.matmul, _tensor.where, _tensor.cat,
                                                      _tensor.stack))
concat = concatenate = cat

__all__ = _METHODS + ["matmul", "where", "split", "chunk", "cat", "stack", "concat", "concatenate"]
