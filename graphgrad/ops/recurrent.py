"""Recurrent and attention primitives, where a fused kernel beats composites (issue 13).

``lstm_layer`` runs one direction of one LSTM layer over the whole sequence in one node: as a
composite, every time step would be a dozen nodes, and each step's slice of the input projection
would send back a gradient of the whole sequence's size (quadratic in the sequence length).
"""

import numpy as np

from . import Op, register, shape_str
from .elementwise import _SIGMOID_CONSTANTS, _sigmoid_constants


@register
class LSTMLayer(Op):
    """One LSTM direction over a sequence, torch's gate order (i, f, g, o).

    Inputs: ``xw`` (T, B, 4H), the input projections of all steps with both biases added;
    ``h0``, ``c0`` (B, H); ``w_hh`` (4H, H). Output (T, B, 6H): per step ``h``, ``c`` and the
    gate activations ``i, f, g, o``, which the backward reads (torch's workspace).
    """

    name, grad_fn_name = "lstm_layer", "LstmLayerBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(xw, h0, c0, w_hh):
        steps, batch = xw.shape[0], xw.shape[1]
        hidden = h0.shape[-1]
        if xw.shape[2] != 4 * hidden or w_hh.shape != (4 * hidden, hidden):
            raise ValueError("shapes")
        out = np.empty((steps, batch, 6 * hidden), dtype=xw.dtype)
        w_hh_t = w_hh.T
        # the activations are computed in a contiguous buffer and copied into ``out`` once:
        # five sigmoid passes over out's strided rows took twice as long
        act = np.empty((batch, 4 * hidden), dtype=xw.dtype)
        g_part = act[:, 2 * hidden : 3 * hidden]
        i, f, o = act[:, :hidden], act[:, hidden : 2 * hidden], act[:, 3 * hidden :]
        g = np.empty((batch, hidden), dtype=xw.dtype)
        h, c = h0, c0
        for t in range(steps):
            np.matmul(h, w_hh_t, out=act)
            act += xw[t]
            np.tanh(g_part, out=g)
            _sigmoid_into(act, act)
            g_part[...] = g
            out[t, :, 2 * hidden :] = act
            c = np.multiply(f, c, out=out[t, :, hidden : 2 * hidden])
            c += i * g
            h = np.multiply(o, np.tanh(c), out=out[t, :, :hidden])
        return out

    @staticmethod
    def vjp(ctx, grad, xw, h0, c0, w_hh):
        return ctx.xp.lstm_layer_backward(grad, ctx.out, h0, c0, w_hh)

    @staticmethod
    def backward_math(*args):
        """The tensor namespace's ``lstm_layer_backward`` (see :func:`lstm_layer_backward`)."""
        return lstm_layer_backward(*args)

    @staticmethod
    def backward_numpy(grad, out, h0, c0, w_hh):
        """NumPy's ``lstm_layer_backward``: the same formulas as :func:`lstm_layer_backward`,
        written into preallocated buffers (a step: one matmul and six (B, H) operations)."""
        steps, batch, hidden = out.shape[0], out.shape[1], h0.shape[-1]
        gates = out[..., 2 * hidden :].reshape(steps, batch, 4, hidden)
        i, f, g, o = (gates[:, :, k] for k in range(4))
        c = out[..., hidden : 2 * hidden]
        c_prev = np.concatenate([c0[None], c[:-1]])
        tanh_c = np.tanh(c)
        slopes = gates * (1 - gates)  # sigmoid' for i, f, o
        slopes[:, :, 2] = 1 - g * g  # tanh' for g
        # dc times this gives the (i, f, g) pre-activation gradients, dh times the o one
        from_c = np.stack([g, c_prev, i], 2) * slopes[:, :, :3]
        from_h = tanh_c * slopes[:, :, 3]
        tanh_slope = o * (1 - tanh_c * tanh_c)
        gate_grads = grad[..., 2 * hidden :].reshape(steps, batch, 4, hidden)
        direct = (gate_grads * slopes).reshape(steps, batch, 4 * hidden) if gate_grads.any() \
            else None  # fmt: skip
        grad_h, grad_c = grad[..., :hidden], grad[..., hidden : 2 * hidden]
        d_xw = np.empty((steps, batch, 4 * hidden), dtype=out.dtype)
        d_gates = d_xw.reshape(steps, batch, 4, hidden)
        dh, dc = np.zeros_like(h0), np.zeros_like(c0)
        for t in range(steps - 1, -1, -1):
            dh = np.add(grad_h[t], dh)
            dc = grad_c[t] + dc
            dc += dh * tanh_slope[t]
            np.multiply(dc[:, None, :], from_c[t], out=d_gates[t, :, :3])
            np.multiply(dh, from_h[t], out=d_gates[t, :, 3])
            if direct is not None:
                d_xw[t] += direct[t]
            dh = d_xw[t] @ w_hh
            dc *= f[t]
        h_prev = np.concatenate([h0[None], out[: steps - 1, :, :hidden]])
        d_w_hh = d_xw.reshape(steps * batch, 4 * hidden).T @ h_prev.reshape(steps * batch, hidden)
        return d_xw, dh, dc, d_w_hh

    @staticmethod
    def error(xw, h0, c0, w_hh):
        return (
            f"expected xw (T, B, 4H), h0 and c0 (B, H), w_hh (4H, H); got xw {shape_str(xw)}, "
            f"h0 {shape_str(h0)}, c0 {shape_str(c0)}, w_hh {shape_str(w_hh)}"
        )


