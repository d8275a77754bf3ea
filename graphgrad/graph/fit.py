"""Fitting a Graph to data with the seed's five knobs: plain gradient descent on the graph's
parameters, each gradient capped by value, the learning rate decayed per epoch to a floor."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .core import Graph, GraphError


@dataclass
class FitResult:
    """Loss and learning rate per epoch, final parameters, and whether the run converged."""

    losses: list = field(default_factory=list)
    lrs: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        """The loss became non-finite or ended above where it started."""
        final = self.losses[-1]
        return not math.isfinite(final) or final > self.losses[0]

    @property
    def converged(self) -> bool:
        """The loss fell below 1% of its start and was still falling over the last tenth."""
        if self.diverged or len(self.losses) < 10:
            return False
        tail = self.losses[-max(2, len(self.losses) // 10) :]
        return self.losses[-1] < 0.01 * self.losses[0] and tail[-1] <= tail[0]


def fit(
    graph: Graph,
    data: dict,
    *,
    lr: float,
    epochs: int,
    lr_decay: float = 1.0,
    min_lr: float = 0.0,
    max_grad: float = math.inf,
    executor=None,
) -> FitResult:
    """Gradient descent on every parameter of ``graph`` to lower its (first) output on ``data``.

    Per epoch: a forward and backward pass over all the data at once; each gradient element
    clipped to [-max_grad, max_grad]; ``p -= lr * grad``; then ``lr = max(min_lr, lr * lr_decay)``.
    Parameters are updated in place. The run stops early, keeping its record, once the loss is
    no longer finite.

    >>> from graphgrad.graph.examples import polynomial, polynomial_data
    >>> result = fit(polynomial(), polynomial_data(), lr=0.01, lr_decay=0.999, min_lr=1e-3,
    ...              max_grad=1000, epochs=300)
    >>> result.converged
    True
    """
    _check_knobs(lr, epochs, lr_decay, min_lr, max_grad)
    result = FitResult()
    params = graph.parameters
    if not params:
        raise GraphError("fit: the graph has no parameters to fit")
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
        for _ in range(epochs):
            run = graph.run(data, executor=executor, backward=True)
            loss = float(run.output.detach().numpy().sum())
            result.losses.append(loss)
            result.lrs.append(lr)
            if not math.isfinite(loss):
                break
            for node in params:
                grad = np.clip(run.grads[node.id], -max_grad, max_grad)
                value = node.value.numpy(force=True)
                value -= (lr * grad).astype(value.dtype)
            lr = max(min_lr, lr * lr_decay)
    result.params = {n.name: n.value.detach().numpy().copy() for n in params}
    return result


def _check_knobs(lr, epochs, lr_decay, min_lr, max_grad) -> None:
    problems = [
        (lr > 0, f"lr must be positive, got {lr}"),
        (isinstance(epochs, int) and epochs > 0, f"epochs must be a positive int, got {epochs}"),
        (0 < lr_decay <= 1, f"lr_decay must be in (0, 1], got {lr_decay}"),
        (min_lr >= 0, f"min_lr must be >= 0, got {min_lr}"),
        (max_grad > 0, f"max_grad must be positive, got {max_grad}"),
    ]
    for ok, message in problems:
        if not ok:
            raise ValueError(f"fit: {message}")
