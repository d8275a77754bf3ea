"""Elementwise math, activations, smooth_l1_loss and kl_div (issue 13) against torch 2.13.

The oracle is torch on the same inputs: forward values, dtypes and gradients in float32 and
float64, on broadcast, 0-d and empty shapes, with the kinks (hardtanh's bounds, elu at 0, ...)
checked point by point; composites are also gradchecked in float64. The primitives' own table
rows (NumPy, finite differences, higher order) live in tests/op_rows_math.py.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import graphgrad as gg
import graphgrad.nn.functional as F
from graphgrad.autograd import gradcheck

TOL = {"float32": (2e-6, 2e-6), "float64": (1e-12, 1e-12)}
SHAPES = [(3, 4), (), (0,), (2, 0, 3)]


def _lib_dtype(lib, dtype: str):
    return getattr(lib, dtype)


# torch's hardsigmoid backward multiplies by 1/6 rounded to float32, for float64 tensors too;
# graphgrad's 1/6 is exact: float64 gradients differ by that rounding, 3e-8
HARDSIGMOID_FLOAT64_GRAD = 3e-8


def _compare(call, arrays, dtype: str, grad: bool = True, tol=None, grad_rtol=None):
    """Run ``call(lib, *tensors)`` in graphgrad and torch on the same arrays; compare the
    result (values and dtype) and, when ``grad``, every input's gradient of a weighted sum."""
    rtol, atol = tol or TOL[dtype]
    ours = [gg.tensor(a, dtype=_lib_dtype(gg, dtype), requires_grad=grad) for a in arrays]
    theirs = [torch.tensor(a, dtype=_lib_dtype(torch, dtype), requires_grad=grad) for a in arrays]
    out, expected = call(gg, *ours), call(torch, *theirs)
    assert out.dtype.name == str(expected.dtype).removeprefix("torch.")
    assert tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol, atol)
    if not grad:
        return
    weights = np.random.default_rng(3).uniform(0.5, 1.5, tuple(out.shape)).astype(dtype)
    (out * gg.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for mine, ref in zip(ours, theirs):
        if ref.grad is None:  # an input the call detached
            assert mine.grad is None
            continue
        assert mine.grad is not None and mine.grad.dtype.name == dtype
        np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(),
                                   grad_rtol or rtol * 4, atol * 4)  # fmt: skip


def _uniform(shape, low, high, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape)


# ---------------------------------------------------------------------- elementwise math

UNARY = {  # name: (low, high) of the inputs
    "erf": (-5.0, 5.0), "asin": (-0.95, 0.95), "acos": (-0.95, 0.95), "atan": (-4.0, 4.0),
    "sinh": (-3.0, 3.0), "cosh": (-3.0, 3.0), "asinh": (-4.0, 4.0), "acosh": (1.05, 4.0),
    "atanh": (-0.95, 0.95), "log2": (0.1, 5.0), "log10": (0.1, 5.0), "exp2": (-4.0, 4.0),
    "trunc": (-3.0, 3.0), "arcsin": (-0.95, 0.95), "arccos": (-0.95, 0.95),
    "arctan": (-4.0, 4.0), "arcsinh": (-4.0, 4.0), "arccosh": (1.05, 4.0),
    "arctanh": (-0.95, 0.95), "fix": (-3.0, 3.0),
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_functions_and_methods_match_torch(name, shape, dtype):
    x = _uniform(shape, *UNARY[name])
    _compare(lambda L, t: getattr(L, name)(t), [x], dtype)
    _compare(lambda L, t: getattr(t, name)(), [x], dtype)


@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("trunc", "fix")])
def test_an_integer_tensor_gives_float32_as_in_torch(name):
    values = [1, 2] if name in ("acosh", "arccosh", "log2", "log10") else [0, -1]
    values = [0, 0] if name in ("atanh", "arctanh") else values
    ours = getattr(gg, name)(gg.tensor(values))
    theirs = getattr(torch, name)(torch.tensor(values))
    assert ours.dtype == gg.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), 1e-6)


def test_trunc_keeps_integers_and_has_a_zero_gradient():
    assert gg.trunc(gg.tensor([3, -2])).tolist() == torch.trunc(torch.tensor([3, -2])).tolist()
    assert gg.trunc(gg.tensor([3, -2])).dtype == gg.int64
    x = gg.tensor([-1.5, 0.5, 2.7], requires_grad=True)
    x.trunc().sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


