"""Elementwise primitives. Gradient formulas follow PyTorch's (tools/autograd/derivatives.yaml),
operation for operation, so that float32 results agree to the last bit wherever NumPy's kernels do.
"""

import numpy as np

from . import Op, register, shape_str

# Constants for vjps as 0-d float32 arrays: NumPy takes a slow path (about 0.3 us per call) for
# Python numbers, while these are exact in every float dtype and never widen a float32 result.
ONE, TWO = np.ones((), np.float32), np.full((), 2, np.float32)


def _broadcast_error(*args) -> str | None:
    arrays = [a for a in args if hasattr(a, "shape")]
    try:
        np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        return f"shapes {', '.join(shape_str(a) for a in arrays)} cannot be broadcast together"
    return None  # the shapes fit: the error is another (a dtype), and NumPy's message says which


class _Binary(Op):
    error = staticmethod(_broadcast_error)


@register
class Add(_Binary):
    name, grad_fn_name, saves = "add", "AddBackward0", False
    forward = staticmethod(np.add)

    @staticmethod
    def vjp(ctx, g, a, b):
        return g, g


@register
class Sub(_Binary):
    name, grad_fn_name, saves = "sub", "SubBackward0", False
    forward = staticmethod(np.subtract)

    @classmethod
    def node_name(cls, node):
        return "SubBackward0" if hasattr(node.inputs[0], "grad_fn") else "RsubBackward1"

    @staticmethod
    def vjp(ctx, g, a, b):
        return g, (-g if ctx.needs_input_grad[1] else None)


@register
class Mul(_Binary):
    name, grad_fn_name = "mul", "MulBackward0"
    forward = staticmethod(np.multiply)

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        return (g * b if need_a else None), (g * a if need_b else None)


@register
class Div(_Binary):
    name, grad_fn_name = "div", "DivBackward0"
    forward = staticmethod(np.true_divide)

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        return (g / b if need_a else None), (-g * ((a / b) / b) if need_b else None)


@register
class PowScalar(Op):
    """``x ** exponent`` for a number ``exponent`` (PowBackward0 in torch)."""

    name, grad_fn_name = "pow_scalar", "PowBackward0"
    forward = staticmethod(np.power)

    @staticmethod
    def vjp(ctx, g, x):
        (exponent,) = ctx.params
        if exponent == 0:
            return (ctx.xp.zeros_like(g),)
        return (g * (exponent * x ** (exponent - 1)),)


@register
class Pow(_Binary):
    """``a ** b`` with a tensor exponent."""

    name, grad_fn_name = "pow", "PowBackward1"
    forward = staticmethod(np.power)
    vjp_reads_output = True

    @classmethod
    def node_name(cls, node):
        return "PowBackward1" if hasattr(node.inputs[0], "grad_fn") else "PowBackward2"

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        ga = gb = None
        if need_a:
            ga = xp.where(b == 0, 0.0, g * (b * a ** (b - 1)))
        if need_b:
            gb = g * xp.where((a == 0) & (b >= 0), 0.0, ctx.out * xp.log(a))
        return ga, gb


@register
class Maximum(_Binary):
    name, grad_fn_name = "maximum", "MaximumBackward0"
    forward = staticmethod(np.maximum)

    @staticmethod
    def vjp(ctx, g, a, b):
        return _select_larger(ctx.xp, g, a, b)


@register
class Minimum(_Binary):
    name, grad_fn_name = "minimum", "MinimumBackward0"
    forward = staticmethod(np.minimum)

    @staticmethod
    def vjp(ctx, g, a, b):
        return _select_larger(ctx.xp, g, b, a)


def _select_larger(xp, g, winner, loser):
    """Route ``g`` to the winning input; ties share it equally, as PyTorch does."""
    shared = xp.where(winner == loser, g / 2, g)
    return xp.where(winner < loser, 0.0, shared), xp.where(loser < winner, 0.0, shared)


