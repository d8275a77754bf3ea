"""Padding layers: ZeroPad, ConstantPad, ReflectionPad and ReplicationPad in 1d and 2d, each
one call of ``nn.functional.pad`` with the amounts stored as torch stores them."""

from __future__ import annotations

from .. import functional as F
from .module import Module


def _amounts(padding, count: int) -> tuple:
    """An int repeated ``count`` times, as torch's _pair and _quadruple; a sequence as given."""
    if isinstance(padding, int):
        return (padding,) * count
    return tuple(padding)


class _PadNd(Module):
    _mode = "constant"

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dimension with ``value``: (left, right), or one int for both.

    >>> import graphgrad as gg
    >>> gg.nn.ConstantPad1d((1, 2), 3.5)(gg.tensor([[1.0]])).tolist()
    [[3.5, 1.0, 3.5, 3.5]]
    """

    def __init__(self, padding, value: float) -> None:
        super().__init__()
        self.padding, self.value = _amounts(padding, 2), value


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dimensions with ``value``: (left, right, top, bottom), or one int.

    >>> import graphgrad as gg
    >>> gg.nn.ConstantPad2d(1, -1.0)(gg.ones(1, 1, 1)).tolist()
    [[[-1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, -1.0]]]
    """

    def __init__(self, padding, value: float) -> None:
        super().__init__()
        self.padding, self.value = _amounts(padding, 4), value


class ZeroPad1d(ConstantPad1d):
    """Pads the last dimension with zeros.

    >>> import graphgrad as gg
    >>> gg.nn.ZeroPad1d((0, 2))
    ZeroPad1d((0, 2))
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dimensions with zeros.

    >>> import graphgrad as gg
    >>> gg.nn.ZeroPad2d((1, 0, 0, 1))(gg.ones(1, 1, 1)).tolist()
    [[[0.0, 1.0], [0.0, 0.0]]]
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pads the last dimension with its mirror image, the edge not repeated.

    >>> import graphgrad as gg
    >>> gg.nn.ReflectionPad1d(2)(gg.tensor([[1.0, 2.0, 3.0]])).tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
    """

    _mode = "reflect"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _amounts(padding, 2)


class ReflectionPad2d(_PadNd):
    """Pads the last two dimensions with their mirror image: (left, right, top, bottom).

    >>> import graphgrad as gg
    >>> gg.nn.ReflectionPad2d(1)
    ReflectionPad2d((1, 1, 1, 1))
    """

    _mode = "reflect"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _amounts(padding, 4)


class ReplicationPad1d(_PadNd):
    """Pads the last dimension by repeating its edge values.

    >>> import graphgrad as gg
    >>> gg.nn.ReplicationPad1d((1, 2))(gg.tensor([[1.0, 2.0]])).tolist()
    [[1.0, 1.0, 2.0, 2.0, 2.0]]
    """

    _mode = "replicate"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _amounts(padding, 2)


class ReplicationPad2d(_PadNd):
    """Pads the last two dimensions by repeating their edges: (left, right, top, bottom).

    >>> import graphgrad as gg
    >>> gg.nn.ReplicationPad2d((1, 1, 0, 0))(gg.tensor([[[1.0, 2.0]]])).tolist()
    [[[1.0, 1.0, 2.0, 2.0]]]
    """

    _mode = "replicate"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _amounts(padding, 4)


__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
    "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d",
]  # fmt: skip
