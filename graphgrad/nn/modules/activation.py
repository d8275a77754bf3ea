"""Activation layers: each calls its ``nn.functional`` counterpart."""

from __future__ import annotations

from .. import functional as F
from .module import Module


def _inplace_text(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class ReLU(Module):
    """max(x, 0).

    >>> import graphgrad as gg
    >>> gg.nn.ReLU()(gg.tensor([-1.0, 1.0])).tolist()
    [0.0, 1.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.relu(input)

    def extra_repr(self) -> str:
        return _inplace_text(self.inplace)


class LeakyReLU(Module):
    """x for x > 0, else ``negative_slope * x``.

    >>> import graphgrad as gg
    >>> gg.nn.LeakyReLU(0.1)(gg.tensor([-1.0, 1.0])).tolist()
    [-0.10000000149011612, 1.0]
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """1 / (1 + exp(-x)).

    >>> import graphgrad as gg
    >>> gg.nn.Sigmoid()(gg.tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, input):  # noqa: A002
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent.

    >>> import graphgrad as gg
    >>> gg.nn.Tanh()(gg.tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, input):  # noqa: A002
        return F.tanh(input)


class GELU(Module):
    """x * Phi(x), exact (``approximate='none'``) or with torch's tanh approximation.

    >>> import graphgrad as gg
    >>> gg.nn.GELU(approximate="tanh")
    GELU(approximate='tanh')
    """

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input):  # noqa: A002
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """Softmax along ``dim``.

    >>> import graphgrad as gg
    >>> gg.nn.Softmax(dim=1)(gg.zeros(1, 4)).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log(softmax(x)) along ``dim``, computed stably.

    >>> import graphgrad as gg
    >>> gg.nn.LogSoftmax(dim=0)(gg.zeros(2)).tolist()
    [-0.6931471824645996, -0.6931471824645996]
    """

    def forward(self, input):  # noqa: A002
        return F.log_softmax(input, self.dim)


class Dropout(Module):
    """Zeroes elements with probability ``p`` in training mode, scaling the rest by 1/(1-p).

    >>> import graphgrad as gg
    >>> gg.nn.Dropout(0.2).eval()(gg.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Dropout"]
