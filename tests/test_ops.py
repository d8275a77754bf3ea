"""The op table: one row for every registered primitive, each checked against three oracles.

Per row and input shape: the forward against NumPy, the gradient against float64 central
differences, and forward and gradient against torch 2.13 on the same inputs in float32 and float64;
then second derivatives (third for some) through create_graph=True against torch in float64.
A meta-test fails when a primitive has no row, and every row proves it reaches its primitive.
"""

from __future__ import annotations

import inspect
from dataclasses import replace

import numpy as np
import op_rows_conv
import op_rows_index
import op_rows_linalg
import op_rows_math
import op_rows_rnn
import pytest
import torch
from op_case import BROADCAST, POS, OpCase, binary, unary

import graphgrad as gg
from graphgrad.ops import OPS


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _index_add_ref(v):
    out = np.zeros((4, 3), v.dtype)
    np.add.at(out, (np.array([0, 2, 0]),), v)
    return out


def _scatter_ref(x, v):
    out = x.copy()
    np.add.at(out, (np.array([[0, 1, 0]]).repeat(2, 0), np.arange(3)[None, :].repeat(2, 0)), v)
    return out


def _idx(lib, values):
    return lib.tensor(values)


CASES = [
    binary("add", lambda L, a, b: a + b, np.add),
    binary("sub", lambda L, a, b: a - b, np.subtract),
    binary("mul", lambda L, a, b: a * b, np.multiply),
    binary("div", lambda L, a, b: a / b, np.divide, domains={1: POS}),
    binary("pow", lambda L, a, b: a**b, np.power, domains={0: POS}),
    binary("maximum", lambda L, a, b: L.maximum(a, b), np.maximum, distinct=True),
    binary("minimum", lambda L, a, b: L.minimum(a, b), np.minimum, distinct=True),
    binary(
        "remainder",
        lambda L, a, b: L.remainder(a, b),
        np.remainder,
        domains={1: POS},
        distinct=True,
    ),
    unary("pow_scalar", lambda L, x: x**3, lambda x: x**3),
    OpCase(
        "where",
        lambda L, c, a, b: L.where(c > 0, a, b),
        lambda c, a, b: np.where(c > 0, a, b),
        [((2, 3), (2, 3), (3,)), ((3, 1), (1, 3), ())],
    ),
    unary("clamp", lambda L, x: x.clamp(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), distinct=True),
    unary("neg", lambda L, x: -x, np.negative),
    unary("exp", lambda L, x: x.exp(), np.exp),
    unary("log", lambda L, x: x.log(), np.log, low=0.5),
    unary("log1p", lambda L, x: x.log1p(), np.log1p, low=-0.5),
    unary("sqrt", lambda L, x: x.sqrt(), np.sqrt, low=0.5),
    unary("rsqrt", lambda L, x: x.rsqrt(), lambda x: 1 / np.sqrt(x), low=0.5),
    unary("abs", lambda L, x: x.abs(), np.abs, distinct=True),
    unary("sign", lambda L, x: x.sign(), np.sign),
    unary("sin", lambda L, x: x.sin(), np.sin),
    unary("cos", lambda L, x: x.cos(), np.cos),
    unary("tan", lambda L, x: x.tan(), np.tan, low=-1.2, high=1.2),
    unary("tanh", lambda L, x: x.tanh(), np.tanh),
    unary("sigmoid", lambda L, x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), low=-6, high=6),
    unary("relu", lambda L, x: x.relu(), lambda x: np.maximum(x, 0), distinct=True),
    unary("floor", lambda L, x: x.floor(), np.floor, distinct=True),
    unary("ceil", lambda L, x: x.ceil(), np.ceil, distinct=True),
    unary("round", lambda L, x: x.round(), np.round, distinct=True),
    OpCase(
        "matmul",
        lambda L, a, b: a @ b,
        np.matmul,
        [
            ((3, 4), (4, 2)),
            ((2, 3, 4), (4, 5)),
            ((4,), (4, 3)),
            ((3, 4), (4,)),
            ((4,), (4,)),
            ((2, 1, 3, 4), (5, 4, 2)),
        ],
    ),
    OpCase(
        "linear",
        lambda L, x, w, b: L.nn.functional.linear(x, w, b),
        lambda x, w, b: x @ w.T + b,
        [((3, 4), (5, 4), (5,)), ((2, 3, 4), (5, 4), (5,)), ((4,), (2, 4), (2,))],
    ),
    OpCase(
        "sum",
        lambda L, x: x.sum(dim=(0, -1), keepdim=True),
        lambda x: x.sum((0, -1), keepdims=True),
        [((2, 3, 4),), ((1, 5),)],
    ),
    OpCase("mean", lambda L, x: x.mean(dim=1), lambda x: x.mean(1), [((2, 3, 4),), ((1, 5),)]),
    OpCase(
        "amax",
        lambda L, x: x.amax(dim=1),
        lambda x: x.max(1),
        [((3, 4),), ((2, 3, 2),)],
        distinct=True,
    ),
    OpCase(
        "amin",
        lambda L, x: x.amin(dim=-1, keepdim=True),
        lambda x: x.min(-1, keepdims=True),
        [((3, 4),)],
        distinct=True,
    ),
    OpCase("max", lambda L, x: x.max(), np.max, [((3, 4),), ((5,),)], distinct=True),
    OpCase("min", lambda L, x: x.min(), np.min, [((3, 4),)], distinct=True),
    OpCase("prod", lambda L, x: x.prod(dim=1), lambda x: x.prod(1), [((3, 4),), ((2, 3, 2),)]),
    OpCase(
        "logsumexp",
        lambda L, x: x.logsumexp(dim=1),
        lambda x: np.log(np.exp(x).sum(1)),
        [((3, 4),), ((2, 3, 2),)],
    ),
    OpCase(
        "softmax", lambda L, x: x.softmax(dim=-1), lambda x: _softmax(x, -1), [((3, 4),), ((5,),)]
    ),
    OpCase(
        "log_softmax",
        lambda L, x: x.log_softmax(dim=0),
        lambda x: np.log(_softmax(x, 0)),
        [((3, 4),), ((5,),)],
    ),
    OpCase(
        "argmax",
        lambda L, x: x.argmax(dim=1),
        lambda x: x.argmax(1),
        [((3, 4),)],
        grad=False,
        distinct=True,
    ),
    OpCase(
        "argmin",
        lambda L, x: x.argmin(dim=0),
        lambda x: x.argmin(0),
        [((3, 4),)],
        grad=False,
        distinct=True,
    ),
    OpCase("reshape", lambda L, x: x.reshape(4, -1), lambda x: x.reshape(4, -1), [((2, 6),)]),
    OpCase("view", lambda L, x: x.view(3, 4), lambda x: x.reshape(3, 4), [((2, 6),)]),
    OpCase("flatten", lambda L, x: x.flatten(1), lambda x: x.reshape(2, -1), [((2, 3, 2),)]),
    OpCase("squeeze", lambda L, x: x.squeeze(), lambda x: x.squeeze(), [((3, 1, 2),), ((1,),)]),
    OpCase("squeeze_dim", lambda L, x: x.squeeze(1), lambda x: x.squeeze(1), [((3, 1, 2),)]),
    OpCase(
        "squeeze_dims", lambda L, x: x.squeeze((0, 2)), lambda x: x.squeeze((0, 2)), [((1, 3, 1),)]
    ),
    OpCase("unsqueeze", lambda L, x: x.unsqueeze(-1), lambda x: x[..., None], [((3, 2),), ((),)]),
    OpCase(
        "permute", lambda L, x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), [((2, 3, 4),)]
    ),
    OpCase(
        "transpose",
        lambda L, x: x.transpose(0, -1),
        lambda x: np.swapaxes(x, 0, -1),
        [((2, 3, 4),)],
    ),
    OpCase("t", lambda L, x: x.t(), lambda x: x.T, [((2, 3),)]),
    OpCase(
        "expand",
        lambda L, x: x.expand(2, 3, 4),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        [((3, 1),), ((4,),)],
    ),
    OpCase("repeat", lambda L, x: x.repeat(2, 1, 3), lambda x: np.tile(x, (2, 1, 3)), [((3, 2),)]),
    OpCase(
        "getitem", lambda L, x: x[_idx(L, [2, 0, 2]), 1:], lambda x: x[[2, 0, 2], 1:], [((3, 4),)]
    ),
    OpCase(
        "index_add",
        lambda L, x, v: x.index_put((_idx(L, [0, 2, 0]),), v, accumulate=True),
        lambda x, v: x + _index_add_ref(v),
        [((4, 3), (3, 3))],
    ),
    OpCase(
        "gather",
        lambda L, x: x.gather(1, _idx(L, [[0, 2], [1, 1], [3, 0]])),
        lambda x: np.take_along_axis(x, np.array([[0, 2], [1, 1], [3, 0]]), 1),
        [((3, 4),)],
    ),
    OpCase(
        "nll_loss",
        lambda L, x: L.nn.functional.nll_loss(x, _idx(L, [0, 2, 1, 2])),
        lambda x: -x[np.arange(4), [0, 2, 1, 2]].mean(),
        [((4, 3),)],
    ),
    OpCase(
        "nll_loss",
        lambda L, x: L.nn.functional.nll_loss(
            x, _idx(L, [0, 2, -1, 2]), weight=L.tensor([0.5, 1.0, 2.0], dtype=x.dtype),
            ignore_index=-1, reduction="sum"),
        lambda x: -(x[[0, 1, 3], [0, 2, 2]] * np.array([0.5, 2.0, 2.0])).sum(),
        [((4, 3),)],
    ),
    OpCase(
        "nll_loss",
        lambda L, x: L.nn.functional.nll_loss(
            x, _idx(L, [1, 0, 2]), weight=L.tensor([0.5, 1.0, 2.0], dtype=x.dtype),
            reduction="none"),
        lambda x: -x[np.arange(3), [1, 0, 2]] * np.array([1.0, 0.5, 2.0]),
        [((3, 3),)],
    ),
    OpCase(
        "scatter_add",
        lambda L, x, v: x.scatter_add(0, _idx(L, [[0, 1, 0], [0, 1, 0]]), v),
        _scatter_ref,
        [((2, 3), (2, 3))],
    ),
    OpCase(
        "cat",
        lambda L, a, b: L.cat([a, b * 2], dim=1),
        lambda a, b: np.concatenate([a, b * 2], 1),
        [((2, 3), (2, 1))],
    ),
    OpCase(
        "stack",
        lambda L, a, b: L.stack([a, b], dim=-1),
        lambda a, b: np.stack([a, b], -1),
        [((2, 3), (2, 3)), ((), ())],
    ),
    OpCase(
        "cast",
        lambda L, x: x.clone().to(L.float64) * 3,
        lambda x: x.astype(np.float64) * 3,
        [((3,),)],
    ),
]

