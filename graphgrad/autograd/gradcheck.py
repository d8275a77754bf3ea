"""Compare analytical gradients with float64 central differences."""

from __future__ import annotations

import numpy as np

from .. import _state
from ..tensor import Tensor, wrap
from .grad_mode import enable_grad


class GradcheckError(RuntimeError):
    pass


def _outputs(fn, inputs) -> list:
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else list(out)


def _numerical_jacobians(fn, inputs, i, eps) -> list:
    """d(each output)/d(input i) by central differences, one column per input element."""
    x = inputs[i]._data
    flat = x.reshape(-1)
    columns = []
    previous = _state.state.grad_enabled
    _state.state.grad_enabled = False
    try:
        for k in range(flat.size):
            saved = flat[k]
            flat[k] = saved + eps
            plus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[k] = saved - eps
            minus = [o._data.astype(np.float64).reshape(-1) for o in _outputs(fn, inputs)]
            flat[k] = saved
            columns.append([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
    finally:
        _state.state.grad_enabled = previous
    n_out = len(columns[0]) if columns else len(_outputs(fn, inputs))
    return [
        np.stack([col[o] for col in columns], axis=1) if columns else None for o in range(n_out)
    ]


def _analytical_jacobians(fn, inputs, i, create_graph=False) -> list:
    from . import grad

    outs = _outputs(fn, inputs)
    jacobians = []
    for out in outs:
        rows = []
        for k in range(out.numel() if out.requires_grad else 0):  # else a constant: zeros
            seed = np.zeros(out._data.size, dtype=out._data.dtype)
            seed[k] = 1
            (g,) = grad(
                out,
                inputs[i],
                wrap(seed.reshape(out._data.shape)),
                retain_graph=True,
                allow_unused=True,
            )
            rows.append(np.zeros(inputs[i]._data.size) if g is None else g._data.reshape(-1))
        jacobian = np.array(rows, dtype=np.float64).reshape(-1, inputs[i].numel())
        jacobians.append(jacobian if rows else np.zeros((out.numel(), inputs[i].numel())))
    return jacobians


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check ``func``'s gradients against float64 central differences, for every input that
    requires grad; on failure, name the output, the input and the worst element.

    >>> import graphgrad as gg
    >>> x = gg.tensor([0.5, 1.5], dtype=gg.float64, requires_grad=True)
    >>> gg.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        if x._data.dtype != np.float64:
            raise GradcheckError(
                f"gradcheck: input {i} is {x.dtype}; central differences need "
                f"float64 inputs to be meaningful"
            )
        numerical = _numerical_jacobians(func, inputs, i, eps)
        analytical = _analytical_jacobians(func, inputs, i)
        for o, (num, ana) in enumerate(zip(numerical, analytical)):
            num = num if num is not None else np.zeros_like(ana)
            diff = np.abs(num - ana)
            bad = diff > atol + rtol * np.abs(num)
            if bad.any():
                r, c = np.unravel_index(np.argmax(diff - (atol + rtol * np.abs(num))), diff.shape)
                message = (
                    f"Jacobian mismatch for output {o} with respect to input {i}: worst at "
                    f"output element {r}, input element {c}: numerical {num[r, c]!r}, "
                    f"analytical {ana[r, c]!r} ({int(bad.sum())} of {bad.size} elements "
                    f"differ beyond atol={atol}, rtol={rtol})"
                )
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True


def gradgradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """gradcheck of the first derivative: checks second derivatives (``create_graph=True``).

    >>> import graphgrad as gg
    >>> x = gg.tensor([0.5, 1.5], dtype=gg.float64, requires_grad=True)
    >>> gg.autograd.gradgradcheck(lambda t: (t.sin() * t).prod(), (x,))
    True
    """
    from . import grad

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    wrt = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    def first_derivatives(*xs):
        with enable_grad():  # central differences call this under no_grad; it needs a graph
            outs = _outputs(func, xs)
            total = outs[0].sum()
            for o in outs[1:]:
                total = total + o.sum()
            grads = grad(
                total,
                [x for x in xs if isinstance(x, Tensor) and x.requires_grad],
                create_graph=True,
                allow_unused=True,
                materialize_grads=True,
            )
        return tuple(grads)

    if not wrt:
        return True
    return gradcheck(
        first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception
    )
