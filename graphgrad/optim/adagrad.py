"""Adagrad: torch.optim.Adagrad's single-tensor algorithm (dense gradients), operation for
operation."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from .optimizer import Optimizer, increment, new_step


def adagrad_update(param, grad, state_sum, step, *, lr, lr_decay=0.0, weight_decay=0.0,
                   eps=1e-10, maximize=False):
    """One Adagrad step on NumPy arrays, in place on ``param`` and ``state_sum``.

    ``step`` is the count including this step (1 on the first call).

    >>> import numpy as np
    >>> p, s = np.array([1.0]), np.zeros(1)
    >>> adagrad_update(p, np.array([2.0]), s, 1, lr=0.1, eps=0.0)
    >>> p, s
    (array([0.9]), array([4.]))
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + param * weight_decay
    clr = lr / (1 + (step - 1) * lr_decay)
    scratch = np.multiply(grad, grad, out=np.empty_like(state_sum))  # an array even if 0-d
    state_sum += scratch
    std = np.sqrt(state_sum, out=scratch)
    std += eps
    update = grad * -clr  # torch's addcdiv_: (value * grad) / std
    update /= std
    param += update


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): steps shrink with the accumulated squared gradients.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)
    0.9
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, *, maximize=False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(
                f"Invalid initial_accumulator_value value: {initial_accumulator_value}"
            )
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": None,
                    "maximize": maximize, "differentiable": False,
                    "fused": None}  # torch's key order
        super().__init__(params, defaults)

    def _init_group_state(self, group: dict) -> None:
        # torch creates Adagrad's state when the group is added, not at the first step
        for p in group["params"]:
            state = self.state[p]
            state["step"] = new_step()
            state["sum"] = wrap(np.full_like(p._data, group["initial_accumulator_value"]))

    def _step_group(self, group: dict, params: list) -> None:
        hyper = {k: group[k] for k in ("lr", "lr_decay", "weight_decay", "eps", "maximize")}
        for p in params:
            state = self.state[p]
            adagrad_update(p._data, p.grad._data, state["sum"]._data, increment(state["step"]),
                           **hyper)