def test_erf_is_float64_accurate_over_its_three_intervals():
    x = np.concatenate([np.linspace(-7, 7, 4001), [0.0, -0.0, 0.46875, 4.0, np.inf, -np.inf]])
    ours = gg.erf(gg.tensor(x)).numpy()
    expected = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(ours, expected, rtol=1e-15, atol=1e-300)  # a few ulps
    assert np.isnan(gg.erf(gg.tensor([np.nan])).item())


def test_erf_gradient_is_torchs_exact_formula():
    x = gg.tensor([-3.0, -0.2, 0.0, 1.0, 4.5], dtype=gg.float64, requires_grad=True)
    x.erf().sum().backward()
    expected = 2 / math.sqrt(math.pi) * np.exp(-(x.detach().numpy() ** 2))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-15)


BINARY = {  # name: (low, high) of input and of other
    "atan2": ((-3.0, 3.0), (-3.0, 3.0)),
    "arctan2": ((-3.0, 3.0), (-3.0, 3.0)),
    "fmod": ((-5.0, 5.0), (0.5, 2.0)),
    "copysign": ((-3.0, 3.0), (-3.0, 3.0)),
    "logaddexp": ((-30.0, 30.0), (-30.0, 30.0)),
}
BROADCAST = [((3, 1), (1, 4)), ((2, 3), ()), ((), (4,)), ((0, 3), (3,))]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shapes", BROADCAST, ids=str)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_functions_broadcast_and_match_torch(name, shapes, dtype):
    (low_a, high_a), (low_b, high_b) = BINARY[name]
    a, b = _uniform(shapes[0], low_a, high_a, 1), _uniform(shapes[1], low_b, high_b, 2)
    if name == "copysign":  # b's gradient is torch's zeros, not None: compare it too
        _compare(lambda L, x, y: L.copysign(x, y), [a, b], dtype)
        return
    _compare(lambda L, x, y: getattr(L, name)(x, y), [a, b], dtype)
    _compare(lambda L, x, y: getattr(x, name)(y), [a, b], dtype)


@pytest.mark.parametrize(
    "call",
    [
        lambda L: L.fmod(L.tensor([-7, 7, 5]), 3),
        lambda L: L.fmod(L.tensor([-7, 7, 5]), 2.5),
        lambda L: L.fmod(L.tensor([-7.5, 7.0]), L.tensor([2, -3])),
        lambda L: L.copysign(L.tensor([1, -2, 3]), -1),
        lambda L: L.copysign(L.tensor([1.0, -2.0, 0.0]), L.tensor([-0.0, 0.0, -1.0])),
        lambda L: L.atan2(L.tensor([1, -2]), L.tensor([3, 4])),
        lambda L: L.logaddexp(L.tensor([1e4, -1e4]), L.tensor([1e4, 0.0], dtype=L.float64)),
        lambda L: L.logaddexp(L.tensor([-float("inf")]), L.tensor([-float("inf")])),
    ],
)
def test_binary_dtypes_numbers_and_extremes_match_torch(call):
    ours, theirs = call(gg), call(torch)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert np.signbit(ours.numpy()).tolist() == np.signbit(theirs.numpy()).tolist()


def test_number_operands_name_torchs_scalar_backward():
    for lib in (gg, torch):
        x = lib.tensor([5.0, -5.0], requires_grad=True)
        assert lib.fmod(x, 3).grad_fn.name() == "FmodBackward0"
        assert lib.fmod(x, lib.tensor(3.0)).grad_fn.name() == "FmodBackward1"
        assert lib.copysign(x, -1).grad_fn.name() == "CopysignBackward1"
        assert lib.copysign(x, lib.tensor(-1.0)).grad_fn.name() == "CopysignBackward0"


def test_copysign_gradient_at_zero_is_torchs():
    a_values, b_values = [0.0, -0.0, 2.0, -3.0], [-1.0, 1.0, -0.0, 2.0]
    grads = []
    for lib in (gg, torch):
        a = lib.tensor(a_values, requires_grad=True)
        b = lib.tensor(b_values, requires_grad=True)
        lib.copysign(a, b).sum().backward()
        grads.append((a.grad.tolist(), b.grad.tolist()))
    assert grads[0] == grads[1]


def test_fmod_gradient_for_the_divisor_matches_torch():
    a, b = np.array([5.5, -5.5, 7.25]), np.array([2.0, 2.0, -3.0])
    _compare(lambda L, x, y: L.fmod(x, y), [a, b], "float64")


