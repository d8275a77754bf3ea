"""``graphgrad.nn.utils``: gradient clipping and flattening parameters to one vector."""

from __future__ import annotations

import math

from ... import _state, creation
from ...autograd import no_grad
from ...tensor import Tensor, cat, stack


def _as_list(parameters) -> list:
    return [parameters] if isinstance(parameters, Tensor) else list(parameters)


@_state.replayed
def clip_grad_norm_(
    parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:  # fmt: skip
    """Scale all gradients together so that their joint ``norm_type``-norm is at most
    ``max_norm``; returns that norm (before clipping), as torch.

    ``foreach`` is accepted for torch's signature; there is one implementation.

    >>> import graphgrad as gg
    >>> w = gg.zeros(2, requires_grad=True); w.grad = gg.tensor([3.0, 4.0])
    >>> clip_grad_norm_([w], 1.0).item(), [round(g, 4) for g in w.grad.tolist()]
    (5.0, [0.6, 0.8])
    """
    grads = [p.grad for p in _as_list(parameters) if p.grad is not None]
    if not grads:
        return creation.tensor(0.0)
    norm_type = float(norm_type)
    with no_grad():
        norms = [g.norm(norm_type) for g in grads]
        total = stack(norms).amax() if math.isinf(norm_type) else stack(norms).norm(norm_type)
        if error_if_nonfinite and not bool(total.isfinite()):
            raise RuntimeError(
                f"The total norm of order {norm_type} for gradients from `parameters` is "
                "non-finite, so it cannot be clipped. To disable this error and scale the "
                "gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
            )
        coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))
    return total


@_state.replayed
def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value].

    >>> import graphgrad as gg
    >>> w = gg.zeros(2, requires_grad=True); w.grad = gg.tensor([3.0, -0.5])
    >>> clip_grad_value_([w], 1.0); w.grad.tolist()
    [1.0, -0.5]
    """
    with no_grad():
        for p in _as_list(parameters):
            if p.grad is not None:
                p.grad.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated (differentiable).

    >>> import graphgrad as gg
    >>> parameters_to_vector(gg.nn.Linear(3, 2).parameters()).shape
    graphgrad.Size([8])
    """
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Point each parameter's data at its slice of ``vec`` (no copy, as torch).

    >>> import graphgrad as gg
    >>> layer = gg.nn.Linear(1, 1)
    >>> vector_to_parameters(gg.tensor([2.0, 3.0]), layer.parameters())
    >>> layer.weight.item(), layer.bias.item()
    (2.0, 3.0)
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    start = 0
    for p in parameters:
        n = p.numel()
        p.data = vec[start : start + n].view_as(p).data
        start += n
