"""Convolution, pooling and padding against torch 2.13: results, gradients, errors, layers.

The oracle is torch on the same inputs, float32 and float64, plus float64 gradcheck; the
primitives' rows in the op table (tests/op_rows_conv.py) add NumPy references, finite
differences and higher orders.
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.nn.functional as F
from graphgrad.autograd import gradcheck

TF = torch.nn.functional
# torch warns that its own 'same' padding of an even kernel may copy the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
TOL = {"float32": (2e-5, 2e-5), "float64": (1e-12, 1e-12)}


def _pair(shapes, dtype, seed=0, low=-1.0, high=1.0, integers=False):
    """The same random inputs (None stays None) as graphgrad and torch leaves."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for shape in shapes:
        if shape is None:
            ours.append(None)
            theirs.append(None)
            continue
        values = rng.integers(-3, 4, shape) if integers else rng.uniform(low, high, shape)
        values = values.astype(dtype)
        ours.append(gg.tensor(values, requires_grad=True))
        theirs.append(torch.tensor(values, requires_grad=True))
    return ours, theirs


def _compare(ours_fn, theirs_fn, shapes, dtype, **kw):
    """Forward and every input's gradient (for a random weighting of the output) vs torch."""
    ours, theirs = _pair(shapes, dtype, **kw)
    out, expected = ours_fn(*ours), theirs_fn(*theirs)
    rtol, atol = TOL[dtype]
    assert out.dtype.name == dtype
    assert tuple(out.shape) == tuple(expected.shape)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol, atol)
    weights = np.random.default_rng(9).uniform(0.5, 1.5, tuple(out.shape)).astype(dtype)
    (out * gg.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for mine, ref in zip(ours, theirs):
        if ref is None:
            continue
        assert mine.grad.dtype.name == dtype
        np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(), rtol * 4, atol * 4)
    return out


DTYPES = ["float32", "float64"]

