"""Random expression DAGs, run in graphgrad and in torch, must agree value for value.

Hypothesis draws a small program: 1-4 leaf tensors of broadcast-compatible shapes, then 3-15 nodes,
each applying a random op to random earlier values. Because arguments are drawn from *all* earlier
values, values are reused (fan-out) and merged (fan-in), so the backward pass must accumulate
gradients into shared nodes. Every sink (a value no node consumes) is summed into one scalar, so
every leaf receives a gradient.

The program is plain data and one interpreter runs it against either library module (``gg`` or
``torch``): the program is defined once and torch is the independent oracle. The output, every
intermediate value and every leaf gradient are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphgrad as gg

# Every pair of these broadcasts (to at most (2, 3)); ops below keep results inside that family.
LEAF_SHAPES = [(), (1,), (3,), (2, 1), (2, 3), (1, 3)]
VALUE_BOUND = 2.0
# Chains of products and squares can overflow; such programs test float range, not autograd.
MAGNITUDE_LIMIT = 1e4

TOLERANCES = {
    "float64": {"rtol": 1e-10, "atol": 1e-12},
    "float32": {"rtol": 1e-4, "atol": 1e-5},
}

# (min, max) pairs for clamp; None leaves that side open, as torch allows.
CLAMP_BOUNDS = [(-0.5, 0.5), (-1.0, None), (None, 0.25), (0.0, 1.0)]


# ----------------------------------------------------------------------------------------------
# The op table: each op is written once, against whichever library module it is given.
# ----------------------------------------------------------------------------------------------

def _keepdim_dim(x, param: int) -> int:
    # A 0-d tensor accepts dim 0 (or -1) in torch; otherwise pick any existing dim.
    return param % max(x.ndim, 1)


def _size_one_slice(x, param: int):
    """Index out a size-1 slice along one dim, so the result still broadcasts with the rest."""
    if x.ndim == 0:
        return x[None]  # a 0-d tensor has nothing to slice; add an axis instead
    dim = param % x.ndim
    start = (param // x.ndim) % x.shape[dim]
    index = (slice(None),) * dim + (slice(start, start + 1),)
    return x[index]


def _clamp(x, param: int):
    low, high = CLAMP_BOUNDS[param % len(CLAMP_BOUNDS)]
    return x.clamp(min=low, max=high)


@dataclass(frozen=True)
class OpDef:
    arity: int
    apply: Callable  # apply(lib, *args, param) -> tensor
    smooth: bool     # infinitely differentiable everywhere on the drawn inputs


OPS: dict[str, OpDef] = {
    # binary
    "add": OpDef(2, lambda lib, a, b, p: a + b, True),
    "sub": OpDef(2, lambda lib, a, b, p: a - b, True),
    "mul": OpDef(2, lambda lib, a, b, p: a * b, True),
    "div": OpDef(2, lambda lib, a, b, p: a / (1 + b * b), True),  # divisor >= 1, never 0
    "maximum": OpDef(2, lambda lib, a, b, p: a.maximum(b), False),
    "minimum": OpDef(2, lambda lib, a, b, p: a.minimum(b), False),
    "where": OpDef(2, lambda lib, a, b, p: lib.where(a > 0, a, b), False),
    # unary
    "exp": OpDef(1, lambda lib, x, p: x.tanh().exp(), True),  # tanh first keeps exp bounded
    "tanh": OpDef(1, lambda lib, x, p: x.tanh(), True),
    "sigmoid": OpDef(1, lambda lib, x, p: x.sigmoid(), True),
    "sin": OpDef(1, lambda lib, x, p: x.sin(), True),
    "cos": OpDef(1, lambda lib, x, p: x.cos(), True),
    "relu": OpDef(1, lambda lib, x, p: x.relu(), False),
    "abs": OpDef(1, lambda lib, x, p: x.abs(), False),
    "log": OpDef(1, lambda lib, x, p: (1 + x * x).log(), True),  # argument >= 1
    "sqrt": OpDef(1, lambda lib, x, p: (1 + x * x).sqrt(), True),  # argument >= 1
    "square": OpDef(1, lambda lib, x, p: x.square() if p % 2 else x ** 2, True),
    "neg": OpDef(1, lambda lib, x, p: -x, True),
    "clamp": OpDef(1, lambda lib, x, p: _clamp(x, p), False),
    # reductions keep their dim, so results still broadcast against everything else
    "sum": OpDef(1, lambda lib, x, p: x.sum(dim=_keepdim_dim(x, p), keepdim=True), True),
    "mean": OpDef(1, lambda lib, x, p: x.mean(dim=_keepdim_dim(x, p), keepdim=True), True),
    "softmax": OpDef(1, lambda lib, x, p: x.softmax(dim=-1), True),
    "log_softmax": OpDef(1, lambda lib, x, p: x.log_softmax(dim=-1), True),
    "slice": OpDef(1, lambda lib, x, p: _size_one_slice(x, p), True),
}

ALL_OPS = sorted(OPS)
SMOOTH_OPS = sorted(name for name, op in OPS.items() if op.smooth)


# ----------------------------------------------------------------------------------------------
# Programs: plain data, drawn by Hypothesis.
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Node:
    op: str
    args: tuple[int, ...]  # indices into the value list: leaves first, then earlier nodes
    param: int             # op-specific choice: reduction dim, slice position, clamp bounds


@dataclass(frozen=True)
class Program:
    leaves: tuple[np.ndarray, ...]
    nodes: tuple[Node, ...]

    def sinks(self) -> list[int]:
        """Indices of the values no node consumes (unused leaves included)."""
        used = {i for node in self.nodes for i in node.args}
        return [i for i in range(len(self.leaves) + len(self.nodes)) if i not in used]

    def listing(self) -> str:
        """The program as readable lines, for Hypothesis's failure report."""
        lines = [f"v{i} = leaf{a.shape} {a.tolist()!r}" for i, a in enumerate(self.leaves)]
        for k, node in enumerate(self.nodes, start=len(self.leaves)):
            args = ", ".join(f"v{i}" for i in node.args)
            lines.append(f"v{k} = {node.op}({args}; param={node.param})")
        lines.append("out = " + " + ".join(f"v{i}.sum()" for i in self.sinks()))
        return "\n".join(lines)


