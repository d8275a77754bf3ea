"""Adam and AdamW: torch.optim.Adam's single-tensor algorithm, operation for operation, one
tensor at a time or over flat buffers (``foreach``). AdamW is Adam with decoupled weight decay,
as in torch 2.x."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from ._flat import STEP
from ._lerp import lerp_
from .optimizer import Optimizer, check_kernel_flags, increment, new_step

STATE = (STEP, "exp_avg", "exp_avg_sq")  # torch's order; then "max_exp_avg_sq" with amsgrad


def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2,
                eps, weight_decay=0.0, amsgrad=False, maximize=False,
                decoupled_weight_decay=False, scratch=None):
    """One Adam step on NumPy arrays, in place on ``param`` and the moment buffers.

    ``step`` is the count including this step (1 on the first call); ``max_exp_avg_sq`` is used
    only with ``amsgrad``. ``grad`` is never modified. ``scratch`` may hold two work buffers
    shaped like ``param``: reusing them saves allocating three temporaries per step.

    >>> import numpy as np
    >>> p, m, v = np.array([1.0]), np.zeros(1), np.zeros(1)
    >>> adam_update(p, np.array([0.5]), m, v, None, 1, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    >>> p.round(6), m, v.round(6)
    (array([0.9]), array([0.05]), array([0.00025]))
    """
    grad = adam_gradient(param, grad, lr=lr, weight_decay=weight_decay, maximize=maximize,
                         decoupled_weight_decay=decoupled_weight_decay)
    first, second = update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2, scratch)
    bias_correction1 = 1 - beta1**step
    bias_correction2_sqrt = (1 - beta2**step) ** 0.5
    step_size = lr / bias_correction1
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
    denom = np.sqrt(max_exp_avg_sq if amsgrad else exp_avg_sq, out=second)
    denom /= bias_correction2_sqrt
    denom += eps
    update = np.multiply(exp_avg, -step_size, out=first)  # torch's addcdiv_: (value*m) / denom
    update /= denom
    param += update


def adam_gradient(param, grad, *, lr, weight_decay, maximize, decoupled_weight_decay):
    """The gradient the Adam family steps with, as torch computes it first: negated with
    ``maximize``, plus ``weight_decay * param`` (L2); decoupled (AdamW, NAdamW...), ``param``
    shrinks in place instead. ``grad`` itself is never modified."""
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + param * weight_decay
    return grad


def update_moments(exp_avg, exp_avg_sq, grad, beta1, beta2, scratch=None):
    """torch's ``exp_avg.lerp_(grad, 1 - beta1)`` and ``exp_avg_sq.mul_(beta2).addcmul_(grad,
    grad, value=1 - beta2)``, in place; returns two work buffers shaped like the moments (the
    ``scratch`` pair when given), free for the rest of the step."""
    first, second = scratch if scratch is not None else (np.empty_like(exp_avg),
                                                         np.empty_like(exp_avg))
    lerp_(exp_avg, grad, 1 - beta1, scratch=first)
    np.multiply(grad, 1 - beta2, out=second)  # addcmul_: (value * grad) * grad
    second *= grad
    exp_avg_sq *= beta2
    exp_avg_sq += second
    return first, second


class Adam(Optimizer):
    """Adam (torch.optim.Adam): per-coordinate steps from bias-corrected moment estimates.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0, -1.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(x, 6) for x in w.tolist()]
    [0.9, -0.9]
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False) -> None:
        _check_adam_hyperparameters(lr, betas, eps, weight_decay)
        check_kernel_flags(foreach, fused, differentiable, capturable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        beta1, beta2 = group["betas"]
        amsgrad = group["amsgrad"]
        hyper = {k: group[k] for k in ("lr", "eps", "weight_decay", "amsgrad", "maximize",
                                       "decoupled_weight_decay")}
        hyper.update(beta1=beta1, beta2=beta2)
        plan = self._flat_plan(group, STATE + ("max_exp_avg_sq",) if amsgrad else STATE)
        if plan is None:
            self._step_tensors(params, hyper)
            return
        self._new_state_in_order(plan, params)
        loose = plan.loose(params)
        for flat in plan.flats:
            # a run shares its step count, hence its bias corrections
            for i, j, _ in flat.runs(flat.buffers[STEP].tolist(), loose):
                flat.start(i, j, self.state)
                param, state, scratch = flat.slices(i, j)
                count = state[STEP]
                count += 1  # float32, as increment() counts
                adam_update(param, flat.gather(i, j), state["exp_avg"], state["exp_avg_sq"],
                            state["max_exp_avg_sq"] if amsgrad else None, float(count[0]),
                            scratch=scratch, **hyper)
        self._step_tensors(loose, hyper)

    def _step_tensors(self, params: list, hyper: dict) -> None:
        amsgrad = hyper["amsgrad"]
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["exp_avg"] = wrap(np.zeros_like(p._data))
                state["exp_avg_sq"] = wrap(np.zeros_like(p._data))
                if amsgrad:
                    state["max_exp_avg_sq"] = wrap(np.zeros_like(p._data))
            max_exp_avg_sq = state["max_exp_avg_sq"]._data if amsgrad else None
            adam_update(p._data, p.grad._data, state["exp_avg"]._data,
                        state["exp_avg_sq"]._data, max_exp_avg_sq, increment(state["step"]),
                        scratch=self._scratch_for(p), **hyper)


class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with weight decay applied to the weights directly.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * 0).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 6)
    0.95
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)


def _check_adam_hyperparameters(lr, betas, eps, weight_decay) -> None:
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")

