"""Op-table rows: recurrent layers and attention (graphgrad/ops/recurrent.py)."""

import numpy as np
from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _lstm_layer_numpy(xw, h, c, w_hh, lib=np):
    """The packed (T, B, 6H) output [h, c, i, f, g, o] per step, step by step. ``lib`` is NumPy
    or torch (whose own LSTM gives no gate activations and no create_graph-able state grads of
    this layout, so the reference is its tensor ops)."""
    hidden = h.shape[-1]
    cat = np.concatenate if lib is np else lib.cat
    stack = np.stack if lib is np else lib.stack
    sigmoid = _sigmoid if lib is np else lib.sigmoid
    steps = []
    for t in range(xw.shape[0]):
        gates = xw[t] + h @ w_hh.T
        i, f = sigmoid(gates[:, :hidden]), sigmoid(gates[:, hidden : 2 * hidden])
        g, o = lib.tanh(gates[:, 2 * hidden : 3 * hidden]), sigmoid(gates[:, 3 * hidden :])
        c = f * c + i * g
        h = o * lib.tanh(c)
        steps.append(cat([h, c, i, f, g, o], 1))
    return stack(steps, 0)


def _gru_layer_numpy(xw, h, w_hh, b_hh, lib=np):
    """The packed (T, B, 5H) output [h, r, z, n, W_hn h + b_hn] per step (torch's formula)."""
    hidden = h.shape[-1]
    cat = np.concatenate if lib is np else lib.cat
    stack = np.stack if lib is np else lib.stack
    sigmoid = _sigmoid if lib is np else lib.sigmoid
    steps = []
    for t in range(xw.shape[0]):
        hw = h @ w_hh.T + b_hh
        r = sigmoid(xw[t, :, :hidden] + hw[:, :hidden])
        z = sigmoid(xw[t, :, hidden : 2 * hidden] + hw[:, hidden : 2 * hidden])
        hn = hw[:, 2 * hidden :]
        n = lib.tanh(xw[t, :, 2 * hidden :] + r * hn)
        h = (h - n) * z + n
        steps.append(cat([h, r, z, n, hn], 1))
    return stack(steps, 0)


def _rnn_layer_numpy(xw, h, w_hh, nonlinearity="tanh", lib=np):
    steps = []
    for t in range(xw.shape[0]):
        pre = xw[t] + h @ w_hh.T
        h = lib.tanh(pre) if nonlinearity == "tanh" else (
            np.maximum(pre, 0) if lib is np else lib.relu(pre))  # fmt: skip
        steps.append(h)
    return np.stack(steps) if lib is np else lib.stack(steps)


def _graphgrad_op(name, inputs, params=()):
    from graphgrad.ops import OPS
    from graphgrad.tensor import apply

    return apply(OPS[name], inputs, params)


def _gru_layer(lib, xw, h0, w_hh, b_hh):
    if lib.__name__ == "torch":
        return _gru_layer_numpy(xw, h0, w_hh, b_hh, lib)
    return _graphgrad_op("gru_layer", (xw, h0, w_hh, b_hh))


def _rnn_layer(nonlinearity):
    def call(lib, xw, h0, w_hh):
        if lib.__name__ == "torch":
            return _rnn_layer_numpy(xw, h0, w_hh, nonlinearity, lib)
        return _graphgrad_op("rnn_layer", (xw, h0, w_hh), (nonlinearity,))

    return call


def _lstm_layer(lib, xw, h0, c0, w_hh):
    if lib.__name__ == "torch":
        return _lstm_layer_numpy(xw, h0, c0, w_hh, lib)
    return _graphgrad_op("lstm_layer", (xw, h0, c0, w_hh))


ROWS: list[OpCase] = [
    OpCase(
        "lstm_layer", _lstm_layer, _lstm_layer_numpy,
        [((3, 2, 8), (2, 2), (2, 2), (8, 2)), ((1, 1, 4), (1, 1), (1, 1), (4, 1))],
    ),  # fmt: skip
    OpCase(
        "gru_layer", _gru_layer, _gru_layer_numpy,
        [((3, 2, 6), (2, 2), (6, 2), (6,)), ((1, 1, 3), (1, 1), (3, 1), (3,))],
    ),  # fmt: skip
    OpCase(
        "rnn_layer", _rnn_layer("tanh"), lambda xw, h, w: _rnn_layer_numpy(xw, h, w, "tanh"),
        [((3, 2, 2), (2, 2), (2, 2)), ((1, 1, 1), (1, 1), (1, 1))],
    ),  # fmt: skip
    OpCase(  # relu: no kinks hit with these magnitudes, so finite differences hold
        "rnn_layer", _rnn_layer("relu"), lambda xw, h, w: _rnn_layer_numpy(xw, h, w, "relu"),
        [((3, 2, 2), (2, 2), (2, 2))], low=0.2, high=1.5,
    ),  # fmt: skip
]