# (input, weight, bias, keyword arguments)
CONV2D = [
    ((2, 3, 7, 8), (4, 3, 3, 3), (4,), {}),
    ((2, 3, 7, 8), (4, 3, 1, 1), (4,), {}),  # 1x1
    ((1, 2, 9, 7), (3, 2, 2, 3), None, {"stride": (2, 1), "padding": (1, 0)}),  # non-square
    ((2, 4, 8, 8), (6, 2, 3, 3), (6,), {"groups": 2, "padding": 1}),
    ((2, 4, 8, 8), (4, 1, 3, 3), (4,), {"groups": 4, "stride": 2}),  # depthwise
    ((1, 2, 11, 10), (2, 2, 3, 2), (2,), {"dilation": (2, 3), "padding": 2}),
    ((2, 3, 8, 9), (2, 3, 4, 4), (2,), {"stride": 3, "padding": 2, "dilation": 1}),
    ((1, 2, 6, 7), (3, 2, 4, 3), (3,), {"padding": "same"}),  # even kernel: asymmetric
    ((1, 2, 6, 7), (3, 2, 2, 4), None, {"padding": "same", "dilation": (1, 3)}),
    ((1, 2, 6, 7), (3, 2, 3, 3), (3,), {"padding": "valid"}),
    ((3, 7, 7), (2, 3, 3, 3), (2,), {"stride": 2}),  # unbatched
    ((2, 6, 5, 5), (6, 2, 5, 5), (6,), {"groups": 3, "padding": 2}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,w,b,kw", CONV2D)
def test_conv2d_matches_torch(x, w, b, kw, dtype):
    _compare(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), [x, w, b], dtype)


def test_convolutions_in_threads_and_in_turn_keep_their_own_results():
    """The im2col and col2im scratch buffers are per thread and never returned: convolutions
    of other sizes run in other threads, or after, leave each result as torch's."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    cases = [(rng.standard_normal((n, c, s, s)), rng.standard_normal((o, c, 3, 3)))
             for n, c, s, o in [(4, 3, 9, 5), (2, 6, 12, 4), (3, 2, 7, 8), (5, 4, 10, 3)] * 4]

    def ours(case):
        x, w = (gg.tensor(a, requires_grad=True) for a in case)
        out = F.conv2d(x, w, padding=1)
        out.sum().backward()
        return out.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    def theirs(case):
        x, w = (torch.tensor(a, requires_grad=True) for a in case)
        out = TF.conv2d(x, w, padding=1)
        out.sum().backward()
        return out.detach().numpy(), x.grad.numpy(), w.grad.numpy()

    in_turn = [ours(case) for case in cases]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(ours, cases))
    for case, first, second in zip(cases, in_turn, threaded):
        for mine, again, ref in zip(first, second, theirs(case)):
            np.testing.assert_allclose(mine, ref, 1e-12, 1e-12)
            np.testing.assert_array_equal(again, mine)


CONV1D = [
    ((2, 3, 10), (4, 3, 3), (4,), {}),
    ((2, 4, 11), (4, 2, 2), None, {"groups": 2, "stride": 2, "padding": 1, "dilation": 2}),
    ((3, 9), (2, 3, 4), (2,), {"padding": "same"}),
    ((1, 2, 5), (3, 2, 1), (3,), {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,w,b,kw", CONV1D)
def test_conv1d_matches_torch(x, w, b, kw, dtype):
    _compare(lambda *a: F.conv1d(*a, **kw), lambda *a: TF.conv1d(*a, **kw), [x, w, b], dtype)


CONV_TRANSPOSE2D = [
    ((2, 3, 4, 5), (3, 2, 3, 3), (2,), {}),
    ((1, 4, 3, 3), (4, 3, 3, 2), (3,), {"stride": 2, "padding": 1, "output_padding": 1}),
    ((2, 4, 4, 3), (4, 1, 3, 3), (2,), {"groups": 2, "stride": (2, 3), "padding": (0, 1)}),
    ((1, 2, 4, 4), (2, 3, 2, 2), None, {"dilation": 2, "stride": 1, "output_padding": 1}),
    ((1, 2, 3, 3), (2, 2, 1, 1), (2,), {"stride": 3, "output_padding": 2}),
    ((3, 4, 4), (3, 2, 3, 3), (2,), {"stride": 2, "padding": 2}),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,w,b,kw", CONV_TRANSPOSE2D)
def test_conv_transpose2d_matches_torch(x, w, b, kw, dtype):
    _compare(lambda *a: F.conv_transpose2d(*a, **kw), lambda *a: TF.conv_transpose2d(*a, **kw),
             [x, w, b], dtype)  # fmt: skip


def test_conv_transpose1d_matches_torch():
    kw = {"stride": 2, "padding": 1, "output_padding": 1}
    _compare(lambda *a: F.conv_transpose1d(*a, **kw), lambda *a: TF.conv_transpose1d(*a, **kw),
             [(2, 3, 5), (3, 2, 3), (2,)], "float64")  # fmt: skip


MAX_POOL2D = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((1, 2, 7, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 9), {"kernel_size": (2, 3), "stride": (1, 2), "ceil_mode": True}),
    ((1, 2, 9, 9), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1}),
    ((1, 1, 6, 6), {"kernel_size": 3, "stride": 1}),  # overlapping windows
    ((2, 5, 5), {"kernel_size": 2, "ceil_mode": True, "padding": 1}),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,kw", MAX_POOL2D)
@pytest.mark.parametrize("integers", [False, True], ids=["distinct", "ties"])
def test_max_pool2d_matches_torch_with_indices(x, kw, dtype, integers):
    # Small integers make ties: the gradient must go to torch's (first) index.
    kw = dict(kw, return_indices=True)
    out = _compare(lambda a: F.max_pool2d(a, **kw)[0], lambda a: TF.max_pool2d(a, **kw)[0], [x],
                   dtype, integers=integers)  # fmt: skip
    (values,) = _pair([x], dtype, integers=integers)[0]
    _, indices = F.max_pool2d(values, **kw)
    _, expected = TF.max_pool2d(torch.tensor(values.detach().numpy()), **kw)
    assert indices.dtype == gg.int64 and not indices.requires_grad
    np.testing.assert_array_equal(indices.numpy(), expected.numpy())
    if len(x) == 4:  # torch names an unbatched result's node otherwise
        assert out.grad_fn.name() == "MaxPool2DWithIndicesBackward0"


def test_max_pool_takes_the_last_nan_and_places_all_inf_windows_as_torch():
    row = [math.nan, 1.0, math.nan, 0.0, -math.inf, -math.inf, 2.0, 2.0]
    x = np.array(row, np.float32).reshape(1, 1, 2, 4)
    ours = F.max_pool2d(gg.tensor(x), 2, padding=1, return_indices=True)
    theirs = TF.max_pool2d(torch.tensor(x), 2, padding=1, return_indices=True)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    x = np.full((1, 1, 3, 3), -np.inf)
    ours = F.max_pool2d(gg.tensor(x), 2, stride=2, padding=1, return_indices=True)[1]
    theirs = TF.max_pool2d(torch.tensor(x), 2, stride=2, padding=1, return_indices=True)[1]
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # dilation 2 over padding 1 of a width-1 input: every window misses the input
    x = np.arange(7.0).reshape(1, 1, 7, 1)
    kw = {"kernel_size": (4, 2), "stride": 1, "padding": 1, "dilation": (1, 2)}
    np.testing.assert_array_equal(F.max_pool2d(gg.tensor(x), **kw).numpy(),
                                  TF.max_pool2d(torch.tensor(x), **kw).numpy())  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,kw", [((2, 3, 9), {"kernel_size": 2}),
                                  ((2, 11), {"kernel_size": 3, "stride": 2, "padding": 1,
                                             "dilation": 2, "ceil_mode": True})])  # fmt: skip
def test_max_pool1d_matches_torch(x, kw, dtype):
    _compare(lambda a: F.max_pool1d(a, **kw), lambda a: TF.max_pool1d(a, **kw), [x], dtype)


AVG_POOL2D = [
    ((2, 3, 8, 8), {"kernel_size": 2}),
    ((1, 2, 7, 9), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 7, 9), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 2, 7, 8), {"kernel_size": (3, 2), "stride": 2, "padding": 1, "ceil_mode": True}),
    ((1, 2, 7, 8), {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                    "count_include_pad": False}),  # fmt: skip
    ((1, 2, 6, 6), {"kernel_size": 3, "stride": 1, "divisor_override": 5}),
    ((2, 5, 5), {"kernel_size": 2}),  # unbatched
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,kw", AVG_POOL2D)
def test_avg_pool2d_matches_torch(x, kw, dtype):
    _compare(lambda a: F.avg_pool2d(a, **kw), lambda a: TF.avg_pool2d(a, **kw), [x], dtype)


def test_avg_pool2d_of_integers_truncates_as_torch():
    x = np.arange(-12, 13).reshape(1, 1, 5, 5)
    ours = F.avg_pool2d(gg.tensor(x), 2, padding=1, count_include_pad=False)
    theirs = TF.avg_pool2d(torch.tensor(x), 2, padding=1, count_include_pad=False)
    assert ours.dtype == gg.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_avg_pool1d_matches_torch():
    kw = {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}
    _compare(lambda a: F.avg_pool1d(a, **kw), lambda a: TF.avg_pool1d(a, **kw), [(2, 3, 8)],
             "float64")  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,size", [((2, 3, 8, 8), 4), ((1, 2, 7, 10), (3, 4)),
                                    ((1, 2, 5, 7), (None, 3)), ((2, 5, 6), 1),
                                    ((1, 1, 3, 5), (5, 7))])  # fmt: skip
def test_adaptive_avg_pool2d_matches_torch(x, size, dtype):
    _compare(lambda a: F.adaptive_avg_pool2d(a, size), lambda a: TF.adaptive_avg_pool2d(a, size),
             [x], dtype)  # fmt: skip


PADS = [
    ((2, 3), (1, 2), "constant", None),
    ((2, 3, 4), (1, 0, 2, 1), "constant", 1.5),
    ((2, 3, 4), (-1, 2, 0, -1), "constant", None),  # negative: a crop
    ((2, 3, 4), (2, 1, 1, 2, 1, 0), "constant", 0.0),
    ((1, 2, 5), (2, 3), "reflect", None),
    ((1, 2, 4, 5), (1, 2, 3, 1), "reflect", None),
    ((2, 4, 5), (2, 2, 1, 3), "replicate", None),
    ((1, 2, 4, 5), (2, 4, 1, 0), "circular", None),
    ((1, 1, 3, 3, 3), (1, 1, 2, 0, 1, 2), "replicate", None),
    ((1, 2, 4, 5), (2, -1, -1, 1), "circular", None),  # wraps around what the crop leaves
    ((1, 2, 5), (-2, 1), "reflect", None),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x,amounts,mode,value", PADS)
def test_pad_matches_torch(x, amounts, mode, value, dtype):
    _compare(lambda a: F.pad(a, amounts, mode, value), lambda a: TF.pad(a, amounts, mode, value),
             [x], dtype)  # fmt: skip


@pytest.mark.parametrize("name,call,shapes", [
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
     [(1, 4, 5, 5), (2, 2, 3, 3), (2,)]),
    ("conv1d", lambda x, w, b: F.conv1d(x, w, b, dilation=2, padding="same"),
     [(2, 2, 6), (3, 2, 2), (3,)]),
    ("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, output_padding=1),
     [(1, 2, 3, 3), (2, 2, 3, 2), (2,)]),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, stride=2, padding=1), [(1, 2, 5, 6)]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, True, False), [(1, 2, 5, 6)]),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 4)), [(1, 2, 5, 6)]),
    ("pad", lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), [(1, 2, 4, 4)]),
])  # fmt: skip
def test_gradcheck_in_float64(name, call, shapes):
    inputs = _pair(shapes, "float64")[0]
    assert gradcheck(call, tuple(inputs))


def test_second_order_of_a_strided_grouped_conv_matches_torch():
    def second(lib, fn, x, w):
        out = fn(x, w, stride=2, padding=1, dilation=2, groups=2)
        (gx, gw) = lib.autograd.grad((out * out).sum(), (x, w), create_graph=True)
        total = (gx * gx).sum() + (gw * gw * gw).sum()
        return lib.autograd.grad(total, (x, w))

    ours, theirs = _pair([(2, 4, 7, 6), (4, 2, 3, 2)], "float64")
    for mine, ref in zip(second(gg, F.conv2d, *ours), second(torch, TF.conv2d, *theirs)):
        np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-10, atol=1e-10)


ERRORS = [
    (lambda L: L.nn.functional.conv2d(L.ones(2, 4, 32, 32), L.ones(6, 3, 5, 5))),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 3), L.ones(6, 3, 5, 5))),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 3, 4, 4), L.ones(6, 3, 5, 5))),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 4, 8, 8), L.ones(3, 2, 3, 3), groups=2)),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 3, 8, 8), L.ones(6, 3, 5, 5), L.ones(5))),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 3, 8, 8, dtype=L.float64), L.ones(6, 3, 5, 5))),
    (lambda L: L.nn.functional.conv2d(L.ones(2, 3, 8, 8), L.ones(6, 3, 5, 5),
                                      L.ones(6, dtype=L.float64))),
    (lambda L: L.nn.functional.conv2d(L.ones(1, 3, 8, 8), L.ones(6, 3, 5, 5), padding="foo")),
    (lambda L: L.nn.functional.conv2d(L.ones(1, 3, 8, 8), L.ones(6, 3, 5, 5), padding="same",
                                      stride=2)),
    (lambda L: L.nn.functional.conv2d(L.ones(1, 3, 8, 8), L.ones(6, 3, 5, 5), padding=-1)),
    (lambda L: L.nn.functional.conv2d(L.ones(1, 3, 8, 8), L.ones(6, 3, 5, 5), stride=0)),
    (lambda L: L.nn.functional.conv2d(L.ones(1, 3, 8, 8), L.ones(6, 3, 5, 5), stride=(1, 2, 3))),
    (lambda L: L.nn.functional.conv_transpose2d(L.ones(1, 5, 8, 8), L.ones(4, 3, 3, 3))),
    (lambda L: L.nn.functional.conv_transpose2d(L.ones(1, 4, 8, 8), L.ones(4, 3, 3, 3), stride=2,
                                                output_padding=2)),
    (lambda L: L.nn.functional.max_pool2d(L.ones(1, 2, 5, 5), 3, padding=2)),
    (lambda L: L.nn.functional.max_pool2d(L.ones(1, 2, 2, 2), 3)),
    (lambda L: L.nn.functional.max_pool2d(L.ones(1, 2, 9, 9), 3, dilation=2, padding=2)),
    (lambda L: L.nn.functional.max_pool2d(L.ones(2, 2), 3)),
    (lambda L: L.nn.functional.avg_pool2d(L.ones(1, 2, 5, 5), 3, divisor_override=0)),
    (lambda L: L.nn.functional.pad(L.ones(1, 3, 3), (3, 3), mode="reflect")),
    (lambda L: L.nn.functional.pad(L.ones(1, 3, 3), (3,))),
    (lambda L: L.nn.functional.pad(L.ones(3, 3), (1, 1, 1, 1, 1, 1))),
    (lambda L: L.nn.functional.pad(L.ones(3, 3), (4, 4), mode="circular")),
    (lambda L: L.nn.functional.pad(L.ones(1, 3, 3), (1, 1), mode="foo")),
    (lambda L: L.nn.functional.pad(L.ones(3), (1, 1), mode="reflect")),
    (lambda L: L.nn.functional.adaptive_avg_pool2d(L.ones(2, 3), 2)),
]


@pytest.mark.parametrize("call", ERRORS)
def test_errors_are_torchs(call):
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value).splitlines()[0])):
        call(gg)


# ---------------------------------------------------------------------- layers


def _torch_twin(ours: gg.nn.Module, theirs: torch.nn.Module, x_shape, dtype="float32"):
    """Load graphgrad's state into torch's layer, and torch's into graphgrad's, comparing
    outputs and gradients both ways."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(3).uniform(-1, 1, x_shape).astype(dtype)
    out, expected = ours(gg.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), 2e-5, 2e-5)
    out.sum().backward()
    expected.sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), 1e-4, 1e-4, err_msg=name)
    torch.manual_seed(1)
    theirs.reset_parameters()  # new values, now loaded the other way
    ours.load_state_dict({k: gg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    out, expected = ours(gg.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), 2e-5, 2e-5)


LAYERS = [
    ("Conv2d(1, 6, 5)", (2, 1, 12, 12)),
    ("Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, bias=False)",
     (2, 4, 9, 9)),
    ("Conv2d(2, 4, 3, padding=2, padding_mode='reflect')", (1, 2, 6, 7)),
    ("Conv2d(2, 4, 4, padding='same', padding_mode='replicate')", (1, 2, 6, 7)),
    ("Conv2d(2, 2, 3, padding=(1, 2), padding_mode='circular')", (1, 2, 5, 6)),
    ("Conv2d(2, 3, 4, padding='same')", (2, 6, 7)),
    ("Conv1d(2, 3, 3, padding='same', padding_mode='reflect')", (2, 2, 7)),
    ("Conv1d(4, 2, 2, stride=2, groups=2)", (2, 4, 9)),
    ("ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)", (2, 4, 5, 5)),
    ("ConvTranspose2d(4, 6, (2, 3), groups=2, dilation=2, bias=False)", (1, 4, 3, 4)),
    ("MaxPool2d(2)", (2, 3, 6, 6)),
    ("MaxPool2d(3, 2, 1, ceil_mode=True)", (2, 3, 6, 7)),
    ("MaxPool1d(3, 1, 1)", (2, 3, 6)),
    ("AvgPool2d(2)", (2, 3, 6, 6)),
    ("AvgPool2d(3, 2, 1, count_include_pad=False)", (2, 3, 6, 7)),
    ("AdaptiveAvgPool2d((None, 3))", (2, 3, 6, 7)),
    ("Unflatten(1, (2, 3))", (2, 6, 4)),
]


@pytest.mark.parametrize("spec,x_shape", LAYERS)
def test_layers_print_hold_and_compute_as_torch(spec, x_shape):
    ours, theirs = eval("gg.nn." + spec), eval("torch.nn." + spec)  # noqa: S307
    assert repr(ours) == repr(theirs)
    for (name, p), (tname, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname and tuple(p.shape) == tuple(q.shape)
    x = np.random.default_rng(3).uniform(-1, 1, x_shape).astype(np.float32)
    if not list(theirs.parameters()):
        np.testing.assert_allclose(ours(gg.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(),
                                   1e-6, 1e-6)  # fmt: skip
        return
    _torch_twin(ours, theirs, x_shape)


def test_conv_default_init_is_torchs_uniform_bounds():
    gg.manual_seed(0)
    layer = gg.nn.Conv2d(8, 16, (3, 5), groups=2)
    fan_in = 4 * 3 * 5
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives the same bound
    for p in (layer.weight, layer.bias):
        values = p.detach().numpy()
        assert values.min() >= -bound and values.max() <= bound
    weights = layer.weight.detach().numpy()  # 960 draws: they fill the range
    assert weights.max() > 0.95 * bound and weights.min() < -0.95 * bound
    transposed = gg.nn.ConvTranspose2d(4, 6, 3)  # torch's fan_in: weight.size(1) * k * k
    assert np.abs(transposed.bias.detach().numpy()).max() <= 1 / math.sqrt(6 * 9)


def test_conv_layer_arguments_are_checked_as_torch():
    for spec in ["Conv2d(3, 4, 3, groups=2)", "Conv2d(4, 3, 3, groups=2)",
                 "Conv2d(2, 2, 3, padding='foo')", "Conv2d(2, 2, 3, stride=2, padding='same')",
                 "Conv2d(2, 2, 3, padding_mode='mirror')"]:  # fmt: skip
        with pytest.raises(ValueError) as theirs:
            eval("torch.nn." + spec)  # noqa: S307
        with pytest.raises(ValueError) as ours:
            eval("gg.nn." + spec)  # noqa: S307
        assert _sets_sorted(str(ours.value)) == _sets_sorted(str(theirs.value))


def _sets_sorted(message: str) -> str:
    """A message with each printed set's elements sorted: the order a set prints in depends on
    the process (torch's set literal comes from its compiled .pyc)."""
    return re.sub(r"\{([^}]*)\}", lambda m: str(sorted(m.group(1).split(", "))), message)


def test_conv_transpose2d_output_size_picks_the_output_padding():
    x = np.random.default_rng(0).uniform(-1, 1, (1, 2, 4, 4)).astype(np.float32)
    ours, theirs = gg.nn.ConvTranspose2d(2, 3, 3, stride=2), torch.nn.ConvTranspose2d(2, 3, 3, 2)
    ours.load_state_dict({k: gg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    out = ours(gg.tensor(x), output_size=[10, 10])
    expected = theirs(torch.tensor(x), output_size=[10, 10])
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), 1e-5, 1e-5)


def test_batchnorm2d_tracks_running_statistics_as_torch():
    ours, theirs = gg.nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(1.0, 2.0, (4, 3, 5, 6)).astype(np.float32)
        out, expected = ours(gg.tensor(x)), theirs(torch.tensor(x))
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), 1e-5, 1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), 1e-6, 1e-6)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(gg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), 1e-5, 1e-5)  # fmt: skip
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        ours(gg.ones(3, 5, 6))