for _name, _np_fn in [
    ("eq", np.equal),
    ("ne", np.not_equal),
    ("lt", np.less),
    ("le", np.less_equal),
    ("gt", np.greater),
    ("ge", np.greater_equal),
]:
    CASES.append(
        OpCase(
            _name,
            lambda L, a, b, n=_name: getattr(a, n)(b.round()),
            lambda a, b, f=_np_fn: f(a, np.round(b)),
            BROADCAST,
            grad=False,
        )
    )
for _name, _np_fn in [
    ("logical_and", np.logical_and),
    ("logical_or", np.logical_or),
    ("logical_xor", np.logical_xor),
]:
    CASES.append(
        OpCase(
            _name,
            lambda L, a, b, n=_name: getattr(a > 0, n)(b > 0),
            lambda a, b, f=_np_fn: f(a > 0, b > 0),
            BROADCAST,
            grad=False,
        )
    )
CASES += [
    unary("logical_not", lambda L, x: (x > 0).logical_not(), lambda x: ~(x > 0), grad=False),
    unary(
        "isnan", lambda L, x: L.where(x > 0, x, float("nan")).isnan(), lambda x: x <= 0, grad=False
    ),
    unary(
        "isinf", lambda L, x: L.where(x > 0, x, -float("inf")).isinf(), lambda x: x <= 0, grad=False
    ),
    unary(
        "isfinite",
        lambda L, x: L.where(x > 0, x, float("inf")).isfinite(),
        lambda x: x > 0,
        grad=False,
    ),
    OpCase("all", lambda L, x: (x > 0).all(dim=1), lambda x: (x > 0).all(1), [((3, 4),)],
           grad=False),
    OpCase("any", lambda L, x: (x > 1).any(), lambda x: (x > 1).any(), [((3, 4),), ((),)],
           grad=False),
    binary(
        "floor_divide",
        lambda L, a, b: L.floor_divide(a, b),
        np.floor_divide,
        domains={1: POS},
        grad=False,  # torch records a node whose backward raises "not implemented"
        distinct=True,
    ),
    binary(
        "div_floor",
        lambda L, a, b: a.div(b, rounding_mode="floor"),
        np.floor_divide,
        domains={1: POS},
        distinct=True,
    ),
]

