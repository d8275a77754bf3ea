"""Matrix product. The primitive takes operands of two or more dimensions; the tensor layer turns
torch's 1-D cases (vector @ matrix, matrix @ vector, dot) into these by adding and removing axes."""

import numpy as np

from . import Op, register


@register
class Matmul(Op):
    name, grad_fn_name = "matmul", "MmBackward0"
    forward = staticmethod(np.matmul)

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        ga = g @ xp.matrix_transpose(b) if need_a else None
        gb = xp.matrix_transpose(a) @ g if need_b else None
        return ga, gb  # batch dimensions that were broadcast are summed away by the engine

    @staticmethod
    def error(a, b):
        shapes = f"{tuple(a.shape)} @ {tuple(b.shape)}"
        if a.shape[-1] != b.shape[-2]:
            return f"{shapes}: inner dimensions differ ({a.shape[-1]} != {b.shape[-2]})"
        return f"{shapes}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} cannot be broadcast"
