"""Recurrent layers: RNN, LSTM, GRU and their cells, with torch's weight names.

The weights are torch's (names, shapes, gate order, initialisation), so state dicts load both
ways. The input projections of all time steps are one matmul; each step then costs one matmul
of the hidden state for all gates. Each layer direction (and each cell step) runs as one fused
node of ``ops/recurrent.py``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ... import creation
from ...ops import OPS
from ...tensor import Tensor, apply, cat, stack, wrap
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _zeros(shape: tuple, like: Tensor) -> Tensor:
    """A constant initial state (not a factory call: compile records those as draws)."""
    return wrap(np.zeros(shape, like._data.dtype))


def _project(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return F.linear(x, weight, bias) if bias is not None else x.matmul(weight.t())


def _project_steps(x: Tensor, weight: Tensor, bias: Tensor | None, reverse: bool) -> Tensor:
    """The input projections of all T steps of x (T, B, I), in time order or reversed: one
    matmul of (T * B) rows (NumPy's stacked 3-D matmul is several times slower)."""
    steps, batch = x.shape[0], x.shape[1]
    rows = (x.flip(0) if reverse else x).reshape(steps * batch, x.shape[2])
    return _project(rows, weight, bias).reshape(steps, batch, weight.shape[0])


def _lstm_direction(x, state, w_ih, w_hh, b_ih, b_hh, reverse: bool):
    """One direction of one LSTM layer: x (T, B, I) -> (output (T, B, H), (h_n, c_n))."""
    h0, c0 = state
    hidden = h0.shape[-1]
    bias = b_ih + b_hh if b_ih is not None else None
    xw = _project_steps(x, w_ih, bias, reverse)
    packed = apply(OPS["lstm_layer"], (xw, h0, c0, w_hh))
    output = packed[:, :, :hidden]
    last = packed[-1]
    return (output.flip(0) if reverse else output), (last[:, :hidden], last[:, hidden : 2 * hidden])


def _gru_direction(x, h0, w_ih, w_hh, b_ih, b_hh, reverse: bool):
    """One direction of one GRU layer: x (T, B, I) -> (output (T, B, H), h_n)."""
    hidden = h0.shape[-1]
    xw = _project_steps(x, w_ih, b_ih, reverse)
    if b_hh is None:  # b_hn sits inside r * (W_hn h + b_hn): the op always takes one
        b_hh = _zeros((3 * hidden,), x)
    packed = apply(OPS["gru_layer"], (xw, h0, w_hh, b_hh))
    output = packed[:, :, :hidden]
    return (output.flip(0) if reverse else output), packed[-1, :, :hidden]


def _rnn_direction(x, h0, w_ih, w_hh, b_ih, b_hh, reverse: bool, nonlinearity: str):
    """One direction of one Elman RNN layer: x (T, B, I) -> (output (T, B, H), h_n)."""
    bias = b_ih + b_hh if b_ih is not None else None
    xw = _project_steps(x, w_ih, bias, reverse)
    output = apply(OPS["rnn_layer"], (xw, h0, w_hh), (nonlinearity,))
    return (output.flip(0) if reverse else output), output[-1]


class RNNBase(Module):
    """What RNN, LSTM and GRU share: torch's constructor, weights and forward checks."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        _check_config(mode, hidden_size, num_layers, bias, dropout, proj_size)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        kind = {"device": device, "dtype": dtype}
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = {"weight_ih": (gate_size, layer_input),
                          "weight_hh": (gate_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                names = []
                for kind_name, shape in shapes.items():
                    setattr(self, kind_name + suffix, Parameter(creation.empty(*shape, **kind)))
                    names.append(kind_name + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's: every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """torch compacts its cuDNN weights here; graphgrad's need nothing (a no-op)."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters per layer and direction, as torch: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _name(self) -> str:
        return "RNN" if self.mode.startswith("RNN") else self.mode

    def forward(self, input, hx=None):  # noqa: A002
        is_lstm = self.mode == "LSTM"
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{self._name()}: Expected input to be 2D or 3D, got {input.ndim}D instead"
            )
        weight_dtype = self.weight_ih_l0.dtype
        if input.dtype != weight_dtype:
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). "
                f"Convert input: input.to({weight_dtype}), or convert model: "
                f"model.to({input.dtype})"
            )
        batched = input.ndim == 3
        states = list(hx) if is_lstm and hx is not None else ([hx] if hx is not None else None)
        if states is not None:
            _check_state_dims(states, batched, is_lstm)
        if not batched:
            input = input.unsqueeze(1)
            states = None if states is None else [s.unsqueeze(1) for s in states]
        elif self.batch_first:
            input = input.transpose(0, 1)
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]}"
            )
        if input.shape[0] == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, input.shape[1], self.hidden_size)
        if states is None:
            zeros = _zeros(expected, input)
            states = [zeros, zeros] if is_lstm else [zeros]
        for k, state in enumerate(states):
            if tuple(state.shape) != expected:
                which = f"hidden[{k}]" if is_lstm else "hidden"
                raise RuntimeError(
                    f"Expected {which} size {expected}, got {list(state.shape)}"
                )
        output, finals = self._layers(input, states)
        if not batched:
            output = output.squeeze(1)
            finals = [s.squeeze(1) for s in finals]
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (tuple(finals) if is_lstm else finals[0])

    def _layers(self, x: Tensor, states: list):
        """Run every layer and direction; states: the (L * D, B, H) initial states."""
        directions = 2 if self.bidirectional else 1
        finals: list[list] = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            outputs = []
            for direction in range(directions):
                index = layer * directions + direction
                weights = self.all_weights[index]
                if not self.bias:
                    weights = weights + [None, None]
                output, last = self._direction(
                    x, [s[index] for s in states], *weights, reverse=bool(direction)
                )
                outputs.append(output)
                for k, s in enumerate(last if self.mode == "LSTM" else (last,)):
                    finals[k].append(s)
            x = outputs[0] if directions == 1 else cat(outputs, 2)
        return x, [stack(f) for f in finals]

    def _direction(self, x, state, w_ih, w_hh, b_ih, b_hh, reverse):
        if self.mode == "LSTM":
            return _lstm_direction(x, state, w_ih, w_hh, b_ih, b_hh, reverse)
        if self.mode == "GRU":
            return _gru_direction(x, state[0], w_ih, w_hh, b_ih, b_hh, reverse)
        nonlinearity = "tanh" if self.mode == "RNN_TANH" else "relu"
        return _rnn_direction(x, state[0], w_ih, w_hh, b_ih, b_hh, reverse, nonlinearity)