# The rows of issue 13's primitives, one file per family.
for _family in (op_rows_math, op_rows_index, op_rows_linalg, op_rows_conv, op_rows_rnn):
    CASES += _family.ROWS

CASES_BY_OP = {case.op: case for case in CASES}
PARAMS = [
    pytest.param(case, shapes, id=f"{case.op}-{'-'.join(map(str, shapes))}")
    for case in CASES
    for shapes in case.shapes
]


def test_every_registered_op_has_a_row():
    missing = sorted(set(OPS) - set(CASES_BY_OP))
    assert not missing, f"ops without a row in the op table: {missing}"


def test_every_op_says_whether_its_vjp_reads_its_output():
    """A compiled plan frees an op's output before the backward unless ``vjp_reads_output``;
    a vjp that reads ``ctx.out`` without the flag would find it gone, and a flag without the
    read would hold memory for nothing. The flag must agree with the vjp's source."""
    wrong = [name for name, op in OPS.items()
             if ("ctx.out" in inspect.getsource(op.vjp)) != op.vjp_reads_output]
    assert not wrong, f"vjp_reads_output disagrees with the vjp's source for: {wrong}"


def _inputs(case: OpCase, shapes, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for i, shape in enumerate(shapes):
        low, high = case.domains.get(i, (case.low, case.high))
        if case.distinct:  # well separated values: no ties at extrema or rounding boundaries
            n = int(np.prod(shape))
            grid = np.linspace(low, high, n + 2)[1:-1] + 0.013 * (i + 1)
            values = rng.permutation(grid).reshape(shape)
        else:
            values = rng.uniform(low, high, shape)
        arrays.append(np.asarray(values, dtype=np.float64))
    return arrays


def _run(lib, case, arrays, dtype):
    tensors = [lib.tensor(a, dtype=dtype, requires_grad=case.grad) for a in arrays]
    return tensors, case.call(lib, *tensors)


def _ops_in_graph(t) -> set:
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        names.add(node.op.name)
        stack.extend(fn for fn, _ in node.next_functions)
    return names


@pytest.mark.parametrize("case,shapes", PARAMS)
def test_forward_matches_numpy(case, shapes):
    arrays = _inputs(case, shapes)
    _, out = _run(gg, case, arrays, gg.float64)
    expected = case.ref(*arrays)
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)
    if case.grad:
        assert case.op in _ops_in_graph(out), f"the row for {case.op} never reaches that op"
    else:
        assert not out.requires_grad