def _sigmoid_into(x, out):
    """elementwise._sigmoid's operations (bit for bit), written into ``out``."""
    low, one = _SIGMOID_CONSTANTS.get(x.dtype) or _sigmoid_constants(x.dtype)
    np.maximum(x, low, out=out)
    np.negative(out, out)
    np.exp(out, out)
    np.add(out, one, out)
    np.reciprocal(out, out)


def lstm_layer_backward(grad, out, h0, c0, w_hh, cat, tanh, zeros_like):
    """The gradients of ``lstm_layer`` with respect to (xw, h0, c0, w_hh), written with operators
    and the three given functions only, so that NumPy and graphgrad's tensors both run it (the
    latter differentiably, for create_graph=True).

    Only the state gradients are sequential; every factor that does not depend on them is
    computed for all steps at once, so one step costs one (B, 4H) x (4H, H) matmul and a few
    (B, H) elementwise operations."""
    hidden = h0.shape[-1]
    steps, batch = out.shape[0], out.shape[1]

    def part(x, k):
        return x[..., k * hidden : (k + 1) * hidden]

    c, i, f, g, o = (part(out, k) for k in range(1, 6))
    c_prev = cat([c0.reshape((1, batch, hidden)), c[: steps - 1]], 0)
    tanh_c = tanh(c)
    # the pre-activation derivatives of the gates, and what each gate's gradient is made of
    d_i, d_f, d_g, d_o = i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)
    from_c = [g * d_i, c_prev * d_f, i * d_g]  # times the cell-state gradient dc
    from_h = tanh_c * d_o  # times the hidden-state gradient dh
    direct = cat([part(grad, k) * d for k, d in zip(range(2, 6), (d_i, d_f, d_g, d_o))], 2)
    grad_h, grad_c = part(grad, 0), part(grad, 1)
    tanh_slope = o * (1 - tanh_c * tanh_c)
    dh, dc = zeros_like(h0), zeros_like(c0)
    step_grads = [None] * steps
    for t in range(steps - 1, -1, -1):
        dh = grad_h[t] + dh
        dc = grad_c[t] + dc + dh * tanh_slope[t]
        d_gates = cat([dc * from_c[0][t], dc * from_c[1][t], dc * from_c[2][t],
                       dh * from_h[t]], 1) + direct[t]  # fmt: skip
        step_grads[t] = d_gates
        dh = d_gates @ w_hh
        dc = dc * f[t]
    if not steps:
        return direct, dh, dc, zeros_like(w_hh)
    d_xw = cat([s.reshape((1, batch, 4 * hidden)) for s in step_grads], 0)
    h_prev = cat([h0.reshape((1, batch, hidden)), part(out, 0)[: steps - 1]], 0)
    d_w_hh = d_xw.reshape((steps * batch, 4 * hidden)).mT @ h_prev.reshape((steps * batch, hidden))
    return d_xw, dh, dc, d_w_hh


