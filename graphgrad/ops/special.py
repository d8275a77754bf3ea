"""Elementwise math and activation primitives added for PyTorch programs (issue 13).

Gradient formulas are torch's (tools/autograd/derivatives.yaml and its activation kernels),
including the value each takes at a kink: hardtanh passes no gradient at its bounds, elu takes
its negative branch at 0. Where torch's formula would overflow in a branch that it then discards
(softplus, logaddexp), the same value comes from sigmoid, which never overflows.
"""

import math

import numpy as np

from . import Op, register
from .elementwise import ONE, _broadcast_error, _zero_vjp

_LN2, _LN10 = math.log(2.0), math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _unary(name, grad_fn_name, forward, vjp, *, reads_input=True, reads_output=False,
           floating=True, saves=True):
    """Register the elementwise primitive ``name``; integer inputs become float32 first."""
    cls = type(name.title(), (Op,), dict(
        name=name, grad_fn_name=grad_fn_name, saves=saves, floating=floating,
        vjp_reads_inputs=reads_input, vjp_reads_output=reads_output,
        forward=staticmethod(forward), vjp=staticmethod(vjp),
    ))  # fmt: skip
    return register(cls)


# ---------------------------------------------------------------------- erf


# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969),
# as in his CALERF: relative error below 1e-17 on each of the three intervals of |x|.
_ERF_SMALL_P = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
                3.20937758913846947e03, 1.85777706184603153e-1)  # fmt: skip
_ERF_SMALL_Q = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
                2.84423683343917062e03)  # fmt: skip
_ERFC_MID_P = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
               2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
               2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)  # fmt: skip
_ERFC_MID_Q = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
               1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
               3.43936767414372164e03, 1.23033935480374942e03)  # fmt: skip
_ERFC_BIG_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
               1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)  # fmt: skip
_ERFC_BIG_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
               6.05183413124413191e-2, 2.33520497626869185e-3)  # fmt: skip
_ERF_SPLIT, _ERFC_SPLIT = 0.46875, 4.0
_RSQRT_PI = 0.5641895835477562869


def _cody_ratio(x, p: tuple, q: tuple):
    """Cody's nested evaluation of P(x) / Q(x): p[-1] leads, p[-2] and q[-1] are the constants.
    In place, in two buffers: fresh arrays at every step cost more than the arithmetic."""
    num, den = x * p[-1], x.copy()
    for a, b in zip(p[:-2], q[:-1]):
        num += a
        num *= x
        den += b
        den *= x
    num += p[-2]
    den += q[-1]
    num /= den
    return num


def _erf(x):
    """erf in float64 on each interval's elements alone, rounded once to ``x``'s dtype."""
    wide = np.array(x, dtype=np.float64)  # a copy: NaN stays NaN, the rest is overwritten
    size = np.abs(wide)
    small = size <= _ERF_SPLIT
    mid = (size > _ERF_SPLIT) & (size <= _ERFC_SPLIT)
    big = size > _ERFC_SPLIT
    s = wide[small]
    wide[small] = s * _cody_ratio(s * s, _ERF_SMALL_P, _ERF_SMALL_Q)
    m = size[mid]
    erfc_mid = np.exp(-(m * m)) * _cody_ratio(m, _ERFC_MID_P, _ERFC_MID_Q)
    wide[mid] = np.copysign(1.0 - erfc_mid, wide[mid])
    b = size[big]
    inv_square = 1.0 / (b * b)
    tail = inv_square * _cody_ratio(inv_square, _ERFC_BIG_P, _ERFC_BIG_Q)
    erfc_big = np.exp(-(b * b)) / b * (_RSQRT_PI - tail)
    wide[big] = np.copysign(1.0 - erfc_big, wide[big])
    return wide.astype(x.dtype, copy=False) if x.dtype.kind == "f" else wide


_unary("erf", "ErfBackward0", _erf,
       lambda ctx, g, x: (_TWO_OVER_SQRT_PI * ctx.xp.exp(-(x * x)) * g,))  # fmt: skip


# ---------------------------------------------------------------------- inverse trig, hyperbolic


def _rsqrt(xp, x):
    return ONE / xp.sqrt(x)


_unary("asin", "AsinBackward0", np.arcsin,
       lambda ctx, g, x: (g * _rsqrt(ctx.xp, -x * x + ONE),))  # fmt: skip
_unary("acos", "AcosBackward0", np.arccos,
       lambda ctx, g, x: (g * -_rsqrt(ctx.xp, -x * x + ONE),))  # fmt: skip
_unary("atan", "AtanBackward0", np.arctan, lambda ctx, g, x: (g / (x * x + ONE),))
_unary("sinh", "SinhBackward0", np.sinh, lambda ctx, g, x: (g * ctx.xp.cosh(x),))
_unary("cosh", "CoshBackward0", np.cosh, lambda ctx, g, x: (g * ctx.xp.sinh(x),))
_unary("asinh", "AsinhBackward0", np.arcsinh,
       lambda ctx, g, x: (g * _rsqrt(ctx.xp, x * x + ONE),))  # fmt: skip