@pytest.mark.parametrize("case,shapes", [p for p in PARAMS if not p.values[0].grad])
def test_non_differentiable_rows_record_what_torch_records(case, shapes):
    """On inputs that require grad: an output that is not floating point has no node (as
    torch); where torch records a node anyway (floor_divide), backward raises in both."""
    arrays = _inputs(case, shapes)
    _, ours = _run(gg, replace(case, grad=True), arrays, gg.float64)
    _, theirs = _run(torch, replace(case, grad=True), arrays, torch.float64)
    assert ours.requires_grad == theirs.requires_grad
    assert (ours.grad_fn is None) == (theirs.grad_fn is None)
    if theirs.requires_grad:
        for out in (ours, theirs):
            with pytest.raises(RuntimeError, match="not implemented"):
                out.sum().backward()


def _numeric_grads(case, arrays, weights):
    """Central differences of sum(weights * f(inputs)) in float64, one input element at a time."""

    def objective(*xs):
        out = case.call(gg, *[gg.tensor(x, dtype=gg.float64) for x in xs])
        return float((out.numpy().astype(np.float64) * weights).sum())

    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for k in np.ndindex(a.shape):
            step = 1e-6
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[i][k] += step
            minus[i][k] -= step
            g[k] = (objective(*plus) - objective(*minus)) / (2 * step)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case,shapes", [p for p in PARAMS if p.values[0].grad])