@st.composite
def programs(draw, op_names=ALL_OPS, float_width: int = 64) -> Program:
    """A random program; ``float_width=32`` draws values exactly representable in float32."""
    elements = st.floats(-VALUE_BOUND, VALUE_BOUND, width=float_width)
    shapes = draw(st.lists(st.sampled_from(LEAF_SHAPES), min_size=1, max_size=4))
    leaves = tuple(draw(hnp.arrays(np.float64, shape, elements=elements)) for shape in shapes)
    n_nodes = draw(st.integers(3, 15))
    nodes = []
    for k in range(len(leaves), len(leaves) + n_nodes):
        op = draw(st.sampled_from(op_names))
        args = tuple(draw(st.integers(0, k - 1)) for _ in range(OPS[op].arity))
        nodes.append(Node(op, args, draw(st.integers(0, 11))))
    return Program(leaves, tuple(nodes))


# ----------------------------------------------------------------------------------------------
# The interpreter: the one place a program turns into tensor operations.
# ----------------------------------------------------------------------------------------------

def run_program(lib, program: Program, dtype_name: str):
    """Run ``program`` with ``lib`` (graphgrad or torch): return (leaves, values, scalar output)."""
    dtype = getattr(lib, dtype_name)
    leaves = [lib.tensor(array, dtype=dtype, requires_grad=True) for array in program.leaves]
    values = list(leaves)
    for node in program.nodes:
        args = [values[i] for i in node.args]
        values.append(OPS[node.op].apply(lib, *args, node.param))
    sink_sums = [values[i].sum() for i in program.sinks()]
    out = sink_sums[0]
    for term in sink_sums[1:]:
        out = out + term
    return leaves, values, out


