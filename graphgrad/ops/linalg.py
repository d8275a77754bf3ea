"""Matrix product with NumPy's (and torch's) rules: 1-D operands are vectors, leading dimensions
are batch dimensions and broadcast."""

import numpy as np

from . import Op, register


@register
class Matmul(Op):
    name, grad_fn_name = "matmul", "MmBackward0"
    forward = staticmethod(np.matmul)

    @classmethod
    def node_name(cls, node):
        a, b = node.arrays
        names = {
            (1, 1): "DotBackward0",
            (2, 1): "MvBackward0",
            (2, 2): "MmBackward0",
            (1, 2): "SqueezeBackward4",
        }
        return names.get((a.ndim, b.ndim), "UnsafeViewBackward0")

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        a2, b2, g2 = a, b, g
        if a.ndim == 1 or b.ndim == 1:
            # Work in the matrix form: a vector a is a (1, k) matrix, a vector b a (k, 1) one.
            a2 = a if a.ndim > 1 else xp.reshape(a, (1, a.shape[0]))
            b2 = b if b.ndim > 1 else xp.reshape(b, (b.shape[0], 1))
            batch = np.broadcast_shapes(tuple(a2.shape[:-2]), tuple(b2.shape[:-2]))
            g2 = xp.reshape(g, batch + (a2.shape[-2], b2.shape[-1]))
        ga = gb = None
        if need_a:
            ga = g2 @ xp.matrix_transpose(b2)  # (..., m, k); for a vector m is 1 and is summed away
        if need_b:
            gb = xp.matrix_transpose(a2) @ g2
            if b.ndim == 1:
                gb = xp.reshape(gb, tuple(gb.shape[:-1]))  # drop the n = 1 column
        return ga, gb  # broadcast batch dimensions are summed away by the engine

    @staticmethod
    def error(a, b):
        shapes = f"{tuple(a.shape)} @ {tuple(b.shape)}"
        if a.ndim == 0 or b.ndim == 0:
            return f"{shapes}: both arguments need at least 1 dimension"
        inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if a.shape[-1] != inner_b:
            return f"{shapes}: inner dimensions differ ({a.shape[-1]} != {inner_b})"
        return f"{shapes}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast"


@register
class Linear(Op):
    """``x @ w.T + b``, fused for speed: the bias is added in place, and the weight's gradient is
    computed as ``g.T @ x`` directly in the weight's own layout, where matmul-then-transpose
    would hand the optimizer a transposed (strided) gradient."""

    name, grad_fn_name = "linear", "AddmmBackward0"

    @staticmethod
    def forward(x, w, b):
        out = _rows_matmul(x, w.T)
        out += b
        return out

    @classmethod
    def node_name(cls, node):
        return "AddmmBackward0" if node.arrays[0].ndim == 2 else "ViewBackward0"

    @staticmethod
    def vjp(ctx, g, x, w, b):
        xp = ctx.xp
        need_x, need_w, need_b = ctx.needs_input_grad
        if g.ndim == 2:  # a batch of rows: nothing to fold (NumPy's reshape costs a microsecond)
            g2, x2 = g, x
        else:  # leading batch dimensions folded into the rows
            g2, x2 = xp.reshape(g, (-1, w.shape[0])), xp.reshape(x, (-1, w.shape[1]))
        gx = (g @ w if g.ndim == 2 else xp.reshape(g2 @ w, tuple(x.shape))) if need_x else None
        gw = xp.matrix_transpose(g2) @ x2 if need_w else None
        gb = xp.sum(g2, (0,)) if need_b else None
        return gx, gw, gb

    @staticmethod
    def error(x, w, b):
        return (
            f"input {tuple(x.shape)} does not fit weight {tuple(w.shape)} (in_features "
            f"{w.shape[-1]}) and bias {tuple(b.shape)}"
        )


def _rows_matmul(x, m):
    """``x @ m`` for a 2-D ``m``, with x's leading dimensions folded into rows: one BLAS call,
    where NumPy's matmul of a 3-D array loops over its first dimension (about 10x slower)."""
    if x.ndim <= 2:
        return np.matmul(x, m)
    return np.matmul(x.reshape(-1, x.shape[-1]), m).reshape(x.shape[:-1] + (m.shape[-1],))
