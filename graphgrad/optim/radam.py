"""RAdam: torch.optim.RAdam's single-tensor algorithm, operation for operation (Adam whose
adaptive step is rectified while the variance estimate is unreliable)."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from .adam import _check_adam_hyperparameters, adam_gradient, update_moments
from .optimizer import Optimizer, check_kernel_flags, increment, new_step


def radam_update(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps,
                 weight_decay=0.0, decoupled_weight_decay=False, maximize=False, scratch=None):
    """One RAdam step on NumPy arrays, in place on ``param`` and the moments; ``step`` counts
    this step (1 on the first call). The first steps (rho_t <= 5) are plain momentum steps.
    ``scratch`` may hold two work buffers shaped like ``param``, used instead of temporaries.

    >>> import numpy as np
    >>> p, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> radam_update(p, np.array([0.5]), m, v, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    >>> p.round(6), m
    (array([0.95]), array([0.05]))
    """
    grad = adam_gradient(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay)
    first, second = update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2, scratch)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    update = np.divide(exp_avg, bias_correction1, out=first)
    rho_inf = 2 / (1 - beta2) - 1  # the maximum length of the approximated SMA
    rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
    update *= lr
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        adaptive = np.sqrt(exp_avg_sq, out=second)
        adaptive += eps
        # torch's ``number / tensor`` is ``tensor.reciprocal() * number``
        np.reciprocal(adaptive, out=adaptive)
        adaptive *= bias_correction2**0.5
        update *= adaptive
        update *= rect
    param -= update

class RAdam(Optimizer):
    """RAdam (torch.optim.RAdam): rectified Adam.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = RAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)
    0.8
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False) -> None:
        _check_adam_hyperparameters(lr, betas, eps, weight_decay)
        check_kernel_flags(foreach, None, differentiable, capturable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        hyper = {k: group[k] for k in ("lr", "eps", "weight_decay", "decoupled_weight_decay",
                                       "maximize")}
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = wrap(np.zeros_like(p._data))
                state["exp_avg_sq"] = wrap(np.zeros_like(p._data))
            radam_update(p._data, p.grad._data, state["exp_avg"]._data,
                         state["exp_avg_sq"]._data, increment(state["step"]), beta1=beta1,
                         beta2=beta2, scratch=self._scratch_for(p), **hyper)