@register
class Where(Op):
    name, grad_fn_name = "where", "WhereBackward0"
    forward = staticmethod(np.where)

    @staticmethod
    def vjp(ctx, g, cond, a, b):
        xp = ctx.xp
        _, need_a, need_b = ctx.needs_input_grad
        return (
            None,
            (xp.where(cond, g, 0.0) if need_a else None),
            (xp.where(cond, 0.0, g) if need_b else None),
        )

    @staticmethod
    def error(cond, a, b):
        return _broadcast_error(cond, a, b) + " (condition, input, other)"


@register
class Clamp(Op):
    """``clamp(x, min, max)``; the bounds are numbers, arrays or None, never differentiated."""

    name, grad_fn_name = "clamp", "ClampBackward1"

    @staticmethod
    def forward(x, lo, hi):
        if lo is not None:
            x = np.maximum(x, lo)
        if hi is not None:
            x = np.minimum(x, hi)
        return x

    @staticmethod
    def vjp(ctx, g, x, lo, hi):
        inside = True
        if lo is not None:
            inside = x >= lo
        if hi is not None:
            inside = (x <= hi) & inside if lo is not None else x <= hi
        return ctx.xp.where(inside, g, 0.0), None, None


@register
class Remainder(_Binary):
    """Python's modulo: the result takes the sign of the divisor, as in torch.remainder."""

    name, grad_fn_name = "remainder", "RemainderBackward0"
    forward = staticmethod(np.remainder)
    vjp_reads_output = True

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        return (g if need_a else None), (-g * ((a - ctx.out) / b) if need_b else None)


class _Unary(Op):
    pass


def _unary(name, grad_fn_name, forward, vjp, saves=True, floating=False, reads_input=True,
           reads_output=False):
    cls = type(
        name.title(),
        (_Unary,),
        dict(
            name=name,
            grad_fn_name=grad_fn_name,
            saves=saves,
            floating=floating,
            vjp_reads_inputs=reads_input,
            vjp_reads_output=reads_output,
            forward=staticmethod(forward),
            vjp=staticmethod(vjp),
        ),
    )
    return register(cls)


def _sigmoid(x):
    """1 / (1 + e^-x), as torch computes it, in one buffer. e^-x is capped just below overflow
    (so NumPy never warns); the capped result differs only where sigmoid is below 1e-38.
    -max(x, -limit) is min(-x, limit) to the bit, and max makes the buffer: one call fewer."""
    low, one = _SIGMOID_CONSTANTS.get(x.dtype) or _sigmoid_constants(x.dtype)
    out = np.maximum(x, low)
    if type(out) is not np.ndarray:  # 0-d input gives a NumPy scalar
        out = np.asarray(out)
    np.negative(out, out)
    np.exp(out, out)
    np.add(out, one, out)
    return np.reciprocal(out, out)


_SIGMOID_CONSTANTS: dict = {}


def _sigmoid_constants(dtype):
    """-limit and 1 as 0-d arrays of ``dtype``; limit is 88 for float32, 709 for float64."""
    limit = np.floor(np.log(np.finfo(dtype).max))
    constants = _SIGMOID_CONSTANTS[dtype] = (np.asarray(-limit, dtype), np.ones((), dtype))
    return constants


def _zero_vjp(ctx, g, x):
    """Piecewise-constant ops: zeros, as torch, that do not depend on g (so a NaN gradient gives
    0, and under create_graph=True the zeros do not require grad)."""
    return (ctx.xp.zeros_like(g),)


def _rsqrt(x):
    return 1 / np.sqrt(x)


def _relu(x):
    if x.size < 4096:
        return np.maximum(x, 0)
    # NumPy's SIMD loop for maximum runs only when both operands are full arrays: against a
    # (lazily zeroed) array of zeros it is 2-3x faster than against the scalar 0.
    return np.maximum(x, np.zeros(x.shape, x.dtype))


_unary("neg", "NegBackward0", np.negative, lambda ctx, g, x: (-g,), saves=False)
_unary("exp", "ExpBackward0", np.exp, lambda ctx, g, x: (g * ctx.out,), floating=True,
       reads_input=False, reads_output=True)