@register
class GRULayer(Op):
    """One GRU direction over a sequence, torch's gates (r, z, n) and n-gate formula.

    Inputs: ``xw`` (T, B, 3H) = x W_ih^T + b_ih for all steps; ``h0`` (B, H); ``w_hh`` (3H, H);
    ``b_hh`` (3H,). Output (T, B, 5H): per step ``h``, the gates ``r, z, n`` and
    ``W_hn h + b_hn`` (what r multiplies), which the backward reads.
    """

    name, grad_fn_name = "gru_layer", "GruLayerBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(xw, h0, w_hh, b_hh):
        steps, batch = xw.shape[0], xw.shape[1]
        hidden = h0.shape[-1]
        if xw.shape[2] != 3 * hidden or w_hh.shape != (3 * hidden, hidden) or b_hh.shape != (
            3 * hidden,
        ):
            raise ValueError("shapes")
        out = np.empty((steps, batch, 5 * hidden), dtype=xw.dtype)
        w_hh_t = w_hh.T
        h = h0
        for t in range(steps):
            hw = np.matmul(h, w_hh_t)
            hw += b_hh
            step = out[t]
            rz = step[:, hidden : 3 * hidden]
            np.add(xw[t, :, : 2 * hidden], hw[:, : 2 * hidden], out=rz)
            _sigmoid_into(rz, rz)
            r, z = rz[:, :hidden], rz[:, hidden:]
            hn = step[:, 4 * hidden :]
            hn[...] = hw[:, 2 * hidden :]
            n = np.multiply(r, hn, out=step[:, 3 * hidden : 4 * hidden])
            n += xw[t, :, 2 * hidden :]
            np.tanh(n, out=n)
            h_new = np.subtract(h, n, out=step[:, :hidden])  # torch's (h - n) * z + n
            h_new *= z
            h_new += n
            h = h_new
        return out

    @staticmethod
    def vjp(ctx, grad, xw, h0, w_hh, b_hh):
        return ctx.xp.gru_layer_backward(grad, ctx.out, h0, w_hh)

    @staticmethod
    def backward_math(*args):
        """The xp namespaces' ``gru_layer_backward`` (see :func:`gru_layer_backward`)."""
        return gru_layer_backward(*args)

    @staticmethod
    def error(xw, h0, w_hh, b_hh):
        return (
            f"expected xw (T, B, 3H), h0 (B, H), w_hh (3H, H), b_hh (3H,); got xw "
            f"{shape_str(xw)}, h0 {shape_str(h0)}, w_hh {shape_str(w_hh)}, b_hh {shape_str(b_hh)}"
        )