def test_nan_to_num_matches_torch_with_its_defaults_and_gradient():
    values = [np.nan, np.inf, -np.inf, 1.5, -0.0]
    for dtype in ("float32", "float64"):
        for kwargs in ({}, {"nan": 2.0, "posinf": 9.0}, {"neginf": -7.5}):
            _compare(lambda L, x, kw=kwargs: L.nan_to_num(x, **kw), [np.array(values)], dtype)
            _compare(lambda L, x, kw=kwargs: x.nan_to_num(**kw), [np.array(values)], dtype)
    ints = gg.nan_to_num(gg.tensor([1, 2]))
    assert ints.dtype == gg.int64 and ints.tolist() == [1, 2]


def test_isclose_matches_torch():
    a = [1.0, 1.0, np.inf, np.inf, np.nan, 0.0, 1e-9, 100.0]
    b = [1.0 + 1e-6, 1.1, np.inf, -np.inf, np.nan, 1e-8, 0.0, 100.001]
    for kwargs in ({}, {"equal_nan": True}, {"rtol": 0.0, "atol": 0.0}, {"rtol": 1e-4}):
        for dtype in ("float32", "float64"):
            mine, ref = getattr(gg, dtype), getattr(torch, dtype)
            ours = gg.isclose(gg.tensor(a, dtype=mine), gg.tensor(b, dtype=mine), **kwargs)
            theirs = torch.isclose(torch.tensor(a, dtype=ref), torch.tensor(b, dtype=ref), **kwargs)
            assert ours.dtype == gg.bool and ours.tolist() == theirs.tolist()
    x = gg.tensor([[1.0], [2.0]])
    assert x.isclose(gg.tensor([1.0, 2.0])).tolist() == [[True, False], [False, True]]
    assert gg.isclose(gg.tensor([1, 2]), gg.tensor(2)).tolist() == [False, True]


@pytest.mark.parametrize(
    "call, kind, message",
    [
        (lambda L: L.isclose(L.tensor([1]), L.tensor([1.0])), RuntimeError, "did not match"),
        (lambda L: L.isclose(L.tensor([1.0]), L.tensor([1.0]), rtol=-1), RuntimeError, "rtol"),
        (lambda L: L.isclose(L.tensor([1.0]), 1.0), TypeError, "other"),
        (lambda L: L.logaddexp(L.tensor([1]), L.tensor([2])), NotImplementedError, "logaddexp"),
        (lambda L: L.atan2(L.tensor([1.0]), 2.0), TypeError, "other"),
        (lambda L: L.asin([0.5]), TypeError, "input"),
        (lambda L: L.fmod(2.0, L.tensor([1.0])), TypeError, "input"),
        (lambda L: L.copysign(2.0, L.tensor([1.0])), TypeError, "input"),
        (lambda L: L.atan2(L.ones(2), L.ones(3)), RuntimeError, r"\(2,\), \(3,\)|size"),
    ],
)
def test_bad_arguments_raise_what_torch_raises(call, kind, message):
    with pytest.raises(kind):
        call(torch)
    with pytest.raises(kind, match=message):
        call(gg)


def test_out_arguments_as_torch():
    for lib in (gg, torch):
        out = lib.empty(3)
        result = lib.asin(lib.tensor([0.0, 0.5, 1.0]), out=out)
        assert result is out
        np.testing.assert_allclose(out.numpy(), np.arcsin([0.0, 0.5, 1.0]), rtol=1e-6)
        lib.atan2(lib.tensor([1.0, 0.0, -1.0]), lib.tensor([1.0, 1.0, 1.0]), out=out)
        np.testing.assert_allclose(out.numpy(), np.arctan2([1, 0, -1], 1), rtol=1e-6)
    with pytest.raises(TypeError):
        gg.isclose(gg.ones(1), gg.ones(1), out=gg.empty(1))


# ---------------------------------------------------------------------- activations