def _check_config(mode, hidden_size, num_layers, bias, dropout, proj_size) -> None:
    if (
        not isinstance(dropout, numbers.Number)
        or isinstance(dropout, bool)
        or not 0 <= dropout <= 1
    ):
        raise ValueError(
            "dropout should be a number in range [0, 1] representing the probability of an "
            "element being zeroed"
        )
    if dropout > 0 and num_layers == 1:
        warnings.warn(
            "dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
            f"expects num_layers greater than 1, but got dropout={dropout} and "
            f"num_layers={num_layers}",
            stacklevel=4,
        )
    if not isinstance(bias, bool):
        raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
    if not isinstance(hidden_size, int) or isinstance(hidden_size, bool):
        raise TypeError(
            f"hidden_size should be of type int, got: {type(hidden_size).__name__}"
        )
    if hidden_size <= 0:
        raise ValueError("hidden_size must be greater than zero")
    if num_layers <= 0:
        raise ValueError("num_layers must be greater than zero")
    if proj_size < 0:
        raise ValueError("proj_size should be a positive integer or zero to disable projections")
    if proj_size:
        raise NotImplementedError(
            f"LSTM: proj_size={proj_size} is not supported by graphgrad (LSTM with projections); "
            "use proj_size=0 and a Linear layer on the output"
        )


def _check_state_dims(states: list, batched: bool, is_lstm: bool) -> None:
    want = 3 if batched else 2
    if all(s.ndim == want for s in states):
        return
    kind = "batched 3-D" if batched else "unbatched 2-D"
    if is_lstm:
        got = ", ".join(f"{s.ndim}-D" for s in states)
        raise RuntimeError(
            f"For {kind} input, hx and cx should also be {want}-D but got ({got}) tensors"
        )
    raise RuntimeError(
        f"For {kind} input, hx should also be {want}-D but got {states[0].ndim}-D tensor"
    )


class RNN(RNNBase):
    """Elman RNN, ``h_t = tanh(x_t W_ih^T + b_ih + h_(t-1) W_hh^T + b_hh)`` (or relu), as torch.

    >>> import graphgrad as gg
    >>> rnn = gg.nn.RNN(3, 5, num_layers=2)
    >>> output, h_n = rnn(gg.zeros(7, 2, 3))
    >>> output.shape, h_n.shape
    (graphgrad.Size([7, 2, 5]), graphgrad.Size([2, 2, 5]))
    """

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError(
                "proj_size argument is only supported for LSTM, not RNN or GRU"
            )
        if len(args) > 3:
            args, kwargs = args[:3] + args[4:], {**kwargs, "nonlinearity": args[3]}
        nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", *args, **kwargs)


