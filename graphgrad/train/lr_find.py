"""The learning-rate range test: train briefly while the learning rate grows geometrically,
watch the smoothed loss, and suggest a tenth of the rate where it is lowest. The model, the
optimizer and the global random generator are put back exactly as they were."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np

from .. import creation
from ..optim import Optimizer
from . import _build


@dataclass
class LRFinderResult:
    """The rates tried, the smoothed (bias-corrected) loss at each, and the suggested rate: a
    tenth of the rate at the lowest smoothed loss (None if no step was finite). A tenth of the
    minimum is used rather than the steepest descent because with mini-batches the slope of the
    smoothed loss at tiny rates is dominated by batch-to-batch noise."""

    lrs: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    suggestion: float | None = None

    def plot(self, path) -> None:
        """Draw loss against learning rate, marking the suggestion (graphgrad.viz)."""
        from ..viz import plot_lr_find  # matplotlib is optional: imported only when drawing

        plot_lr_find(self.lrs, self.losses, self.suggestion, path)


def lr_find(model, loss_fn, train_data, *, optimizer="sgd", start_lr=1e-7, end_lr=10.0,
            steps=100, batch_size=32, smooth=0.05, diverge_factor=5.0,
            seed=0) -> LRFinderResult:
    """Run the range test on ``model`` (arguments as for ``fit``; ``optimizer`` a name or an
    Optimizer). Step ``i`` trains one batch at ``start_lr * (end_lr / start_lr) ** (i / (steps -
    1))`` and records the exponential moving average of the loss (weight ``smooth`` on the new
    loss, bias-corrected); the test stops once that exceeds ``diverge_factor`` times its best
    or the loss is not finite. ``suggestion`` is a tenth of the rate at the lowest
    smoothed loss. Parameters, optimizer state and the global generator are
    restored afterwards, bit for bit.

    >>> import graphgrad as gg
    >>> _ = gg.manual_seed(0)
    >>> x = gg.randn(64, 3)
    >>> model = gg.nn.Linear(3, 1)
    >>> result = lr_find(model, gg.nn.MSELoss(), (x, x.sum(1, keepdim=True)), steps=50)
    >>> 1e-3 < result.suggestion < 2.0
    True
    """
    _check(start_lr, end_lr, steps, smooth, diverge_factor)
    task = _build.make_task(model, loss_fn)
    generator = creation.Generator().manual_seed(seed)
    batches = _build.make_batches(task, train_data, batch_size, True, generator, "train_data")
    params = list(task.named.values())
    opt = _build.make_optimizer(optimizer, params, lr=start_lr, momentum=0.0, weight_decay=0.0)
    saved = _Saved(task, opt)
    creation.manual_seed(seed)
    try:
        task.set_training(True)
        lrs, losses = _range_test(task, opt, batches, start_lr, end_lr, steps, smooth,
                                  diverge_factor)
    finally:
        saved.restore()
    return LRFinderResult(lrs, losses, _tenth_of_minimum(lrs, losses))


def _check(start_lr, end_lr, steps, smooth, diverge_factor) -> None:
    check = _build.check
    check(0 < start_lr < end_lr, "start_lr", f"need 0 < start_lr < end_lr, got {start_lr}, "
          f"{end_lr}")
    check(isinstance(steps, int) and steps >= 2, "steps", f"an int >= 2, got {steps!r}")
    check(0 < smooth <= 1, "smooth", f"must be in (0, 1], got {smooth}")
    check(diverge_factor > 1, "diverge_factor", f"must be > 1, got {diverge_factor}")


def _range_test(task, opt, batches, start_lr, end_lr, steps, smooth, diverge_factor):
    growth = (end_lr / start_lr) ** (1 / (steps - 1))
    endless = chain.from_iterable(repeat(batches))  # a new pass (and order) once one ends
    lrs, losses, average, best = [], [], 0.0, math.inf
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(steps):
            lr = start_lr * growth**i
            for group in opt.param_groups:
                group["lr"] = lr
            opt.zero_grad()
            loss, _ = task.loss_and_backward(next(endless))
            if not math.isfinite(loss):
                break
            opt.step()
            average = (1 - smooth) * average + smooth * loss
            smoothed = average / (1 - (1 - smooth) ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if smoothed > diverge_factor * best:
                break
    return lrs, losses


def _tenth_of_minimum(lrs: list, losses: list) -> float | None:
    return float(lrs[int(np.argmin(losses))]) / 10 if losses else None


class _Saved:
    """Everything the range test changes, copied so that it can be put back."""

    def __init__(self, task, opt: Optimizer) -> None:
        self.task, self.opt = task, opt
        self.params = {n: p.detach().numpy().copy() for n, p in task.named.items()}
        self.grads = {n: None if p.grad is None else p.grad.clone()
                      for n, p in task.named.items()}
        self.opt_state = copy.deepcopy(opt.state_dict())
        self.generator = copy.deepcopy(creation.default_generator.get_state())
        self.training = getattr(task, "model", None) is not None and task.model.training

    def restore(self) -> None:
        for name, p in self.task.named.items():
            p.detach().numpy()[...] = self.params[name]
            p.grad = self.grads[name]
        self.opt.load_state_dict(self.opt_state)
        creation.default_generator.set_state(self.generator)
        self.task.set_training(self.training)
