"""Adadelta: torch.optim.Adadelta's single-tensor algorithm, operation for operation."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from .optimizer import Optimizer, check_kernel_flags, increment, new_step


def adadelta_update(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay=0.0,
                    maximize=False, scratch=None):
    """One Adadelta step on NumPy arrays, in place on ``param``, ``square_avg`` and
    ``acc_delta``; ``scratch`` may hold two work buffers shaped like ``param``.

    >>> import numpy as np
    >>> p, sq, acc = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> adadelta_update(p, np.array([2.0]), sq, acc, lr=1.0, rho=0.75, eps=0.0)
    >>> p, sq
    (array([1.]), array([1.]))
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + param * weight_decay
    std, delta = scratch if scratch is not None else (np.empty_like(param), np.empty_like(param))
    square_avg *= rho
    np.multiply(grad, 1 - rho, out=std)  # torch's addcmul_: (value * grad) * grad
    std *= grad
    square_avg += std
    np.add(square_avg, eps, out=std)
    np.sqrt(std, out=std)
    np.add(acc_delta, eps, out=delta)
    np.sqrt(delta, out=delta)
    delta /= std
    delta *= grad
    acc_delta *= rho
    np.multiply(delta, 1 - rho, out=std)
    std *= delta
    acc_delta += std
    delta *= -lr
    param += delta

class Adadelta(Optimizer):
    """Adadelta (torch.optim.Adadelta): steps scaled by running RMS of updates and gradients.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = Adadelta([w])
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)
    0.996838
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_kernel_flags(foreach, None, differentiable, capturable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        hyper = {k: group[k] for k in ("lr", "rho", "eps", "weight_decay", "maximize")}
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = wrap(np.zeros_like(p._data))
                state["acc_delta"] = wrap(np.zeros_like(p._data))
            increment(state["step"])
            adadelta_update(p._data, p.grad._data, state["square_avg"]._data,
                            state["acc_delta"]._data, scratch=self._scratch_for(p), **hyper)
