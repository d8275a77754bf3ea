"""Op-table rows: elementwise math and activations (graphgrad/ops/special.py)."""

import math

import numpy as np
from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

UNIT = (-0.9, 0.9)  # asin, acos, atanh: inside (-1, 1)


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _softplus(x, beta, threshold):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)


def _elu(x, alpha, scale=1.0, input_scale=1.0):
    return np.where(x > 0, scale * x, scale * alpha * np.expm1(np.minimum(x, 0) * input_scale))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _nan_to_num(x):
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(np.log(x), nan=0.5)


ROWS: list[OpCase] = [
    unary("erf", lambda L, x: x.erf(), _erf, low=-3.0, high=3.0),
    OpCase("erf", lambda L, x: L.erf(x), _erf, [((7,),)], low=-6.0, high=6.0),  # every interval
    unary("asin", lambda L, x: x.asin(), np.arcsin, low=UNIT[0], high=UNIT[1]),
    unary("acos", lambda L, x: L.acos(x), np.arccos, low=UNIT[0], high=UNIT[1]),
    unary("atan", lambda L, x: x.atan(), np.arctan),
    unary("sinh", lambda L, x: x.sinh(), np.sinh),
    unary("cosh", lambda L, x: L.cosh(x), np.cosh),
    unary("asinh", lambda L, x: x.asinh(), np.arcsinh),
    unary("acosh", lambda L, x: x.acosh(), np.arccosh, low=1.1, high=3.0),
    unary("atanh", lambda L, x: L.atanh(x), np.arctanh, low=UNIT[0], high=UNIT[1]),
    unary("log2", lambda L, x: x.log2(), np.log2, low=0.5),
    unary("log10", lambda L, x: L.log10(x), np.log10, low=0.5),
    unary("exp2", lambda L, x: x.exp2(), np.exp2),
    unary("trunc", lambda L, x: x.trunc(), np.trunc, distinct=True),
    binary("atan2", lambda L, a, b: L.atan2(a, b), np.arctan2),
    binary("fmod", lambda L, a, b: L.fmod(a, b), np.fmod, domains={1: POS}, distinct=True),
    binary("copysign", lambda L, a, b: L.copysign(a, b), np.copysign, distinct=True),
    binary("logaddexp", lambda L, a, b: L.logaddexp(a, b), np.logaddexp),
    unary("nan_to_num", lambda L, x: L.nan_to_num(x.log(), nan=0.5), _nan_to_num, low=-1.0),
    binary(
        "isclose",
        lambda L, a, b: L.isclose(a, (a * 1e4).round() / 1e4 + (b > 1.5).to(a.dtype) * 1e-3,
                                  atol=1e-4),
        lambda a, b: np.isclose(a, np.round(a * 1e4) / 1e4 + (b > 1.5) * 1e-3, atol=1e-4),
        grad=False,
    ),
    unary("silu", lambda L, x: L.nn.functional.silu(x), lambda x: x * _sigmoid(x), low=-6, high=6),
    unary(
        "softplus",
        lambda L, x: L.nn.functional.softplus(x, beta=2.0, threshold=1.5),
        lambda x: _softplus(x, 2.0, 1.5),
        distinct=True,
    ),
    unary(
        "elu",
        lambda L, x: L.nn.functional.elu(x, alpha=0.7),
        lambda x: _elu(x, 0.7),
        distinct=True,
    ),
    unary(
        "elu",
        lambda L, x: L.nn.functional.selu(x),
        lambda x: _elu(x, 1.6732632423543772, 1.0507009873554805),
        distinct=True,
    ),
    unary(
        "celu",
        lambda L, x: L.nn.functional.celu(x, alpha=1.5),
        lambda x: _elu(x, 1.5, 1.0, 1 / 1.5),
        distinct=True,
    ),
    unary(
        "hardtanh",
        lambda L, x: L.nn.functional.hardtanh(x, -0.5, 0.7),
        lambda x: np.clip(x, -0.5, 0.7),
        distinct=True,
    ),
    unary(
        "mish",
        lambda L, x: L.nn.functional.mish(x),
        lambda x: x * np.tanh(np.log1p(np.exp(x))),
        low=-5,
        high=5,
    ),
]
