"""Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
decay: torch.optim.SGD's single-tensor algorithm, operation for operation, one tensor at a time
or over flat buffers (``foreach``)."""

from __future__ import annotations

import numpy as np

from ..tensor import wrap
from .optimizer import Optimizer, check_kernel_flags

BUFFER = "momentum_buffer"


def sgd_update(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, maximize=False, scratch=None):
    """One SGD step on NumPy arrays, in place on ``param``; returns the momentum buffer.

    ``momentum_buffer`` is None before the first step with momentum (the buffer then starts as
    the gradient, as in torch) and stays None without momentum. ``grad`` is never modified.
    ``scratch`` may hold two work buffers shaped like ``param``, used instead of temporaries.

    >>> import numpy as np
    >>> p = np.array([1.0, 2.0])
    >>> buf = sgd_update(p, np.array([1.0, 1.0]), None, lr=0.1, momentum=0.9)
    >>> p, buf
    (array([0.9, 1.9]), array([1., 1.]))
    """
    work, spare = (None, None) if scratch is None else scratch
    if maximize:
        grad = np.negative(grad, out=work)
    if weight_decay != 0:
        grad = np.add(grad, np.multiply(param, weight_decay, out=spare), out=work)
    if momentum != 0:
        if momentum_buffer is None:
            momentum_buffer = grad.copy()
        else:
            momentum_buffer *= momentum
            momentum_buffer += grad if dampening == 0 else np.multiply(grad, 1 - dampening,
                                                                       out=spare)
        if nesterov:
            grad = np.add(grad, np.multiply(momentum_buffer, momentum, out=spare), out=work)
        else:
            grad = momentum_buffer
    if spare is None:
        add_scaled(param, grad, -lr)
    else:
        param += np.multiply(grad, -lr, out=spare)
    return momentum_buffer


BLOCK = 1 << 15  # elements: a block of the update and its scratch stay in the L2 cache


def add_scaled(param: np.ndarray, grad: np.ndarray, alpha: float) -> None:
    """``param += alpha * grad`` in blocks, as torch's fused ``add_(grad, alpha=...)`` runs
    without a temporary the size of ``param`` (4 MiB for a 1024x1024 weight, the largest
    allocation of an SGD step otherwise). The rounding is the unblocked expression's.

    >>> p = np.ones(3, np.float32); add_scaled(p, np.full(3, 2, np.float32), -0.5); p
    array([0., 0., 0.], dtype=float32)
    """
    size = param.size
    if size <= BLOCK or not (param.flags.c_contiguous and grad.flags.c_contiguous):
        param += np.multiply(grad, alpha)
        return
    flat_param, flat_grad = param.reshape(-1), grad.reshape(-1)
    scratch = np.empty(BLOCK, param.dtype)
    for start in range(0, size, BLOCK):
        stop = min(start + BLOCK, size)
        step = np.multiply(flat_grad[start:stop], alpha, out=scratch[: stop - start])
        flat_param[start:stop] += step


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
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        check_kernel_flags(foreach, fused, differentiable)
        super().__init__(params, defaults)

    def _step_group(self, group: dict, params: list) -> None:
        hyper = {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay", "nesterov",
                                       "maximize")}
        names = (BUFFER,) if hyper["momentum"] != 0 else ()
        plan = self._flat_plan(group, names)
        if plan is None:
            self._step_tensors(params, hyper)
            return
        if names:
            self._new_state_in_order(plan, params)
        loose = plan.loose(params)
        for flat in plan.flats:
            for i, j, started in flat.runs(flat.started, loose):
                param, state, scratch = flat.slices(i, j)
                buf = state[BUFFER] if names and started else None
                new = sgd_update(param, flat.gather(i, j), buf, scratch=scratch, **hyper)
                if names and not started:  # the first buffer: the gradient, copied in
                    np.copyto(state[BUFFER], new)
                    flat.start(i, j, self.state)
        self._step_tensors(loose, hyper)

    def _step_tensors(self, params: list, hyper: dict) -> None:
        for p in params:
            # torch keeps no state at all for a parameter when there is no momentum
            state = self.state[p] if hyper["momentum"] != 0 else {}
            buf = state.get(BUFFER)
            # no work buffers kept: as torch, SGD holds nothing but its momentum between steps
            buf = sgd_update(p._data, p.grad._data, None if buf is None else buf._data, **hyper)
            if buf is not None and state.get(BUFFER) is None:
                state[BUFFER] = wrap(buf)