ACTIVATIONS = {  # name: (call, low, high)
    "silu": (lambda F_, x: F_.silu(x), -8.0, 8.0),
    "softplus": (lambda F_, x: F_.softplus(x), -30.0, 30.0),
    "softplus-beta": (lambda F_, x: F_.softplus(x, beta=2.5, threshold=4.0), -4.0, 4.0),
    "elu": (lambda F_, x: F_.elu(x), -5.0, 5.0),
    "elu-alpha": (lambda F_, x: F_.elu(x, alpha=0.3), -5.0, 5.0),
    "selu": (lambda F_, x: F_.selu(x), -5.0, 5.0),
    "celu": (lambda F_, x: F_.celu(x, alpha=2.0), -5.0, 5.0),
    "relu6": (lambda F_, x: F_.relu6(x), -3.0, 9.0),
    "mish": (lambda F_, x: F_.mish(x), -10.0, 10.0),
    "softsign": (lambda F_, x: F_.softsign(x), -5.0, 5.0),
    "hardtanh": (lambda F_, x: F_.hardtanh(x), -2.0, 2.0),
    "hardtanh-bounds": (lambda F_, x: F_.hardtanh(x, min_val=-0.5, max_val=1.5), -2.0, 2.0),
    "hardsigmoid": (lambda F_, x: F_.hardsigmoid(x), -5.0, 5.0),
    "hardswish": (lambda F_, x: F_.hardswish(x), -5.0, 5.0),
    "logsigmoid": (lambda F_, x: F_.logsigmoid(x), -40.0, 40.0),
    "softmin": (lambda F_, x: F_.softmin(x, dim=-1), -3.0, 3.0),
    # torch refuses inplace on a leaf that requires grad: these run on a non-leaf
    "silu-inplace": (lambda F_, x: F_.silu(x * 1.0, inplace=True), -3.0, 3.0),
    "elu-inplace": (lambda F_, x: F_.elu(x * 1.0, 0.5, True), -3.0, 3.0),
    "hardtanh-inplace": (lambda F_, x: F_.hardtanh(x * 1.0, -0.5, 0.5, True), -3.0, 3.0),
}


def _grad_rtol(name: str, dtype: str):
    return HARDSIGMOID_FLOAT64_GRAD if name == "hardsigmoid" and dtype == "float64" else None


def _functional(lib):
    return F if lib is gg else TF


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 5), (), (0, 3)], ids=str)
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_match_torch(name, shape, dtype):
    call, low, high = ACTIVATIONS[name]
    x = _uniform(shape, low, high)
    if name == "softmin" and not shape:
        return _compare(lambda L, t: call(_functional(L), t.reshape(1)), [x], dtype)
    _compare(lambda L, t: call(_functional(L), t), [x], dtype, grad_rtol=_grad_rtol(name, dtype))


KINKS = {  # name: (call, points where torch picks one side's gradient)
    "hardtanh": (lambda F_, x: F_.hardtanh(x), [-1.0, 1.0, -2.0, 0.0, 2.0]),
    "hardtanh-bounds": (lambda F_, x: F_.hardtanh(x, -0.5, 1.5), [-0.5, 1.5, 0.0]),
    "relu6": (lambda F_, x: F_.relu6(x), [0.0, 6.0, -1.0, 3.0, 7.0]),
    "elu": (lambda F_, x: F_.elu(x, alpha=0.5), [0.0, -0.0, -1.0, 1.0]),
    "celu": (lambda F_, x: F_.celu(x, alpha=2.0), [0.0, -1.0]),
    "selu": (lambda F_, x: F_.selu(x), [0.0, -1.0]),
    "hardswish": (lambda F_, x: F_.hardswish(x), [-3.0, 3.0, 0.0, -4.0, 4.0]),
    "hardsigmoid": (lambda F_, x: F_.hardsigmoid(x), [-3.0, 3.0, 0.0]),
    "softplus": (lambda F_, x: F_.softplus(x, beta=2.0, threshold=3.0), [1.5, 0.0, 20.0, -20.0]),
    "logsigmoid": (lambda F_, x: F_.logsigmoid(x), [0.0, -100.0, 100.0]),
    "silu": (lambda F_, x: F_.silu(x), [0.0, -100.0, 100.0, -1000.0]),
    "mish": (lambda F_, x: F_.mish(x), [0.0, -100.0, 100.0, 1000.0]),
    "softsign": (lambda F_, x: F_.softsign(x), [0.0]),
    "prelu": (lambda F_, x: F_.prelu(x, x.detach()[:1] * 0 + 0.25), [0.0, -1.0, 1.0]),
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(KINKS))
def test_gradients_at_kinks_are_torchs(name, dtype):
    call, points = KINKS[name]
    _compare(lambda L, t: call(_functional(L), t), [np.array(points)], dtype,
             grad_rtol=_grad_rtol(name, dtype),
             tol=(1e-6, 1e-7) if dtype == "float32" else None)  # fmt: skip


def test_prelu_matches_torch_per_channel_and_shared():
    rng = np.random.default_rng(5)
    for x_shape, w_shape in [((2, 3, 4, 5), (3,)), ((2, 3), (3,)), ((2, 3, 4), (1,)), ((4,), (1,)),
                             ((), (1,)), ((2, 3), ()), ((0, 3), (3,))]:  # fmt: skip
        x, w = rng.uniform(-2, 2, x_shape), rng.uniform(-1, 1, w_shape)
        for dtype in ("float32", "float64"):
            _compare(lambda L, a, b: _functional(L).prelu(a, b), [x, w], dtype)