def _array(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def _assume_tame(values, out) -> None:
    """Discard programs whose values leave the float range we mean to test (checked on torch)."""
    for v in [*values, out]:
        array = _array(v)
        assume(np.all(np.isfinite(array)) and np.all(np.abs(array) < MAGNITUDE_LIMIT))


def assert_same(actual, expected, dtype_name: str, what: str) -> None:
    """graphgrad's tensor matches torch's: shape, dtype name, and values within tolerance."""
    assert (actual is None) == (expected is None), (
        f"{what}: graphgrad {actual!r}, torch {expected!r}")
    if expected is None:
        return
    actual_array, expected_array = _array(actual), _array(expected)
    assert actual_array.shape == expected_array.shape, (
        f"{what}: shape {actual_array.shape} != torch {expected_array.shape}")
    assert actual_array.dtype == np.dtype(dtype_name), f"{what}: dtype {actual_array.dtype}"
    np.testing.assert_allclose(actual_array, expected_array, err_msg=what, **TOLERANCES[dtype_name])


def check_program(program: Program, dtype_name: str) -> None:
    note(program.listing())
    t_leaves, t_values, t_out = run_program(torch, program, dtype_name)
    _assume_tame(t_values, t_out)
    t_out.backward()

    g_leaves, g_values, g_out = run_program(gg, program, dtype_name)
    g_out.backward()

    assert_same(g_out, t_out, dtype_name, "output")
    for i, (g_value, t_value) in enumerate(zip(g_values, t_values)):
        assert_same(g_value, t_value, dtype_name, f"value v{i}")
    for i, (g_leaf, t_leaf) in enumerate(zip(g_leaves, t_leaves)):
        assert_same(g_leaf.grad, t_leaf.grad, dtype_name, f"gradient of leaf v{i}")


# ----------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------

@settings(max_examples=600, deadline=None)
@given(programs())
def test_random_dag_float64_matches_torch(program: Program) -> None:
    check_program(program, "float64")


@settings(max_examples=300, deadline=None)
@given(programs(float_width=32))
def test_random_dag_float32_matches_torch(program: Program) -> None:
    check_program(program, "float32")


def _second_derivatives(lib, program: Program) -> tuple[list, list]:
    """First gradients (kept differentiable) and the gradients of their total, per leaf.

    A leaf the first gradients do not depend on (e.g. a linear program) has second derivative
    zero; libraries may report that as None or as zeros, so both become explicit zeros here.
    """
    leaves, _, out = run_program(lib, program, "float64")
    firsts = lib.autograd.grad(out, leaves, create_graph=True)
    total = firsts[0].sum()
    for g in firsts[1:]:
        total = total + g.sum()
    if total.requires_grad:
        seconds = lib.autograd.grad(total, leaves, allow_unused=True)
    else:
        seconds = [None] * len(leaves)
    zeros = [lib.zeros(leaf.shape, dtype=lib.float64) for leaf in leaves]
    return list(firsts), [z if s is None else s for s, z in zip(seconds, zeros)]


@settings(max_examples=200, deadline=None)
@given(programs(op_names=SMOOTH_OPS))
def test_random_dag_second_derivatives_match_torch(program: Program) -> None:
    note(program.listing())
    _, t_values, t_out = run_program(torch, program, "float64")
    _assume_tame(t_values, t_out)
    t_firsts, t_seconds = _second_derivatives(torch, program)
    g_firsts, g_seconds = _second_derivatives(gg, program)
    for i, (g_first, t_first) in enumerate(zip(g_firsts, t_firsts)):
        assert_same(g_first, t_first, "float64", f"first gradient of leaf v{i}")
    for i, (g_second, t_second) in enumerate(zip(g_seconds, t_seconds)):
        assert_same(g_second, t_second, "float64", f"second derivative at leaf v{i}")