def test_gradient_matches_finite_differences(case, shapes):
    arrays = _inputs(case, shapes)
    tensors, out = _run(gg, case, arrays, gg.float64)
    weights = np.random.default_rng(1).uniform(0.5, 1.5, out.shape)
    (out * gg.tensor(weights)).sum().backward()
    expected = _numeric_grads(case, arrays, weights)
    for t, e in zip(tensors, expected):
        got = np.zeros_like(e) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(got, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case,shapes", PARAMS)
def test_matches_torch(case, shapes, dtype):
    arrays = _inputs(case, shapes)
    ours, out = _run(gg, case, arrays, getattr(gg, dtype))
    theirs, expected = _run(torch, case, arrays, getattr(torch, dtype))
    rtol, atol = (1e-6, 1e-6) if dtype == "float32" else (1e-13, 1e-13)
    assert out.dtype.name == str(expected.dtype).removeprefix("torch.")
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol, atol)
    if not case.grad:
        return
    weights = np.random.default_rng(1).uniform(0.5, 1.5, tuple(out.shape)).astype(dtype)
    (out * gg.tensor(weights)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    for mine, ref in zip(ours, theirs):
        if ref.grad is None:  # e.g. where's condition: no gradient flows there in torch either
            assert mine.grad is None
            continue
        assert mine.grad.dtype.name == dtype
        np.testing.assert_allclose(mine.grad.numpy(), ref.grad.numpy(), rtol * 4, atol * 4)


# ---------------------------------------------------------------------- higher order
# Every differentiable row again, differentiated to second order (third for THIRD_ORDER) through
# create_graph=True, against torch in float64 on the same inputs. A gradient that torch or
# graphgrad returns as None, or that does not require grad, counts as zeros: a piecewise-linear
# op's second derivative is zero, whichever way a library says so.

THIRD_ORDER = set(
    "pow pow_scalar exp log sqrt rsqrt tan tanh sigmoid sin div prod logsumexp softmax "
    "log_softmax mul matmul".split()
)

ZEROS_MASK = [[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]]
# Rows of the same primitives called another way, each with a reason to exist of its own.
HIGHER_ORDER_EXTRA = [
    unary("pow", lambda L, x: 2**x, lambda x: 2**x),  # a constant base: torch's PowBackward2
    unary("pow", lambda L, x: x ** x.detach(), lambda x: x**x, low=0.5),  # a constant exponent
    OpCase(  # one zero in one slice, two in another, none in the third
        "prod",
        lambda L, x: (x * L.tensor(ZEROS_MASK, dtype=x.dtype)).prod(dim=1),
        None,
        [((3, 4),)],
    ),
    OpCase("prod", lambda L, x: (x * 0).prod(), None, [((2, 3),)]),  # all zeros, one slice
]
HIGHER_PARAMS = [
    pytest.param(case, shapes, id=f"{case.op}-{'-'.join(map(str, shapes))}-{n}")
    for n, case in enumerate([c for c in CASES if c.grad] + HIGHER_ORDER_EXTRA)
    for shapes in case.shapes
]


def test_every_differentiable_op_has_a_higher_order_row():
    # Only a row marked grad=False may stay out, and test_non_differentiable_rows_... proves that
    # torch has no gradient for it either.
    covered = {p.values[0].op for p in HIGHER_PARAMS}
    not_differentiable = {case.op for case in CASES if not case.grad}
    missing = sorted(set(OPS) - covered - not_differentiable)
    assert not missing, f"ops without a second-order row: {missing}"
    assert THIRD_ORDER <= covered, f"third-order rows for unknown ops: {THIRD_ORDER - covered}"


def _derivatives(lib, case, arrays, order: int) -> list:
    """Per order k: the gradient of f_k with respect to every input, where f_1 is a weighted sum
    of the output and f_(k+1) is the gradient of f_k dotted with a random direction."""
    xs = [lib.tensor(a, dtype=lib.float64, requires_grad=True) for a in arrays]
    out = case.call(lib, *xs)
    rng = np.random.default_rng(2)
    f = (out * lib.tensor(rng.uniform(0.5, 1.5, tuple(out.shape)))).sum()
    results = []
    for k in range(order):
        grads = [None] * len(xs)
        if f.requires_grad:
            grads = lib.autograd.grad(f, xs, create_graph=k < order - 1, allow_unused=True)
        results.append(
            [np.zeros(a.shape) if g is None else _values(g) for g, a in zip(grads, arrays)]
        )
        directions = [lib.tensor(rng.uniform(-1.0, 1.0, a.shape)) for a in arrays]
        terms = [
            (g * d).sum() for g, d in zip(grads, directions) if g is not None and g.requires_grad
        ]
        f = sum(terms[1:], terms[0]) if terms else lib.tensor(0.0)
    return results


def _values(t) -> np.ndarray:
    return t.detach().numpy(force=True)  # force: torch's zero gradients can be ZeroTensors


@pytest.mark.parametrize("case,shapes", HIGHER_PARAMS)
def test_higher_order_gradients_match_torch(case, shapes):
    arrays = _inputs(case, shapes)
    order = 3 if case.op in THIRD_ORDER else 2
    ours = _derivatives(gg, case, arrays, order)
    theirs = _derivatives(torch, case, arrays, order)
    for k, (mine, ref) in enumerate(zip(ours, theirs), start=1):
        for i, (m, r) in enumerate(zip(mine, ref)):
            np.testing.assert_allclose(
                m, r, rtol=1e-10, atol=1e-10, err_msg=f"order {k}, input {i}"
            )