@pytest.mark.parametrize(
    "call, kind",
    [
        (lambda L: _functional(L).prelu(L.ones(2, 4), L.ones(3)), RuntimeError),
        (lambda L: _functional(L).prelu(L.ones(2, 4), L.ones(1, 4)), RuntimeError),
        (lambda L: _functional(L).prelu(L.ones(4), L.ones(4)), RuntimeError),
        (lambda L: _functional(L).prelu(L.ones(2, 3), L.ones(3, dtype=L.float64)), RuntimeError),
        (lambda L: _functional(L).hardtanh(L.ones(2), 2.0, 1.0), ValueError),
        (lambda L: _functional(L).celu(L.ones(2), 0.0), RuntimeError),
        (lambda L: _functional(L).silu(L.tensor([1, 2])), NotImplementedError),
        (lambda L: _functional(L).elu(L.tensor([1, 2])), NotImplementedError),
        (lambda L: _functional(L).normalize(L.ones(2, 3), dim=2), IndexError),
        (lambda L: _functional(L).dropout2d(L.ones(2, 3, 4, 5), 1.5), ValueError),
        (lambda L: _functional(L).dropout2d(L.ones(5), 0.5), RuntimeError),
        (lambda L: _functional(L).smooth_l1_loss(L.ones(2), L.ones(2), beta=-1.0), RuntimeError),
        (lambda L: _functional(L).smooth_l1_loss(L.ones(2), L.ones(2), reduction="bogus"),
         ValueError),
        (lambda L: _functional(L).kl_div(L.ones(2), L.ones(2), reduction="bogus"), ValueError),
    ],
)
def test_bad_activation_and_loss_arguments_raise_what_torch_raises(call, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(kind):
            call(torch)
        with pytest.raises(kind) as ours:
            call(gg)
    assert str(ours.value)


def test_integer_hardtanh_and_relu6_stay_integers_as_torch():
    for call in (lambda L: _functional(L).hardtanh(L.tensor([-4, 1, 5]), -0.5, 2.5),
                 lambda L: _functional(L).relu6(L.tensor([-4, 1, 9]))):  # fmt: skip
        ours, theirs = call(gg), call(torch)
        assert ours.dtype == gg.int64 and ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0])
@pytest.mark.parametrize("dim", [1, 0, -1])
def test_normalize_matches_torch(p, dim):
    x = _uniform((3, 4), -2.0, 2.0)
    x[1] = 0.0  # a zero row: torch's gradient is 1 / eps there, not NaN
    grad = p not in (0.0,)
    for dtype in ("float32", "float64"):
        _compare(lambda L, t: _functional(L).normalize(t, p=p, dim=dim), [x], dtype, grad=grad,
                 tol=(1e-5, 1e-5) if dtype == "float32" else (1e-11, 1e-11))  # fmt: skip
    _compare(lambda L, t: _functional(L).normalize(t, dim=0, eps=0.5), [x[0]], "float64")


def test_normalize_out_and_a_zero_vector():
    out = gg.empty(2)
    assert F.normalize(gg.tensor([3.0, 4.0]), dim=0, out=out) is out
    np.testing.assert_allclose(out.numpy(), [0.6, 0.8], rtol=1e-6)
    _compare(lambda L, t: _functional(L).normalize(t, dim=0), [np.zeros(3)], "float64")


def test_softmin_without_dim_warns_as_torch():
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        ours = F.softmin(gg.tensor([[1.0, 2.0], [3.0, 5.0]]))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        theirs = TF.softmin(torch.tensor([[1.0, 2.0], [3.0, 5.0]]))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    _compare(lambda L, t: _functional(L).softmin(t, dim=0, dtype=L.float64), [np.ones((2, 3))],
             "float32", tol=(1e-12, 1e-12))  # fmt: skip