_unary("acosh", "AcoshBackward0", np.arccosh,
       lambda ctx, g, x: (g * _rsqrt(ctx.xp, x * x - ONE),))  # fmt: skip
_unary("atanh", "AtanhBackward0", np.arctanh, lambda ctx, g, x: (g * (ONE / (ONE - x * x)),))
_unary("log2", "Log2Backward0", np.log2, lambda ctx, g, x: (g / (x * _LN2),))
_unary("log10", "Log10Backward0", np.log10, lambda ctx, g, x: (g / (x * _LN10),))
_unary("exp2", "Exp2Backward0", np.exp2, lambda ctx, g, x: (g * ctx.out * _LN2,),
       reads_input=False, reads_output=True)  # fmt: skip


def _trunc(x):
    return np.trunc(x) if x.dtype.kind == "f" else x.copy()  # an integer stays one, as torch


_unary("trunc", "TruncBackward0", _trunc, _zero_vjp, floating=False, saves=False)


# ---------------------------------------------------------------------- binary


class _Binary(Op):
    error = staticmethod(_broadcast_error)


def _number_operand(node) -> bool:
    """torch names a node by its overload: a Python number as ``other`` is the Scalar one."""
    return not hasattr(node.inputs[1], "grad_fn")


@register
class Atan2(_Binary):
    name, grad_fn_name = "atan2", "Atan2Backward0"

    @staticmethod
    def forward(a, b):
        # NumPy's float32 arctan2 is off by an ulp at times; float64 rounded once is torch's
        if a.dtype == np.float32 and b.dtype == np.float32:
            return np.arctan2(a.astype(np.float64), b.astype(np.float64)).astype(np.float32)
        return np.arctan2(a, b)

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        scale = g * (ONE / (a * a + b * b))
        return (scale * b if need_a else None), (scale * -a if need_b else None)


@register
class Fmod(_Binary):
    """C's fmod: the result takes the sign of the dividend (torch.fmod)."""

    name, grad_fn_name = "fmod", "FmodBackward1"
    forward = staticmethod(np.fmod)

    @classmethod
    def node_name(cls, node):
        return "FmodBackward0" if _number_operand(node) else "FmodBackward1"

    @staticmethod
    def vjp(ctx, g, a, b):
        need_a, need_b = ctx.needs_input_grad
        return (g if need_a else None), (-g * ctx.xp.trunc(a / b) if need_b else None)


@register
class Copysign(_Binary):
    """|a| with the sign of b; the gradient for b is zero, as torch's."""

    name, grad_fn_name = "copysign", "CopysignBackward0"
    forward = staticmethod(np.copysign)

    @classmethod
    def node_name(cls, node):
        return "CopysignBackward1" if _number_operand(node) else "CopysignBackward0"

    @staticmethod
    def vjp(ctx, g, a, b):
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        # torch's result / self with 0 where self is 0: the product of the two signs, which
        # needs no division (|result| = |self|)
        ga = g * (xp.sign(ctx.out) * xp.sign(a)) if need_a else None
        return ga, (xp.zeros_like(g) if need_b else None)

    vjp_reads_output = True


@register
class Logaddexp(_Binary):
    name, grad_fn_name = "logaddexp", "LogaddexpBackward0"
    forward = staticmethod(np.logaddexp)

    @staticmethod
    def vjp(ctx, g, a, b):
        # torch's grad / (1 + exp(b - a)) is sigmoid(a - b): the same value without overflow
        xp = ctx.xp
        need_a, need_b = ctx.needs_input_grad
        return (g * xp.sigmoid(a - b) if need_a else None), (
            g * xp.sigmoid(b - a) if need_b else None
        )


# ---------------------------------------------------------------------- nan_to_num, isclose


@register
class NanToNum(Op):
    """NaN, +inf and -inf replaced by numbers; torch's gradient passes only where x is finite."""

    name, grad_fn_name = "nan_to_num", "NanToNumBackward0"

    @staticmethod
    def forward(x, nan, posinf, neginf):
        return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def vjp(ctx, g, x):
        return (g * ctx.xp.isfinite(x),)


@register
class Isclose(Op):
    name, differentiable, saves = "isclose", False, False
    error = staticmethod(_broadcast_error)

    @staticmethod
    def forward(a, b, rtol, atol, equal_nan):
        return np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)


# ---------------------------------------------------------------------- activations


def _float16_in_float32(forward):
    """``forward`` run on float16 in float32, as torch's kernels do: e^x overflows float16 at
    x = 11.1, far below softplus's threshold or silu's tail."""

    def run(x, *params):
        if x.dtype == np.float16:
            return forward(x.astype(np.float32), *params).astype(np.float16)
        return forward(x, *params)

    run.__name__, run.__doc__ = forward.__name__, forward.__doc__
    return run


