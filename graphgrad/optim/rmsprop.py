"""RMSprop, optionally centered and with momentum: torch.optim.RMSprop's single-tensor algorithm,
operation for operation."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from ._lerp import lerp_
from .optimizer import Optimizer, increment, new_step


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps,
                   weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    """One RMSprop step on NumPy arrays, in place on ``param`` and the running averages.

    ``grad_avg`` is used only when ``centered``, ``momentum_buffer`` only with momentum.

    >>> import numpy as np
    >>> p, sq = np.array([1.0]), np.zeros(1)
    >>> rmsprop_update(p, np.array([2.0]), sq, None, None, lr=0.01, alpha=0.75, eps=0.0)
    >>> p, sq
    (array([0.98]), array([1.]))
    """
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad + param * weight_decay
    square_avg *= alpha
    scratch = np.multiply(grad, 1 - alpha, out=np.empty_like(square_avg))  # an array even if 0-d
    scratch *= grad
    square_avg += scratch
    if centered:
        lerp_(grad_avg, grad, 1 - alpha)
        np.multiply(grad_avg, grad_avg, out=scratch)
        avg = np.subtract(square_avg, scratch, out=scratch)
        np.sqrt(avg, out=avg)
    else:
        avg = np.sqrt(square_avg, out=scratch)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += np.divide(grad, avg, out=avg)
        param += momentum_buffer * -lr
    else:
        update = grad * -lr  # torch's addcdiv_: (value * grad) / avg
        update /= avg
        param += update


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop): steps scaled by a running RMS of the gradient.

    >>> import graphgrad as gg
    >>> w = gg.tensor([1.0], requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> round(w.item(), 4)
    0.9
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False) -> None:
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "capturable": False,
                    "foreach": None, "maximize": maximize,
                    "differentiable": False}  # torch's key order
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        momentum, centered = group["momentum"], group["centered"]
        hyper = {k: group[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum",
                                       "centered", "maximize")}
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = new_step()
                state["square_avg"] = wrap(np.zeros_like(p._data))
                if momentum > 0:
                    state["momentum_buffer"] = wrap(np.zeros_like(p._data))
                if centered:
                    state["grad_avg"] = wrap(np.zeros_like(p._data))
            increment(state["step"])
            rmsprop_update(
                p._data, p.grad._data, state["square_avg"]._data,
                state["grad_avg"]._data if centered else None,
                state["momentum_buffer"]._data if momentum > 0 else None, **hyper,
            )