TARGET = gg.tensor(_uniform((4, 3), -2.0, 2.0, 8), dtype=gg.float64)
COMPOSITES = {
    "softsign": lambda x: F.softsign(x),
    "hardsigmoid": lambda x: F.hardsigmoid(x),
    "hardswish": lambda x: F.hardswish(x),
    "logsigmoid": lambda x: F.logsigmoid(x),
    "softmin": lambda x: F.softmin(x, dim=1),
    "normalize": lambda x: F.normalize(x, dim=1),
    "normalize-p3": lambda x: F.normalize(x, p=3.0, dim=0),
    "prelu": lambda x: F.prelu(x, gg.tensor([0.1, -0.3, 0.7], dtype=gg.float64)),
    "smooth_l1_loss": lambda x: F.smooth_l1_loss(x, TARGET, beta=0.5),
    "kl_div": lambda x: F.kl_div(x, TARGET.softmax(1), reduction="batchmean"),
    "kl_div-log_target": lambda x: F.kl_div(x, TARGET.log_softmax(1), reduction="sum",
                                            log_target=True),
}  # fmt: skip


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_composites_pass_gradcheck_in_float64(name):
    x = gg.tensor(_uniform((4, 3), -2.5, 2.5, 7), dtype=gg.float64, requires_grad=True)
    assert gradcheck(COMPOSITES[name], (x,))


def test_prelu_weight_gets_torchs_gradient():
    x = gg.tensor(_uniform((4, 3, 2), -2, 2, 9), dtype=gg.float64, requires_grad=True)
    w = gg.tensor([0.1, -0.3, 0.7], dtype=gg.float64, requires_grad=True)
    assert gradcheck(lambda a, b: F.prelu(a, b), (x, w))


# ---------------------------------------------------------------------- dropout2d


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    gg.manual_seed(0)
    x = gg.ones(8, 16, 3, 3, requires_grad=True)
    y = F.dropout2d(x, p=0.25)
    values = y.detach().numpy()
    per_channel = values.reshape(8, 16, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # one decision per channel
    assert set(np.unique(values)) <= {0.0, np.float32(1 / 0.75)}
    kept = (per_channel[..., 0] != 0).mean()
    assert 0.6 < kept < 0.9
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)  # the gradient is the same mask


def test_dropout2d_follows_graphgraphs_generator():
    x = gg.ones(4, 6, 2, 2)
    gg.manual_seed(3)
    first = F.dropout2d(x, 0.5).numpy()
    gg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout2d(x, 0.5).numpy(), first)


def test_dropout2d_warns_and_reads_inputs_as_torch_2_13():
    cases = [((2, 3, 4), 0.5, True), ((2, 3), 0.5, True), ((2, 3, 4, 5, 6), 0.5, True),
             ((5,), 0.5, False), ((2, 3, 4, 5), 0.5, True)]  # fmt: skip
    for shape, p, training in cases:
        caught = []
        for lib in (gg, torch):
            with warnings.catch_warnings(record=True) as record:
                warnings.simplefilter("always")
                out = _functional(lib).dropout2d(lib.ones(*shape), p, training)
            caught.append([str(w.message) for w in record])
            assert tuple(out.shape) == shape
        assert caught[0] == caught[1], shape
    gg.manual_seed(1)
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        values = F.dropout2d(gg.ones(4, 8, 10), 0.5).numpy()  # one decision per (N, C)
    assert np.all(values.min(-1) == values.max(-1))


def test_dropout2d_edge_probabilities_and_eval():
    x = gg.tensor(_uniform((2, 3, 2, 2), -1, 1))
    assert F.dropout2d(x, 0.0) is x
    assert F.dropout2d(x, 0.7, training=False) is x
    assert F.dropout2d(x, 1.0).abs().sum().item() == 0.0
    layer = gg.nn.Dropout2d(0.4).eval()
    assert layer(x) is x


# ---------------------------------------------------------------------- losses


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("beta", [1.0, 0.3, 0.0, 2.5])
def test_smooth_l1_loss_matches_torch(beta, reduction, dtype):
    a, b = _uniform((4, 5), -3, 3, 1), _uniform((4, 5), -3, 3, 2)
    _compare(lambda L, x, y: _functional(L).smooth_l1_loss(x, y, reduction=reduction, beta=beta),
             [a, b], dtype)  # fmt: skip
    _compare(lambda L, x, y: _functional(L).smooth_l1_loss(x, y, reduction=reduction, beta=beta),
             [a[0, 0], b[0, 0]], dtype)  # fmt: skip


