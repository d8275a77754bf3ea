"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d."""

from __future__ import annotations

import math

from ... import creation
from ...tensor import Size
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module


def _ntuple(value, d: int) -> tuple:
    if isinstance(value, int):
        return (value,) * d
    value = tuple(value)
    return value * d if len(value) == 1 else value


class _ConvNd(Module):
    """What the convolution layers share: torch's arguments, checks, parameters, init, repr."""

    _dims = 2
    transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, padding_mode, output_padding=0, device=None,
                 dtype=None) -> None:  # fmt: skip
        super().__init__()
        d = self._dims
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if isinstance(padding, str):
            valid = {"same", "valid"}  # torch prints this set, in the interpreter's order
            if padding not in valid:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {valid}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, d)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        modes = {"zeros", "reflect", "replicate", "circular"}  # printed as torch prints it
        if padding_mode not in modes:
            raise ValueError(f"padding_mode must be one of {modes}, but got "
                             f"padding_mode='{padding_mode}'")  # fmt: skip
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, d)
        self.stride = _ntuple(stride, d)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, d)
        self.dilation = _ntuple(dilation, d)
        self.output_padding = _ntuple(output_padding, d)
        self.groups, self.padding_mode = groups, padding_mode
        self._reversed_padding_repeated_twice = self._padding_for_pad()
        shape = ((in_channels, out_channels // groups) if self.transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size  # fmt: skip
        kind = {"device": device, "dtype": dtype}
        self.weight = Parameter(creation.empty(*shape, **kind))
        if bias:
            self.bias = Parameter(creation.empty(out_channels, **kind))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padding_for_pad(self) -> list:
        """F.pad's amounts (last dimension first) for a padding_mode other than zeros; 'same'
        puts an even kernel's extra element behind, as the functional form does."""
        amounts = []
        for i in reversed(range(self._dims)):
            if self.padding == "valid":
                front = back = 0
            elif self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                front, back = total // 2, total - total // 2
            else:
                front = back = self.padding[i]
            amounts += [front, back]
        return amounts

    def reset_parameters(self) -> None:
        """torch's default: kaiming_uniform_(a=sqrt(5)) weights, U(+-1/sqrt(fan_in)) bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        d = self._dims
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")  # fmt: skip
        if self.padding != (0,) * d:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * d:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * d:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


class _Conv(_ConvNd):
    _conv = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device=device, dtype=dtype)  # fmt: skip

    def forward(self, input):  # noqa: A002
        if self.padding_mode == "zeros":
            return self._conv(input, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups)  # fmt: skip
        padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
        return self._conv(padded, self.weight, self.bias, self.stride, 0, self.dilation,
                          self.groups)  # fmt: skip


class Conv1d(_Conv):
    """1-D convolution over (N, C, L) or (C, L) input, with torch's arguments and init.

    >>> import graphgrad as gg
    >>> gg.nn.Conv1d(2, 4, 3, padding="same")
    Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)
    """

    _dims = 1
    _conv = staticmethod(F.conv1d)


class Conv2d(_Conv):
    """2-D convolution over (N, C, H, W) or (C, H, W) input; weight (out_channels,
    in_channels / groups, kH, kW), ``padding_mode`` 'zeros', 'reflect', 'replicate' or
    'circular'.

    >>> import graphgrad as gg
    >>> layer = gg.nn.Conv2d(1, 6, 5)
    >>> layer, layer(gg.zeros(2, 1, 28, 28)).shape
    (Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1)), graphgrad.Size([2, 6, 24, 24]))
    """


class _ConvTransposeNd(_ConvNd):
    """Shared by ConvTranspose1d and ConvTranspose2d, as torch's base of the same name.
    ``forward(input, output_size)`` picks the output_padding that gives ``output_size``."""

    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:  # fmt: skip
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}")  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)  # fmt: skip

    def _output_padding(self, input, output_size) -> tuple:  # noqa: A002
        if output_size is None:
            return self.output_padding
        d = self._dims
        wanted = tuple(output_size)[-d:]
        spatial = Size(input.shape[-d:])  # torch's message prints it as a Size
        smallest = tuple(
            (n - 1) * s - 2 * p + r * (k - 1) + 1
            for n, s, p, r, k in zip(spatial, self.stride, self.padding, self.dilation,
                                     self.kernel_size)  # fmt: skip
        )
        for want, low, s in zip(wanted, smallest, self.stride):
            if not low <= want < low + s:
                raise ValueError(f"requested an output size of {list(wanted)}, but valid sizes "
                                 f"range from {list(smallest)} to "
                                 f"{[m + s - 1 for m, s in zip(smallest, self.stride)]} (for an "
                                 f"input of {spatial})")  # fmt: skip
        return tuple(w - low for w, low in zip(wanted, smallest))

    _conv_transpose = staticmethod(F.conv_transpose2d)

    def forward(self, input, output_size=None):  # noqa: A002
        return self._conv_transpose(input, self.weight, self.bias, self.stride, self.padding,
                                    self._output_padding(input, output_size), self.groups,
                                    self.dilation)  # fmt: skip


class ConvTranspose2d(_ConvTransposeNd):
    """The transpose of Conv2d; weight (in_channels, out_channels / groups, kH, kW).

    >>> import graphgrad as gg
    >>> gg.nn.ConvTranspose2d(4, 2, 3, stride=2)(gg.zeros(1, 4, 5, 5)).shape
    graphgrad.Size([1, 2, 11, 11])
    """


class ConvTranspose1d(_ConvTransposeNd):
    """The transpose of Conv1d over (N, C, L) or (C, L) input; weight (in_channels,
    out_channels / groups, k).

    >>> import graphgrad as gg
    >>> gg.nn.ConvTranspose1d(4, 2, 3, stride=2)(gg.zeros(1, 4, 5)).shape
    graphgrad.Size([1, 2, 11])
    """

    _dims = 1
    _conv_transpose = staticmethod(F.conv_transpose1d)


__all__: list[str] = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]
