"""NAdam: torch.optim.NAdam's single-tensor algorithm, operation for operation (Adam with
Nesterov momentum and a momentum schedule; ``decoupled_weight_decay`` gives NAdamW)."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from .adam import _check_adam_hyperparameters, adam_gradient, update_moments
from .optimizer import Optimizer, check_kernel_flags, increment, new_step


def nadam_update(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
                 weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                 maximize=False, scratch=None):
    """One NAdam step on NumPy arrays, in place on ``param``, the moments and ``mu_product``
    (torch keeps it as a 0-d float32 array); ``step`` counts this step (1 on the first call).
    ``scratch`` may hold two work buffers shaped like ``param``, used instead of temporaries.

    >>> import numpy as np
    >>> p, m, v, mu = np.array([1.0]), np.zeros(1), np.zeros(1), np.array(1.0, np.float32)
    >>> nadam_update(p, np.array([0.5]), m, v, mu, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=0.0)
    >>> float(p[0]) < 1.0, m.round(6)
    (True, array([0.05]))
    """
    grad = adam_gradient(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay)
    bias_correction2 = 1 - beta2**step
    # the momentum cache mu_t and mu_{t+1}
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product *= mu
    first, second = update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2, scratch)
    denom = np.divide(exp_avg_sq, bias_correction2, out=second)
    np.sqrt(denom, out=denom)
    denom += eps
    product = float(mu_product)
    product_next = product * mu_next
    # torch's addcdiv_ twice: param + (value * tensor) / denom
    update = np.multiply(grad, -lr * (1.0 - mu) / (1.0 - product), out=first)
    update /= denom
    param += update
    np.multiply(exp_avg, (-lr * mu_next) / (1.0 - product_next), out=update)
    update /= denom
    param += update

class NAdam(Optimizer):
    """NAdam (torch.optim.NAdam): Adam with Nesterov momentum.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = NAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w.item() < 1.0, sorted(opt.state[w])
    (True, ['exp_avg', 'exp_avg_sq', 'mu_product', 'step'])
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False) -> None:
        _check_adam_hyperparameters(lr, betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        check_kernel_flags(foreach, None, differentiable, capturable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        hyper = {k: group[k] for k in ("lr", "eps", "weight_decay", "momentum_decay",
                                       "decoupled_weight_decay", "maximize")}
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["mu_product"] = new_step(1.0)  # a 0-d float32 tensor, as torch keeps it
                state["exp_avg"] = wrap(np.zeros_like(p._data))
                state["exp_avg_sq"] = wrap(np.zeros_like(p._data))
            nadam_update(p._data, p.grad._data, state["exp_avg"]._data,
                         state["exp_avg_sq"]._data, state["mu_product"]._data,
                         increment(state["step"]), beta1=beta1, beta2=beta2,
                         scratch=self._scratch_for(p), **hyper)