def test_smooth_l1_loss_at_its_kinks_and_with_broadcast_targets():
    diffs = np.array([0.0, 1.0, -1.0, 0.5, -2.0])
    _compare(lambda L, x, y: _functional(L).smooth_l1_loss(x, y, reduction="sum"),
             [diffs, np.zeros(5)], "float64")  # fmt: skip
    with pytest.warns(UserWarning, match="target size"):
        ours = F.smooth_l1_loss(gg.ones(3, 1), gg.zeros(3))
    with pytest.warns(UserWarning, match="target size"):
        theirs = TF.smooth_l1_loss(torch.ones(3, 1), torch.zeros(3))
    assert ours.item() == pytest.approx(theirs.item())


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target, dtype):
    rng = np.random.default_rng(4)
    logits, other = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    target = np.exp(other) / np.exp(other).sum(1, keepdims=True)
    target[0, 1] = 0.0  # 0 log 0 is 0
    if log_target:
        target = np.log(np.where(target == 0, 1e-3, target))

    def call(L, x, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 'mean' warns: checked below
            return _functional(L).kl_div(x, y, reduction=reduction, log_target=log_target)

    _compare(lambda L, x, y: call(L, x, y.detach()), [log_p, target], dtype)


def test_kl_div_warnings_zero_d_and_legacy_arguments():
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(gg.zeros(2, 2), gg.ones(2, 2) / 2)
    for lib in (gg, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # batchmean of a 0-d input warns nothing
            _functional(lib).kl_div(lib.tensor(-1.0), lib.tensor(0.5), reduction="batchmean")
    ours = F.kl_div(gg.tensor(-1.0), gg.tensor(0.5), reduction="batchmean").item()
    theirs = TF.kl_div(torch.tensor(-1.0), torch.tensor(0.5), reduction="batchmean").item()
    assert ours == pytest.approx(theirs, rel=1e-6)
    with pytest.warns(UserWarning, match="size_average and reduce"):
        legacy = F.kl_div(gg.zeros(2, 2), gg.ones(2, 2) / 2, reduce=False)
    assert tuple(legacy.shape) == (2, 2)


def test_kl_div_target_gradient_is_torchs_including_nan_at_zero():
    grads = []
    for lib in (gg, torch):
        x = lib.tensor([-1.0, -0.7, -0.7], requires_grad=True)
        t = lib.tensor([0.0, 0.5, 0.5], requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _functional(lib).kl_div(x, t, reduction="sum").backward()
        grads.append((x.grad.numpy(), t.grad.numpy()))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-6)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-6)  # NaN where torch has NaN


# ---------------------------------------------------------------------- modules

MODULES = [
    ("SiLU", (), {}), ("SiLU", (), {"inplace": True}), ("ELU", (), {}),
    ("ELU", (0.5, True), {}), ("Softplus", (), {}), ("Softplus", (2, 10), {}),
    ("Mish", (), {}), ("Mish", (True,), {}), ("Hardtanh", (), {}), ("Hardtanh", (-2, 3, True), {}),
    ("PReLU", (), {}), ("PReLU", (3, 0.1), {}), ("Softmin", (), {}), ("Softmin", (1,), {}),
    ("SELU", (), {}), ("SELU", (True,), {}), ("CELU", (), {}), ("CELU", (2.0, True), {}),
    ("ReLU6", (), {}), ("ReLU6", (True,), {}), ("Softsign", (), {}), ("Hardsigmoid", (), {}),
    ("Hardsigmoid", (True,), {}), ("Hardswish", (), {}), ("Hardswish", (True,), {}),
    ("LogSigmoid", (), {}), ("Dropout2d", (), {}), ("Dropout2d", (0.2, True), {}),
    ("SmoothL1Loss", (), {}), ("SmoothL1Loss", (), {"beta": 0.5, "reduction": "sum"}),
    ("KLDivLoss", (), {}), ("KLDivLoss", (), {"reduction": "batchmean", "log_target": True}),
]  # fmt: skip


@pytest.mark.parametrize("name, args, kwargs", MODULES)
def test_modules_print_and_store_options_as_torch(name, args, kwargs):
    ours, theirs = getattr(gg.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    for option in ("alpha", "beta", "threshold", "min_val", "max_val", "inplace", "dim", "p",
                   "num_parameters", "init", "reduction", "log_target"):  # fmt: skip
        assert getattr(ours, option, None) == getattr(theirs, option, None), option


@pytest.mark.parametrize(
    "name, args", [("SiLU", ()), ("ELU", (0.4,)), ("Softplus", (1.5, 3.0)), ("Mish", ()),
                   ("Hardtanh", (-0.5, 0.5)), ("SELU", ()), ("CELU", (0.7,)), ("ReLU6", ()),
                   ("Softsign", ()), ("Hardsigmoid", ()), ("Hardswish", ()), ("LogSigmoid", ()),
                   ("Softmin", (1,))],  # fmt: skip
)
def test_activation_modules_compute_what_torch_computes(name, args):
    x = _uniform((3, 4), -4, 4, 11)
    _compare(lambda L, t: getattr(L.nn, name)(*args)(t), [x], "float64",
             grad_rtol=_grad_rtol(name.lower(), "float64"))  # fmt: skip


def test_prelu_module_has_torchs_parameter():
    ours, theirs = gg.nn.PReLU(3, init=0.1), torch.nn.PReLU(3, init=0.1)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.weight.tolist() == pytest.approx(theirs.weight.tolist())
    assert gg.nn.PReLU(dtype=gg.float64).weight.dtype == gg.float64
    x = _uniform((2, 3, 4), -2, 2, 12)
    gx = gg.tensor(x, dtype=gg.float32, requires_grad=True)
    tx = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    ours(gx).sum().backward()
    theirs(tx).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


def test_hardtanh_module_checks_and_renames_as_torch():
    with pytest.raises(AssertionError, match="must be greater than"):
        gg.nn.Hardtanh(1.0, 1.0)
    with pytest.warns(FutureWarning, match="min_value"):
        layer = gg.nn.Hardtanh(min_value=-2.0)
    assert repr(layer) == "Hardtanh(min_val=-2.0, max_val=1.0)"


def test_loss_modules_compute_what_torch_computes():
    a, b = _uniform((3, 4), -2, 2, 13), _uniform((3, 4), -2, 2, 14)
    _compare(lambda L, x, y: L.nn.SmoothL1Loss(beta=0.7)(x, y), [a, b], "float64")
    t = np.exp(b) / np.exp(b).sum(1, keepdims=True)
    _compare(lambda L, x, y: L.nn.KLDivLoss(reduction="batchmean")(x.log_softmax(1), y.detach()),
             [a, t], "float64")  # fmt: skip


# ---------------------------------------------------------------------- compile


def _model():
    return gg.nn.Sequential(
        gg.nn.Linear(6, 12), gg.nn.SiLU(), gg.nn.Linear(12, 12), gg.nn.Mish(),
        gg.nn.Linear(12, 12), gg.nn.ELU(0.5), gg.nn.Softplus(2.0, 5.0), gg.nn.PReLU(),
        gg.nn.Hardtanh(-1.5, 1.5), gg.nn.CELU(0.8), gg.nn.SELU(), gg.nn.ReLU6(),
        gg.nn.Linear(12, 4),
    )  # fmt: skip


def _train(compiled: bool, batches):
    gg.manual_seed(0)
    model = _model()
    opt = gg.optim.Adam(model.parameters(), lr=0.01)

    def step(x, y):
        opt.zero_grad()
        h = x.unsqueeze(-1).unsqueeze(-1)  # (N, 6, 1, 1) for dropout2d's channels
        h = F.dropout2d(h, 0.2).flatten(1)
        out = model(h)
        loss = F.smooth_l1_loss(out, y, beta=0.5) + 0.1 * F.kl_div(
            out.log_softmax(1), y.softmax(1), reduction="batchmean"
        ) + 0.01 * (gg.erf(out).sum() + gg.atan2(out, y).mean() + gg.logaddexp(out, y).mean())
        loss.backward()
        opt.step()
        return loss

    run = gg.compile(step, fullgraph=True) if compiled else step
    gg.manual_seed(7)  # dropout2d's draws
    losses = [run(x, y).detach().numpy().copy() for x, y in batches]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], run


def test_a_compiled_training_step_gives_the_eager_bits():
    rng = np.random.default_rng(1)
    batches = [(gg.tensor(rng.standard_normal((8, 6)).astype(np.float32)),
                gg.tensor(rng.standard_normal((8, 4)).astype(np.float32))) for _ in range(6)]
    eager_losses, eager_params, _ = _train(False, batches)
    losses, params, run = _train(True, batches)
    for got, want in zip(losses + params, eager_losses + eager_params):
        np.testing.assert_array_equal(got, want)
    assert run.recordings == 2  # recorded, checked by a second record, then replayed


@pytest.mark.parametrize("name", ["silu", "softplus", "mish", "elu", "selu", "hardtanh"])
def test_float16_activations_compute_in_float32_as_torch(name):
    x = np.linspace(-20, 20, 81)
    ours = getattr(F, name)(gg.tensor(x, dtype=gg.float16))
    theirs = getattr(TF, name)(torch.tensor(x, dtype=torch.float16))
    assert ours.dtype == gg.float16
    np.testing.assert_allclose(ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64),
                               rtol=2e-3, atol=1e-3)  # fmt: skip
