"""Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
decay: torch.optim.SGD's single-tensor algorithm, operation for operation."""

from __future__ import annotations

from ..tensor import wrap
from .optimizer import Optimizer


def sgd_update(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, maximize=False):
    """One SGD step on NumPy arrays, in place on ``param``; returns the momentum buffer.

    ``momentum_buffer`` is None before the first step with momentum (the buffer then starts as
    the gradient, as in torch) and stays None without momentum. ``grad`` is never modified.

    >>> import numpy as np
    >>> p = np.array([1.0, 2.0])
    >>> buf = sgd_update(p, np.array([1.0, 1.0]), None, lr=0.1, momentum=0.9)
    >>> p, buf
    (array([0.9, 1.9]), array([1., 1.]))
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + param * weight_decay
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.copy()
        else:
            momentum_buffer *= momentum
            momentum_buffer += grad if dampening == 0 else grad * (1 - dampening)
        grad = grad + momentum_buffer * momentum if nesterov else momentum_buffer
    param += grad * -lr
    return momentum_buffer


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> round(w.item(), 6)
    0.46
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": None, "differentiable": False, "fused": None}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        hyper = {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov",
                                       "maximize")}
        for p in params:
            # torch keeps no state at all for a parameter when there is no momentum
            state = self.state[p] if hyper["momentum"] != 0 else {}
            buf = state.get("momentum_buffer")
            buf = sgd_update(p._data, p.grad._data, None if buf is None else buf._data, **hyper)
            if buf is not None and "momentum_buffer" not in state:
                state["momentum_buffer"] = wrap(buf)
