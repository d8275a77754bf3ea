"""Pooling layers: MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d,
AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d."""

from __future__ import annotations

from .. import functional as F
from .module import Module


class _MaxPoolNd(Module):
    _pool = staticmethod(F.max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input):  # noqa: A002
        return self._pool(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)  # fmt: skip

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")  # fmt: skip


class MaxPool1d(_MaxPoolNd):
    """Max pooling over (N, C, L) or (C, L) input.

    >>> import graphgrad as gg
    >>> gg.nn.MaxPool1d(2)(gg.tensor([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
    [[[3.0, 2.0]]]
    """

    _pool = staticmethod(F.max_pool1d)


class MaxPool2d(_MaxPoolNd):
    """Max pooling over (N, C, H, W) or (C, H, W) input (stride defaults to the kernel).

    >>> import graphgrad as gg
    >>> gg.nn.MaxPool2d(2)
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    """


class AvgPool2d(Module):
    """Mean pooling over (N, C, H, W) or (C, H, W) input.

    >>> import graphgrad as gg
    >>> gg.nn.AvgPool2d(2)(gg.ones(1, 1, 4, 4)).shape
    graphgrad.Size([1, 1, 2, 2])
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, input):  # noqa: A002
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Mean pooling to a fixed ``output_size`` (None entries keep the input's size).

    >>> import graphgrad as gg
    >>> gg.nn.AdaptiveAvgPool2d((None, 3))(gg.ones(1, 2, 5, 7)).shape
    graphgrad.Size([1, 2, 5, 3])
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input):  # noqa: A002
        return F.adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def _single(value) -> tuple:
    """torch's _single: an int as a 1-tuple, a sequence as a tuple."""
    return (value,) if isinstance(value, int) else tuple(value)


class AvgPool1d(Module):
    """Mean pooling over (N, C, L) or (C, L) input; the sizes are kept as 1-tuples, as torch.

    >>> import graphgrad as gg
    >>> gg.nn.AvgPool1d(2)(gg.tensor([[[1.0, 3.0, 2.0, 0.0]]])).tolist()
    [[[2.0, 1.0]]]
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input):  # noqa: A002
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)  # fmt: skip

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Mean pooling of (N, C, L) or (C, L) input to ``output_size`` windows.

    >>> import graphgrad as gg
    >>> gg.nn.AdaptiveAvgPool1d(2)(gg.tensor([[[1.0, 2.0, 3.0]]])).tolist()
    [[[1.5, 2.5]]]
    """

    def forward(self, input):  # noqa: A002
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed ``output_size`` (None entries keep the input's size), optionally
    with the maxima's flat positions in each plane.

    >>> import graphgrad as gg
    >>> gg.nn.AdaptiveMaxPool2d((None, 3), return_indices=True)
    AdaptiveMaxPool2d(output_size=(None, 3))
    """

    _pool = staticmethod(F.adaptive_max_pool2d)

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, input):  # noqa: A002
        return self._pool(input, self.output_size, self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Max pooling of (N, C, L) or (C, L) input to ``output_size`` windows.

    >>> import graphgrad as gg
    >>> gg.nn.AdaptiveMaxPool1d(1)(gg.tensor([[[1.0, 5.0, 3.0]]])).tolist()
    [[[5.0]]]
    """

    _pool = staticmethod(F.adaptive_max_pool1d)


__all__: list[str] = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
                      "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d"]  # fmt: skip
