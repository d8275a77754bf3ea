"""Activation layers: each calls its ``nn.functional`` counterpart."""

from __future__ import annotations

import warnings

from ... import creation
from .. import functional as F
from .. import init as init_
from ..parameter import Parameter
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


class _InplaceActivation(Module):
    """An activation whose only option is torch's ``inplace`` (computed out of place)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def extra_repr(self) -> str:
        return _inplace_text(self.inplace)


class SiLU(_InplaceActivation):
    """x * sigmoid(x).

    >>> import graphgrad as gg
    >>> gg.nn.SiLU()(gg.tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, input):  # noqa: A002
        return F.silu(input)


class Mish(_InplaceActivation):
    """x * tanh(softplus(x)).

    >>> import graphgrad as gg
    >>> gg.nn.Mish(inplace=True)
    Mish(inplace=True)
    """

    def forward(self, input):  # noqa: A002
        return F.mish(input)


class SELU(_InplaceActivation):
    """scale * elu(x, alpha) with the self-normalising constants.

    >>> import graphgrad as gg
    >>> gg.nn.SELU()(gg.tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, input):  # noqa: A002
        return F.selu(input)


class Hardsigmoid(_InplaceActivation):
    """min(max(x + 3, 0), 6) / 6 (torch's repr shows no options).

    >>> import graphgrad as gg
    >>> gg.nn.Hardsigmoid()(gg.tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, input):  # noqa: A002
        return F.hardsigmoid(input)

    def extra_repr(self) -> str:
        return ""


class Hardswish(Hardsigmoid):
    """x * min(max(x + 3, 0), 6) / 6.

    >>> import graphgrad as gg
    >>> gg.nn.Hardswish()(gg.tensor([3.0])).tolist()
    [3.0]
    """

    def forward(self, input):  # noqa: A002
        return F.hardswish(input)


class ELU(Module):
    """x for x > 0, else alpha (e^x - 1).

    >>> import graphgrad as gg
    >>> gg.nn.ELU(alpha=0.5)
    ELU(alpha=0.5)
    """

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):  # noqa: A002
        return F.elu(input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class CELU(ELU):
    """max(0, x) + min(0, alpha (e^(x / alpha) - 1)).

    >>> import graphgrad as gg
    >>> gg.nn.CELU()
    CELU(alpha=1.0)
    """

    def forward(self, input):  # noqa: A002
        return F.celu(input, self.alpha)


class Softplus(Module):
    """log(1 + e^(beta x)) / beta, linear above ``threshold``.

    >>> import graphgrad as gg
    >>> gg.nn.Softplus()
    Softplus(beta=1.0, threshold=20.0)
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):  # noqa: A002
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Hardtanh(Module):
    """x clamped to [min_val, max_val] (``min_value``/``max_value``: torch's deprecated names).

    >>> import graphgrad as gg
    >>> gg.nn.Hardtanh(-2, 2)
    Hardtanh(min_val=-2, max_val=2)
    """

    def __init__(
        self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
        min_value: float | None = None, max_value: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        for old, new, value in (("min_value", "min_val", min_value),
                                ("max_value", "max_val", max_value)):  # fmt: skip
            if value is not None:
                warnings.warn(
                    f"keyword argument `{old}` is deprecated and renamed to `{new}`",
                    FutureWarning,
                    stacklevel=2,
                )
        self.min_val = min_val if min_value is None else min_value
        self.max_val = max_val if max_value is None else max_value
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise AssertionError(
                f"max_val ({self.max_val}) must be greater than min_val ({self.min_val})"
            )

    def forward(self, input):  # noqa: A002
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}" + (
            ", inplace=True" if self.inplace else ""
        )


class ReLU6(Hardtanh):
    """min(max(x, 0), 6).

    >>> import graphgrad as gg
    >>> gg.nn.ReLU6()(gg.tensor([-1.0, 7.0])).tolist()
    [0.0, 6.0]
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace_text(self.inplace)


class PReLU(Module):
    """x for x > 0, else weight * x, with a learnt ``weight`` of ``num_parameters`` slopes
    (1, or one per channel), each starting at ``init``.

    >>> import graphgrad as gg
    >>> layer = gg.nn.PReLU(3)
    >>> layer, layer.weight.tolist()
    (PReLU(num_parameters=3), [0.25, 0.25, 0.25])
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None,
                 dtype=None) -> None:  # fmt: skip
        self.num_parameters = num_parameters
        super().__init__()
        self.init = init
        self.weight = Parameter(creation.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init_.constant_(self.weight, self.init)

    def forward(self, input):  # noqa: A002
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softmin(Softmax):
    """softmax(-x) along ``dim``.

    >>> import graphgrad as gg
    >>> gg.nn.Softmin(dim=0)(gg.zeros(2)).tolist()
    [0.5, 0.5]
    """

    def forward(self, input):  # noqa: A002
        return F.softmin(input, self.dim)


class Softsign(Module):
    """x / (1 + |x|).

    >>> import graphgrad as gg
    >>> gg.nn.Softsign()(gg.tensor([1.0])).tolist()
    [0.5]
    """

    def forward(self, input):  # noqa: A002
        return F.softsign(input)


class LogSigmoid(Module):
    """log(sigmoid(x)), computed stably.

    >>> import graphgrad as gg
    >>> gg.nn.LogSigmoid()(gg.tensor([-200.0])).tolist()
    [-200.0]
    """

    def forward(self, input):  # noqa: A002
        return F.logsigmoid(input)


class Dropout1d(Dropout):
    """Zeroes whole channels of (N, C, L) or (C, L) input with probability ``p`` in training
    mode (``F.dropout1d``).

    >>> import graphgrad as gg
    >>> gg.nn.Dropout1d(0.2)
    Dropout1d(p=0.2, inplace=False)
    """

    def forward(self, input):  # noqa: A002
        return F.dropout1d(input, self.p, self.training)


class Dropout2d(Dropout):
    """Zeroes whole channels with probability ``p`` in training mode (``F.dropout2d``).

    >>> import graphgrad as gg
    >>> gg.nn.Dropout2d(0.2)
    Dropout2d(p=0.2, inplace=False)
    """

    def forward(self, input):  # noqa: A002
        return F.dropout2d(input, self.p, self.training)


class GLU(Module):
    """The gated linear unit along ``dim``: first half times the sigmoid of the second.

    >>> import graphgrad as gg
    >>> gg.nn.GLU()(gg.tensor([[2.0, 0.0]])).tolist()
    [[1.0]]
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Hardshrink(Module):
    """0 inside [-lambd, lambd], x outside.

    >>> import graphgrad as gg
    >>> gg.nn.Hardshrink()
    Hardshrink(0.5)
    """

    _shrink = staticmethod(F.hardshrink)

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input):  # noqa: A002
        return self._shrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Hardshrink):
    """x moved lambd towards 0, and 0 inside [-lambd, lambd].

    >>> import graphgrad as gg
    >>> gg.nn.Softshrink(0.25)(gg.tensor([1.0, 0.1])).tolist()
    [0.75, 0.0]
    """

    _shrink = staticmethod(F.softshrink)


class Tanhshrink(Module):
    """x - tanh(x).

    >>> import graphgrad as gg
    >>> gg.nn.Tanhshrink()
    Tanhshrink()
    """

    def forward(self, input):  # noqa: A002
        return F.tanhshrink(input)


class Threshold(Module):
    """``value`` where x <= ``threshold``, else x.

    >>> import graphgrad as gg
    >>> gg.nn.Threshold(0.1, 20)
    Threshold(threshold=0.1, value=20)
    """

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):  # noqa: A002
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"threshold={self.threshold}, value={self.value}{inplace}"


__all__ = [
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Dropout",
    "SiLU", "Mish", "SELU", "Hardsigmoid", "Hardswish", "ELU", "CELU", "Softplus", "Hardtanh",
    "ReLU6", "PReLU", "Softmin", "Softsign", "LogSigmoid", "Dropout1d", "Dropout2d", "GLU",
    "Hardshrink", "Softshrink", "Tanhshrink", "Threshold",
]
