"""Loss layers: each stores its options and calls its ``nn.functional`` counterpart."""

from __future__ import annotations

from .. import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = F._reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error.

    >>> import graphgrad as gg
    >>> gg.nn.MSELoss(reduction="sum")(gg.tensor([1.0, 2.0]), gg.zeros(2)).item()
    5.0
    """

    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error.

    >>> import graphgrad as gg
    >>> gg.nn.L1Loss()(gg.tensor([1.0, -3.0]), gg.zeros(2)).item()
    2.0
    """

    def forward(self, input, target):  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Quadratic below ``delta``, linear above.

    >>> import graphgrad as gg
    >>> gg.nn.HuberLoss(delta=1.0)(gg.tensor([3.0]), gg.zeros(1)).item()
    2.5
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):  # noqa: A002
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of class indices under log-probabilities.

    >>> import graphgrad as gg
    >>> gg.nn.NLLLoss()(gg.tensor([[-1.0, -2.0]]), gg.tensor([0])).item()
    1.0
    """

    def __init__(
        self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
        reduction: str = "mean",
    ) -> None:  # fmt: skip
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(
            input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction
        )


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or class probabilities.

    >>> import graphgrad as gg
    >>> round(gg.nn.CrossEntropyLoss()(gg.zeros(1, 4), gg.tensor([2])).item(), 6)
    1.386294
    """

    def __init__(
        self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
        reduction: str = "mean", label_smoothing: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):  # noqa: A002
        return F.cross_entropy(
            input,
            target,
            self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
        )


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities, logs clamped to >= -100.

    >>> import graphgrad as gg
    >>> gg.nn.BCELoss()(gg.tensor([1.0]), gg.tensor([0.0])).item()
    100.0
    """

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, computed stably, with optional ``pos_weight``.

    >>> import graphgrad as gg
    >>> round(gg.nn.BCEWithLogitsLoss()(gg.zeros(2), gg.ones(2)).item(), 6)
    0.693147
    """

    def __init__(
        self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
        pos_weight=None,
    ) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, pos_weight=self.pos_weight, reduction=self.reduction
        )


class SmoothL1Loss(_Loss):
    """Quadratic (0.5 d^2 / beta) below ``beta``, linear above.

    >>> import graphgrad as gg
    >>> gg.nn.SmoothL1Loss(beta=0.5)(gg.tensor([3.0]), gg.zeros(1)).item()
    2.75
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):  # noqa: A002
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class KLDivLoss(_Loss):
    """KL divergence of the target from log-probabilities (``reduction='batchmean'`` for the
    true per-sample divergence).

    >>> import graphgrad as gg
    >>> p = gg.tensor([[0.25, 0.75]])
    >>> gg.nn.KLDivLoss(reduction="batchmean")(p.log(), p).item()
    0.0
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:  # fmt: skip
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):  # noqa: A002
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


__all__ = [
    "MSELoss", "L1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss",
    "SmoothL1Loss", "KLDivLoss",
]