def _lenet(nn):
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 120), nn.ReLU(), nn.Linear(120, 84),
        nn.ReLU(), nn.Linear(84, 10),
    )


def test_a_torch_lenet_state_dict_loads_and_trains_alike():
    theirs = _lenet(torch.nn)
    ours = _lenet(gg.nn)
    ours.load_state_dict({k: gg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    opt_ours = gg.optim.SGD(ours.parameters(), lr=0.05, momentum=0.9)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.uniform(0, 1, (8, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 8)
        for model, opt, lib in ((ours, opt_ours, gg), (theirs, opt_theirs, torch)):
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(lib.tensor(x)), lib.tensor(y))
            loss.backward()
            opt.step()
    for (name, p), q in zip(ours.state_dict().items(), theirs.state_dict().values()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), 1e-4, 1e-5, err_msg=name)


def test_a_compiled_cnn_step_gives_the_eager_bits():
    rng = np.random.default_rng(1)
    batches = [(gg.tensor(rng.standard_normal((4, 1, 12, 12)).astype(np.float32)),
                gg.tensor(rng.integers(0, 3, 4))) for _ in range(4)]  # fmt: skip

    def train(compiled):
        gg.manual_seed(0)
        model = gg.nn.Sequential(
            gg.nn.Conv2d(1, 4, 3, padding=1), gg.nn.ReLU(), gg.nn.MaxPool2d(2),
            gg.nn.Conv2d(4, 4, 3, groups=2, stride=2), gg.nn.AvgPool2d(2, ceil_mode=True),
            gg.nn.Flatten(), gg.nn.Linear(4, 3),
        )  # fmt: skip
        opt = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        run = gg.compile(step, fullgraph=True) if compiled else step
        losses = [run(x, y).detach().numpy().copy() for x, y in batches]
        return losses, [p.detach().numpy().copy() for p in model.parameters()], run

    eager, compiled = train(False), train(True)
    for got, want in zip(compiled[0] + compiled[1], eager[0] + eager[1]):
        np.testing.assert_array_equal(got, want)
    assert compiled[2].recordings == 2


def test_cnn_digits_example_reaches_98_percent():
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency, as digits() is

    path = Path(__file__).resolve().parent.parent / "examples" / "cnn_digits.py"
    spec = importlib.util.spec_from_file_location("cnn_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # One BLAS thread: on a busy machine OpenBLAS's threads wait for cores, and the many small
    # products of this run then take ten times longer (only their rounding can differ).
    with threadpool_limits(1, user_api="blas"):
        assert module.train(seed=0, verbose=False) >= 0.98