_EXP_LIMITS: dict = {}  # dtype -> -floor(log(max)) as a 0-d array: e^-x below it overflows


def _silu(x):
    """torch's x / (1 + e^-x), with e^-x capped below overflow as in elementwise._sigmoid: the
    capped result differs only where it is below 1e-36 in size."""
    low = _EXP_LIMITS.get(x.dtype)
    if low is None:
        low = _EXP_LIMITS[x.dtype] = np.asarray(-np.floor(np.log(np.finfo(x.dtype).max)), x.dtype)
    out = np.asarray(np.maximum(x, low))  # one buffer, the rest in place (0-d: a scalar)
    np.negative(out, out)
    np.exp(out, out)
    np.add(out, ONE, out)
    return np.divide(x, out, out)


def _silu_vjp(ctx, g, x):
    s = ctx.xp.sigmoid(x)
    return (g * s * (ONE + x * (ONE - s)),)


_unary("silu", "SiluBackward0", _float16_in_float32(_silu), _silu_vjp)


@register
class Softplus(Op):
    """log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (torch's)."""

    name, grad_fn_name, floating = "softplus", "SoftplusBackward0", True

    @staticmethod
    @_float16_in_float32
    def forward(x, beta, threshold):
        beta, threshold = x.dtype.type(beta), x.dtype.type(threshold)
        scaled = x * beta
        linear = scaled > threshold
        with np.errstate(over="ignore"):  # only where the linear branch is taken
            curve = np.log1p(np.exp(scaled)) / beta
        return np.where(linear, x, curve)

    @staticmethod
    def vjp(ctx, g, x):
        # torch's z / (z + 1) with z = e^(beta x) is sigmoid(beta x), which cannot overflow
        xp = ctx.xp
        beta, threshold = ctx.params
        scaled = x * beta
        return (xp.where(scaled > threshold, g, g * xp.sigmoid(scaled)),)


@register
class Elu(Op):
    """scale x for x > 0, else scale alpha (e^(input_scale x) - 1): elu, selu (and celu)."""

    name, grad_fn_name, floating = "elu", "EluBackward0", True

    @staticmethod
    def forward(x, alpha, scale, input_scale):
        out = np.asarray(np.minimum(x, 0))  # one buffer, the rest in place (0-d: a scalar)
        np.multiply(out, input_scale, out)
        np.expm1(out, out)
        np.multiply(out, alpha * scale, out)
        np.copyto(out, x * scale if scale != 1 else x, where=x > 0)
        return out

    @staticmethod
    def vjp(ctx, g, x):
        return (_elu_backward(ctx.xp, g, x, *ctx.params),)


def _elu_backward(xp, g, x, alpha, scale, input_scale):
    """torch's elu_backward: the negative branch at x = 0 too."""
    curve = xp.exp(xp.where(x > 0, 0.0, x) * input_scale) * (input_scale * alpha * scale)
    return g * xp.where(x > 0, scale, curve)


@register
class Celu(Elu):
    """elu with scale 1 and input_scale 1 / alpha: torch records it as CeluBackward0."""

    name, grad_fn_name = "celu", "CeluBackward0"

    @staticmethod
    def vjp(ctx, g, x):
        # torch's derivative is elu_backward with input_scale 1.0 / alpha.toFloat(): alpha
        # rounded to float32 first, even for a float64 tensor
        alpha, scale, _ = ctx.params
        return (_elu_backward(ctx.xp, g, x, alpha, scale, 1.0 / float(np.float32(alpha))),)


@register
class Hardtanh(Op):
    """x clamped to [min_val, max_val]; unlike clamp, no gradient at the bounds (torch's)."""

    name, grad_fn_name = "hardtanh", "HardtanhBackward0"
    vjp_reads_inputs, vjp_reads_output = False, True

    @staticmethod
    def forward(x, min_val, max_val):
        return np.minimum(np.maximum(x, min_val), max_val)

    @staticmethod
    def vjp(ctx, g, x):
        # strictly inside the bounds: the output is there exactly when the input is
        min_val, max_val = ctx.params
        out = ctx.out
        return (ctx.xp.where((out > min_val) & (out < max_val), g, 0.0),)


def _mish(x):
    # torch's x tanh(log1p(e^x)); softplus's linear branch above 20, where tanh is 1 anyway,
    # keeps e^x from overflowing
    return x * np.tanh(Softplus.forward(x, 1.0, 20.0))


def _mish_vjp(ctx, g, x):
    xp = ctx.xp
    t = xp.tanh(xp.softplus(x))
    return (g * (t + x * xp.sigmoid(x) * (ONE - t * t)),)


_unary("mish", "MishBackward0", _mish, _mish_vjp)