def gru_layer_backward(grad, out, h0, w_hh, cat, zeros_like):
    """The gradients of ``gru_layer`` with respect to (xw, h0, w_hh, b_hh); as
    :func:`lstm_layer_backward`, operators and the given functions only."""
    hidden = h0.shape[-1]
    steps, batch = out.shape[0], out.shape[1]

    def part(x, k):
        return x[..., k * hidden : (k + 1) * hidden]

    h, r, z, n, hn = (part(out, k) for k in range(5))
    h_prev = cat([h0.reshape((1, batch, hidden)), h[: steps - 1]], 0)
    d_r, d_z, d_n = r * (1 - r), z * (1 - z), 1 - n * n
    # per step, with dh the hidden-state gradient: z' = dh * a_z + g_z, n' = dh * a_n + g_n,
    # r' = n' * b_r + g_r, the hidden n-part n' * r + g_hn (g_*: this node's output gradients)
    a_z, a_n, b_r = (h_prev - n) * d_z, (1 - z) * d_n, hn * d_r
    g_r, g_z, g_n = part(grad, 1) * d_r, part(grad, 2) * d_z, part(grad, 3) * d_n
    g_hn, grad_h = part(grad, 4), part(grad, 0)
    dh = zeros_like(h0)
    input_grads, hidden_grads = [None] * steps, [None] * steps
    for t in range(steps - 1, -1, -1):
        dh = grad_h[t] + dh
        dz = dh * a_z[t] + g_z[t]
        dn = dh * a_n[t] + g_n[t]
        dr = dn * b_r[t] + g_r[t]
        input_grads[t] = cat([dr, dz, dn], 1)
        hidden_grads[t] = cat([dr, dz, dn * r[t] + g_hn[t]], 1)
        dh = dh * z[t] + hidden_grads[t] @ w_hh
    if not steps:
        empty = out[..., : 3 * hidden]
        return empty, dh, zeros_like(w_hh), zeros_like(w_hh[:, 0])
    d_xw = cat([s.reshape((1, batch, 3 * hidden)) for s in input_grads], 0)
    d_hw = cat(hidden_grads, 0)  # (T * B, 3H)
    d_w_hh = d_hw.mT @ h_prev.reshape((steps * batch, hidden))
    return d_xw, dh, d_w_hh, d_hw.sum(0)


@register
class RNNLayer(Op):
    """One Elman RNN direction: ``h_t = act(xw_t + h_(t-1) W_hh^T)``, act tanh or relu.

    Inputs: ``xw`` (T, B, H) with both biases added, ``h0`` (B, H), ``w_hh`` (H, H); params:
    the nonlinearity. Output: the hidden states (T, B, H).
    """

    name, grad_fn_name = "rnn_layer", "RnnLayerBackward0"
    vjp_reads_output = True

    @staticmethod
    def forward(xw, h0, w_hh, nonlinearity):
        hidden = h0.shape[-1]
        if xw.shape[2] != hidden or w_hh.shape != (hidden, hidden):
            raise ValueError("shapes")
        out = np.empty(xw.shape, dtype=xw.dtype)
        w_hh_t = w_hh.T
        h = h0
        for t in range(xw.shape[0]):
            h = np.matmul(h, w_hh_t, out=out[t])
            h += xw[t]
            if nonlinearity == "tanh":
                np.tanh(h, out=h)
            else:
                np.maximum(h, 0, out=h)
        return out

    @staticmethod
    def vjp(ctx, grad, xw, h0, w_hh):
        return ctx.xp.rnn_layer_backward(grad, ctx.out, h0, w_hh, ctx.params[0])

    @staticmethod
    def backward_math(*args):
        """The xp namespaces' ``rnn_layer_backward`` (see :func:`rnn_layer_backward`)."""
        return rnn_layer_backward(*args)

    @staticmethod
    def error(xw, h0, w_hh, nonlinearity):
        return (
            f"expected xw (T, B, H), h0 (B, H), w_hh (H, H); got xw {shape_str(xw)}, "
            f"h0 {shape_str(h0)}, w_hh {shape_str(w_hh)}"
        )


def rnn_layer_backward(grad, out, h0, w_hh, nonlinearity, cat, zeros_like):
    """The gradients of ``rnn_layer`` with respect to (xw, h0, w_hh)."""
    steps, batch, hidden = out.shape[0], out.shape[1], out.shape[2]
    slope = 1 - out * out if nonlinearity == "tanh" else (out > 0) * 1.0
    dh = zeros_like(h0)
    step_grads = [None] * steps
    for t in range(steps - 1, -1, -1):
        d_pre = (grad[t] + dh) * slope[t]
        step_grads[t] = d_pre.reshape((1, batch, hidden))
        dh = d_pre @ w_hh
    if not steps:
        return out, dh, zeros_like(w_hh)
    d_xw = cat(step_grads, 0)
    h_prev = cat([h0.reshape((1, batch, hidden)), out[: steps - 1]], 0)
    d_w_hh = d_xw.reshape((steps * batch, hidden)).mT @ h_prev.reshape((steps * batch, hidden))
    return d_xw, dh, d_w_hh
