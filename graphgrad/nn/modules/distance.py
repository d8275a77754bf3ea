"""CosineSimilarity and PairwiseDistance, with torch's attributes (PairwiseDistance keeps
``p`` as ``norm``, as torch)."""

from __future__ import annotations

from .. import functional as F
from .module import Module


class PairwiseDistance(Module):
    """||x1 - x2 + eps||_p along the last dimension.

    >>> import graphgrad as gg
    >>> gg.nn.PairwiseDistance(eps=0.0)(gg.tensor([[3.0, 4.0]]), gg.zeros(1, 2)).tolist()
    [5.0]
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    """The cosine of the angle between x1 and x2 along ``dim``, each norm at least ``eps``.

    >>> import graphgrad as gg
    >>> gg.nn.CosineSimilarity(dim=0)(gg.tensor([1.0, 0.0]), gg.tensor([0.0, 1.0])).tolist()
    0.0
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


__all__ = ["PairwiseDistance", "CosineSimilarity"]
