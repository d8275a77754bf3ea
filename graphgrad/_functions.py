"""torch-style free functions (``graphgrad.exp(x)``) for the Tensor methods of the same name."""

from __future__ import annotations

from .tensor import Tensor, chunk, matmul, split, where  # noqa: F401  (re-exported)


def _function_of(method_name: str):
    method = getattr(Tensor, method_name)

    def function(input, *args, **kwargs):  # noqa: A002 - torch's argument name
        if not isinstance(input, Tensor):
            raise TypeError(
                f"{method_name}(): argument 'input' must be a Tensor, not {type(input).__name__}"
            )
        return method(input, *args, **kwargs)

    function.__name__ = function.__qualname__ = method_name
    function.__doc__ = method.__doc__ or f"Same as ``Tensor.{method_name}``."
    return function


_METHODS = """
add sub mul div true_divide pow neg negative exp log log1p sqrt rsqrt sin cos tan tanh sigmoid relu
abs sign floor ceil round clamp clip clamp_min clamp_max maximum minimum remainder floor_divide
square reciprocal lerp eq ne lt le gt ge equal logical_and logical_or logical_xor logical_not isnan
isinf isfinite all any allclose reshape flatten unflatten squeeze unsqueeze permute transpose
swapaxes t narrow gather sum mean nansum var std prod max min amax amin argmax argmin logsumexp
softmax log_softmax norm mm bmm dot numel clone detach flip
""".split()

for _name in _METHODS:
    globals()[_name] = _function_of(_name)

__all__ = _METHODS + ["matmul", "where", "split", "chunk"]