_unary("log", "LogBackward0", np.log, lambda ctx, g, x: (g / x,), floating=True)
_unary("log1p", "Log1PBackward0", np.log1p, lambda ctx, g, x: (g / (x + ONE),), floating=True)
_unary("sqrt", "SqrtBackward0", np.sqrt, lambda ctx, g, x: (g / (TWO * ctx.out),), floating=True,
       reads_input=False, reads_output=True)
_unary("rsqrt", "RsqrtBackward0", _rsqrt, lambda ctx, g, x: (-0.5 * g * ctx.out**3,),
       floating=True, reads_input=False, reads_output=True)
_unary("abs", "AbsBackward0", np.abs, lambda ctx, g, x: (g * ctx.xp.sign(x),))
_unary("sign", "SignBackward0", np.sign, _zero_vjp, saves=False)
_unary("sin", "SinBackward0", np.sin, lambda ctx, g, x: (g * ctx.xp.cos(x),), floating=True)
_unary("cos", "CosBackward0", np.cos, lambda ctx, g, x: (g * -ctx.xp.sin(x),), floating=True)
_unary("tan", "TanBackward0", np.tan, lambda ctx, g, x: (g * (ONE + ctx.out * ctx.out),),
       floating=True, reads_input=False, reads_output=True)
_unary(
    "tanh",
    "TanhBackward0",
    np.tanh,
    lambda ctx, g, x: (g * (ONE - ctx.out * ctx.out),),
    floating=True,
    reads_input=False,
    reads_output=True,
)
_unary(
    "sigmoid",
    "SigmoidBackward0",
    _sigmoid,
    lambda ctx, g, x: (g * (ONE - ctx.out) * ctx.out,),
    floating=True,
    reads_input=False,
    reads_output=True,
)
_unary("floor", "FloorBackward0", np.floor, _zero_vjp, saves=False)
_unary("ceil", "CeilBackward0", np.ceil, _zero_vjp, saves=False)
_unary("round", "RoundBackward0", np.round, _zero_vjp, saves=False)
# g * (out > 0) (ops.numpy_ns.relu_backward): the mask multiplies rather than selects
# (np.where is several times slower), identical to torch's threshold_backward for finite
# gradients; a NaN or infinite gradient at an inactive unit stays NaN here where torch gives 0.
_unary("relu", "ReluBackward0", _relu, lambda ctx, g, x: (ctx.xp.relu_backward(g, ctx.out),),
       reads_input=False, reads_output=True)


class _NoGrad(Op):
    differentiable = False
    saves = False
    error = staticmethod(_broadcast_error)


def _no_grad(name, forward):
    return register(type(name.title(), (_NoGrad,), dict(name=name, forward=staticmethod(forward))))


for _name, _fn in [
    ("eq", np.equal),
    ("ne", np.not_equal),
    ("lt", np.less),
    ("le", np.less_equal),
    ("gt", np.greater),
    ("ge", np.greater_equal),
    ("logical_and", np.logical_and),
    ("logical_or", np.logical_or),
    ("logical_xor", np.logical_xor),
    ("logical_not", np.logical_not),
    ("isnan", np.isnan),
    ("isinf", np.isinf),
    ("isfinite", np.isfinite),
]:
    _no_grad(_name, _fn)


@register
class FloorDivide(_Binary):
    """``a // b``. For floating-point inputs that require grad torch records a node whose
    backward raises, rather than a silent zero: so does graphgrad."""

    name, grad_fn_name, saves = "floor_divide", "NotImplemented", False
    forward = staticmethod(np.floor_divide)

    @staticmethod
    def vjp(ctx, g, a, b):
        raise RuntimeError(
            "the derivative for floor_divide is not implemented (as in torch); "
            "a.div(b, rounding_mode='floor') has the same values and a zero gradient"
        )


@register
class DivFloor(FloorDivide):
    """``a.div(b, rounding_mode='floor')``: ``a // b``, and torch's zero gradient."""

    name, grad_fn_name = "div_floor", "DivBackward2"

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        zeros = ctx.xp.zeros_like(g)
        return (zeros if need_a else None), (zeros if need_b else None)
