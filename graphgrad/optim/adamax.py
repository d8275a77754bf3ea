"""Adamax: torch.optim.Adamax's single-tensor algorithm, operation for operation (Adam with the
infinity norm in place of the second moment)."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from ._lerp import lerp_
from .adam import _check_adam_hyperparameters
from .optimizer import Optimizer, check_kernel_flags, increment, new_step


def adamax_update(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps,
                  weight_decay=0.0, maximize=False, scratch=None):
    """One Adamax step on NumPy arrays, in place on ``param``, ``exp_avg`` and ``exp_inf``;
    ``step`` counts this step (1 on the first call); ``scratch`` may hold a work buffer shaped
    like ``param``, used instead of temporaries.

    >>> import numpy as np
    >>> p, m, u = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> adamax_update(p, np.array([0.5]), m, u, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=0.0)
    >>> p.round(6), m, u
    (array([0.9]), array([0.05]), array([0.5]))
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + param * weight_decay
    work = scratch[0] if scratch is not None else np.empty_like(param)
    lerp_(exp_avg, grad, 1 - beta1, scratch=work)
    exp_inf *= beta2
    norm = np.abs(grad, out=work)
    norm += eps
    np.maximum(exp_inf, norm, out=exp_inf)
    clr = lr / (1 - beta1**step)
    update = np.multiply(exp_avg, -clr, out=work)  # torch's addcdiv_: (value * m) / u
    update /= exp_inf
    param += update

class Adamax(Optimizer):
    """Adamax (torch.optim.Adamax): Adam's variant based on the infinity norm.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = Adamax([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)
    0.9
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False,
                 capturable=False) -> None:
        _check_adam_hyperparameters(lr, betas, eps, weight_decay)
        check_kernel_flags(foreach, None, differentiable, capturable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        hyper = {k: group[k] for k in ("lr", "eps", "weight_decay", "maximize")}
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = wrap(np.zeros_like(p._data))
                state["exp_inf"] = wrap(np.zeros_like(p._data))
            adamax_update(p._data, p.grad._data, state["exp_avg"]._data, state["exp_inf"]._data,
                          increment(state["step"]), beta1=beta1, beta2=beta2,
                          scratch=self._scratch_for(p, 1), **hyper)