class LSTM(RNNBase):
    """Long short-term memory, torch's gates (i, f, g, o) and weights; ``proj_size`` is refused.

    >>> import graphgrad as gg
    >>> lstm = gg.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    >>> output, (h_n, c_n) = lstm(gg.zeros(2, 7, 3))
    >>> output.shape, h_n.shape, c_n.shape
    (graphgrad.Size([2, 7, 10]), graphgrad.Size([2, 2, 5]), graphgrad.Size([2, 2, 5]))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)


class GRU(RNNBase):
    """Gated recurrent unit, torch's gates (r, z, n) and ``n = tanh(W_in x + b_in + r * (W_hn h
    + b_hn))``.

    >>> import graphgrad as gg
    >>> output, h_n = gg.nn.GRU(3, 5)(gg.zeros(7, 3))  # unbatched
    >>> output.shape, h_n.shape
    (graphgrad.Size([7, 5]), graphgrad.Size([1, 5]))
    """

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError(
                "proj_size argument is only supported for LSTM, not RNN or GRU"
            )
        super().__init__("GRU", *args, **kwargs)


class RNNCellBase(Module):
    """What the cells share: weight_ih, weight_hh, bias_ih, bias_hh and torch's input checks."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None,
        dtype=None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kind = {"device": device, "dtype": dtype}
        gate_size = num_chunks * hidden_size
        self.weight_ih = Parameter(creation.empty(gate_size, input_size, **kind))
        self.weight_hh = Parameter(creation.empty(gate_size, hidden_size, **kind))
        if bias:
            self.bias_ih = Parameter(creation.empty(gate_size, **kind))
            self.bias_hh = Parameter(creation.empty(gate_size, **kind))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's: every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input, states: list):  # noqa: A002
        """Check input and states as torch; returns them 2-D, zeros for missing states, and
        whether the input was 1-D."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        for k, state in enumerate(states):
            if state is not None and state.ndim != input.ndim:
                which = "hx" if len(states) == 1 else ("hx", "cx")[k]
                raise ValueError(
                    f"{name}: Expected {which} to be {input.ndim}D, got {state.ndim}D instead"
                )
        unbatched = input.ndim == 1
        if unbatched:
            input = input.unsqueeze(0)
            states = [None if s is None else s.unsqueeze(0) for s in states]
        if input.shape[1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[1]} expected "
                f"{self.input_size}"
            )
        batch = input.shape[0]
        full = []
        for k, state in enumerate(states):
            if state is None:
                state = _zeros((batch, self.hidden_size), input)
            elif state.shape[0] != batch:
                raise RuntimeError(
                    f"Input batch size {batch} doesn't match hidden{k} batch size "
                    f"{state.shape[0]}"
                )
            elif state.shape[1] != self.hidden_size:
                raise RuntimeError(
                    f"hidden{k} has inconsistent hidden_size: got {state.shape[1]}, expected "
                    f"{self.hidden_size}"
                )
            full.append(state)
        return input, full, unbatched


class RNNCell(RNNCellBase):
    """One Elman RNN step, ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu).

    >>> import graphgrad as gg
    >>> gg.nn.RNNCell(3, 5)(gg.zeros(2, 3)).shape
    graphgrad.Size([2, 5])
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
        device=None, dtype=None,
    ) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):  # noqa: A002
        input, (h,), unbatched = self._prepare(input, [hx])
        _, h = _rnn_direction(input.unsqueeze(0), h, self.weight_ih, self.weight_hh,
                              self.bias_ih, self.bias_hh, False, self.nonlinearity)  # fmt: skip
        return h.squeeze(0) if unbatched else h


class LSTMCell(RNNCellBase):
    """One LSTM step: returns ``(h', c')``.

    >>> import graphgrad as gg
    >>> h, c = gg.nn.LSTMCell(3, 5)(gg.zeros(2, 3))
    >>> h.shape, c.shape
    (graphgrad.Size([2, 5]), graphgrad.Size([2, 5]))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        states = [None, None] if hx is None else list(hx)
        input, state, unbatched = self._prepare(input, states)
        output, (h, c) = _lstm_direction(
            input.unsqueeze(0), state, self.weight_ih, self.weight_hh, self.bias_ih,
            self.bias_hh, reverse=False,
        )  # fmt: skip
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)


class GRUCell(RNNCellBase):
    """One GRU step, torch's gates (r, z, n).

    >>> import graphgrad as gg
    >>> gg.nn.GRUCell(3, 5)(gg.zeros(3)).shape
    graphgrad.Size([5])
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input, hx=None):  # noqa: A002
        input, (h,), unbatched = self._prepare(input, [hx])
        _, h = _gru_direction(input.unsqueeze(0), h, self.weight_ih, self.weight_hh,
                              self.bias_ih, self.bias_hh, reverse=False)  # fmt: skip
        return h.squeeze(0) if unbatched else h
