"""graphgrad accepts what torch 2.13 accepts and refuses what it refuses.

Every row runs the same code on torch and on graphgrad: where torch returns, graphgrad returns the
same values, shape and dtype (and, for a float input that requires grad, the same gradient);
where torch raises, graphgrad raises the same exception type, and where a row names a phrase, both
messages contain it; where torch warns, graphgrad warns with the same category.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

import graphgrad as gg

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
LOGITS = np.array([[0.2, -1.0, 0.7], [1.1, 0.3, -0.4], [0.0, 0.5, 0.9], [-0.6, 0.8, 0.1]],
                  dtype=np.float32)  # fmt: skip


@dataclass
class Outcome:
    value: object = None
    error: BaseException | None = None
    warned: list = field(default_factory=list)


def run(fn, lib) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = fn(lib)
        except Exception as exc:  # noqa: BLE001 - the exception is what is compared
            return Outcome(error=exc, warned=[w.category for w in caught])
    return Outcome(value=value, warned=[w.category for w in caught])


def as_array(value):
    if isinstance(value, (gg.Tensor, torch.Tensor)):
        return value.detach().numpy()
    return np.asarray(value)


def dtype_name(value) -> str:
    return str(getattr(value, "dtype", type(value).__name__)).split(".")[-1]


def assert_same_value(ours, theirs):
    if theirs is None:
        assert ours is None, f"torch gave None, graphgrad {ours!r}"
        return
    if isinstance(theirs, (tuple, list)) and not isinstance(theirs, torch.Size):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same_value(a, b)
        return
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, gg.Tensor), f"expected a tensor, got {ours!r}"
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert dtype_name(ours) == dtype_name(theirs)
    np.testing.assert_allclose(as_array(ours), as_array(theirs), rtol=1e-6, atol=1e-6)


def check(fn, match: str | None = None):
    """Run ``fn`` on both libraries and compare the outcomes; return them."""
    theirs, ours = run(fn, torch), run(fn, gg)
    if theirs.error is not None:
        assert ours.error is not None, (
            f"torch raised {type(theirs.error).__name__}: {theirs.error}; graphgrad returned "
            f"{ours.value!r}"
        )
        assert isinstance(ours.error, type(theirs.error)), (
            f"torch raised {type(theirs.error).__name__} ({theirs.error}), graphgrad "
            f"{type(ours.error).__name__} ({ours.error})"
        )
        if match is not None:
            assert match.lower() in str(theirs.error).lower()  # the phrase is torch's own
            assert match.lower() in str(ours.error).lower(), str(ours.error)
    else:
        assert ours.error is None, f"torch returned, graphgrad raised {ours.error!r}"
        assert_same_value(ours.value, theirs.value)
    assert set(ours.warned) == set(theirs.warned), (ours.warned, theirs.warned)
    return ours, theirs


# ---------------------------------------------------------------------- numbers as arguments

BINARY = """add sub mul div true_divide divide multiply subtract floor_divide remainder pow maximum
minimum""".split()
UNARY = """neg exp log sqrt sin tanh sigmoid relu abs sign floor square reciprocal sum mean
amax argmax softmax flatten""".split()
# a number in each tensor position: n float, k int; x float tensor, i int tensor
BINARY_PATTERNS = ["n x", "x n", "k x", "x k", "n i", "i n", "k i", "i k", "n n", "k k", "n k"]


def operand(lib, code):
    return {
        "x": lambda: lib.tensor(X[0] + 3.0),
        "i": lambda: lib.tensor([1, 2, 3]),
        "b": lambda: lib.tensor([True, False, True]),
        "n": lambda: 2.5,
        "k": lambda: 2,
    }[code]()


def call(name, pattern, **kwargs):
    return lambda lib: getattr(lib, name)(*(operand(lib, c) for c in pattern.split()), **kwargs)


NUMBER_CASES = [(f"{n}({p})", call(n, p)) for n in BINARY for p in BINARY_PATTERNS]
NUMBER_CASES += [(f"{n}({p})", call(n, p)) for n in UNARY for p in ("n", "k")]
NUMBER_CASES += [
    ("add(k, x, alpha=3)", call("add", "k x", alpha=3)),
    ("sub(n, x, alpha=2)", call("sub", "n x", alpha=2)),
    ("div(k, i, rounding_mode=floor)", call("div", "k i", rounding_mode="floor")),
    ("div(n, x, rounding_mode=trunc)", call("div", "n x", rounding_mode="trunc")),
    ("div(x, k, rounding_mode=typo)", call("div", "x k", rounding_mode="typo")),
    ("add(i, k, alpha=0.5)", call("add", "i k", alpha=0.5)),
    ("sub(i, i, alpha=1.5)", call("sub", "i i", alpha=1.5)),
    ("add(x, x, alpha=True)", call("add", "x x", alpha=True)),
    ("add(i, x, alpha=0.5)", call("add", "i x", alpha=0.5)),
    ("add(input=x, other=n)", lambda L: L.add(input=operand(L, "x"), other=2.5)),
    ("sum(a=x)", lambda L: L.sum(a=operand(L, "x"))),
    ("mul(x=x, other=n)", lambda L: L.mul(x=operand(L, "x"), other=2.5)),
    ("add(x, x2=x)", lambda L: L.add(operand(L, "x"), x2=operand(L, "x"))),
    ("clamp(x, min=n)", lambda L: L.clamp(operand(L, "x"), min=3.0)),
    ("clamp(i, max=n)", lambda L: L.clamp(operand(L, "i"), max=2.5)),
    ("clamp(n, min=k)", lambda L: L.clamp(2.5, min=1)),
    ("lerp(x, x, n)", lambda L: L.lerp(operand(L, "x"), operand(L, "x") * 2, 0.5)),
    ("lerp(x, n, n)", call("lerp", "x n n")),
    ("lerp(n, x, n)", call("lerp", "n x n")),
    ("where(b, n, x)", call("where", "b n x")),
    ("where(b, x, n)", call("where", "b x n")),
    ("where(b, n, n)", call("where", "b n n")),
    ("where(b, i, n)", call("where", "b i n")),
    ("where(b, k, i)", call("where", "b k i")),
    ("where(True, x, x)", lambda L: L.where(True, operand(L, "x"), operand(L, "x"))),
    ("where(b)", call("where", "b")),
    ("sub(b, k)", call("sub", "b k")),
    ("sub(k, b)", call("sub", "k b")),
    ("sub(x, b)", call("sub", "x b")),
    ("sub(b, b)", call("sub", "b b")),
    ("sub(x, True)", lambda L: L.sub(operand(L, "x"), True)),
    ("neg(b)", call("neg", "b")),
    ("matmul(x, n)", call("matmul", "x n")),
    ("mm(x, n)", lambda L: L.mm(operand(L, "x").reshape(1, 3), 2.5)),
    ("dot(x, n)", call("dot", "x n")),
]


@pytest.mark.parametrize("fn", [c[1] for c in NUMBER_CASES], ids=[c[0] for c in NUMBER_CASES])
def test_numbers_in_tensor_positions_match_torch(fn):
    check(fn)


GRADIENT_CASES = [
    ("pow(n, x)", lambda L, x: L.pow(2.0, x)),
    ("pow(x, n)", lambda L, x: L.pow(x, 2.0)),
    ("sub(n, x)", lambda L, x: L.sub(1.5, x, alpha=2)),
    ("div(k, x)", lambda L, x: L.div(3, x)),
    ("mul(n, x)", lambda L, x: L.mul(0.5, x)),
    ("where(b, n, x)", lambda L, x: L.where(x > 3.0, 2.0, x)),
]


@pytest.mark.parametrize("fn", [c[1] for c in GRADIENT_CASES], ids=[c[0] for c in GRADIENT_CASES])
def test_number_first_gradients_match_torch(fn):
    grads = []
    for lib in (gg, torch):
        x = lib.tensor(X[0] + 3.0, requires_grad=True)
        out = fn(lib, x)
        (out * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
        grads.append((out, x.grad))
    assert_same_value(*grads[0][:1], *grads[1][:1])
    assert_same_value(grads[0][1], grads[1][1])


# ---------------------------------------------------------------------- indexing

INDEX_CASES = [
    ("empty list", lambda L, x: x[[]]),
    ("empty list, int", lambda L, x: x[[], 0]),
    ("slice, empty list", lambda L, x: x[:, []]),
    ("nested empty list", lambda L, x: x[[[]]]),
    ("empty int tensor", lambda L, x: x[L.tensor([], dtype=L.int64)]),
    ("empty float tensor", lambda L, x: x[L.tensor([])]),
    ("empty numpy array", lambda L, x: x[np.array([])]),
    ("empty bool tensor", lambda L, x: x[L.tensor([], dtype=L.bool)]),
    ("all-False rows", lambda L, x: x[L.zeros(2, dtype=L.bool)]),
    ("all-False mask", lambda L, x: x[L.zeros(2, 3, dtype=L.bool)]),
    ("all-True mask", lambda L, x: x[L.ones(2, 3, dtype=L.bool)]),
    ("mask too long", lambda L, x: x[L.zeros(3, dtype=L.bool)]),
    ("mask of dim 1 too short", lambda L, x: x[:, L.tensor([True, False])]),
    ("mask after Ellipsis", lambda L, x: x[..., L.tensor([True, False, True])]),
    ("mask after None", lambda L, x: x[None, L.tensor([True, False])]),
    ("bool list", lambda L, x: x[[True, False]]),
    ("uint8 mask", lambda L, x: x[L.tensor([1, 0], dtype=L.uint8)]),
    ("int8 index", lambda L, x: x[L.tensor([0, 1], dtype=L.int8)]),
    ("int32 index", lambda L, x: x[L.tensor([1, 0], dtype=L.int32)]),
    ("float tensor index", lambda L, x: x[L.tensor([0.0, 1.0])]),
    ("float list truncates", lambda L, x: x[[0, 1.7]]),
    ("range", lambda L, x: x[range(2)]),
    ("tuple inside tuple", lambda L, x: x[((0, 1),)]),
    ("list of lists is a tuple", lambda L, x: x[[[0, 1], [2, 1]]]),
    ("list with a slice is a tuple", lambda L, x: x[[0, slice(0, 2)]]),
    ("list of 0-d tensors is a tuple", lambda L, x: x[[L.tensor(1), L.tensor(2)]]),
    ("last row", lambda L, x: x[-2]),
    ("row out of range", lambda L, x: x[2]),
    ("negative row out of range", lambda L, x: x[-3]),
    ("column out of range", lambda L, x: x[0, 3]),
    ("negative index list out of range", lambda L, x: x[[-3]]),
    ("index tensor out of range", lambda L, x: x[L.tensor([0, 5])]),
    ("negative step", lambda L, x: x[::-1]),
    ("zero step", lambda L, x: x[::0]),
    ("step 2", lambda L, x: x[:, ::2]),
    ("slice beyond the end", lambda L, x: x[5:]),
    ("too many indices", lambda L, x: x[0, 0, 0]),
    ("float index", lambda L, x: x[1.0]),
    ("numpy float index", lambda L, x: x[np.float32(1.0)]),
    ("0-d int tensor", lambda L, x: x[L.tensor(1)]),
    ("0-d bool tensor", lambda L, x: x[L.tensor(True)]),
    ("True", lambda L, x: x[True]),
    ("False", lambda L, x: x[False]),
]


@pytest.mark.parametrize("fn", [c[1] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_indexing_edge_cases_match_torch(fn):
    def indexed(lib):
        x = lib.tensor(X, requires_grad=True)
        out = fn(lib, x)
        (out * 3.0).sum().backward()
        return out, x.grad

    check(indexed)


def test_setitem_out_of_range_is_an_index_error_like_torch():
    def setter(lib):
        x = lib.zeros(2, 3)
        x[2] = 1.0
        return x

    check(setter, match="out of")


# ---------------------------------------------------------------------- dims: aliases and ranges

DIM_CASES = [
    (name, expr)
    for name in "sum mean nansum var std prod amax amin argmax argmin logsumexp any all".split()
    for expr in (
        f"x.{name}(axis=1)",
        f"x.{name}(axis=-1, keepdims=True)",
        f"x.{name}(dim=0, keepdims=True)",
        f"x.{name}(1, keepdims=True)",
        f"x.{name}(dim=1, axis=1)",
        f"L.{name}(x, axis=0)",
        f"x.{name}(2)",
        f"x.{name}(-3)",
        f"z.{name}(0)",
        f"z.{name}(-1)",
        f"z.{name}(1)",
        f"z.{name}(-2)",
    )
]
DIM_CASES += [
    ("max", expr)
    for expr in ("x.max(axis=1)", "x.max(axis=1, keepdims=True)", "x.max(2)", "z.max(1)",
                 "x.min(axis=-1)", "z.min(0)", "e.max(1)", "e.max(0)", "e.max()", "e.amax(0)",
                 "e.amax(1)", "e.amin()", "e.argmax()", "e.argmax(1)", "e.argmin(0)")
]  # fmt: skip
DIM_CASES += [
    (name, expr)
    for name, exprs in {
        "tuple dims": ("x.sum((0, 1))", "x.sum(axis=(0, -1))", "x.mean([0, 1])", "x.sum(())",
                       "x.amax(())", "x.sum((0, 0))", "x.prod((0, 1))", "x.argmax((0, 1))",
                       "z.sum((0,))", "z.sum((1,))"),
        "softmax": ("x.softmax(axis=1)", "x.log_softmax(axis=0)", "x.softmax(2)", "z.softmax(1)",
                    "z.softmax(0)", "e.softmax(0)", "e.log_softmax(1)", "L.softmax(x, axis=1)"),
        "squeeze": ("z.squeeze(10)", "z.squeeze(0)", "z.squeeze(-1)", "x.squeeze(axis=0)",
                    "x.squeeze(2)", "x.squeeze((0, 2))", "x[None].squeeze(axis=(0, 1))"),
        "unsqueeze": ("x.unsqueeze(axis=1)", "x.unsqueeze(3)", "x.unsqueeze(-4)", "x.unsqueeze(-3)",
                      "z.unsqueeze(1)", "z.unsqueeze(2)", "z.unsqueeze(-2)"),
        "flatten": ("z.flatten(1)", "z.flatten(0, -1)", "z.flatten(0)", "x.flatten(2)",
                    "x.flatten(1, 0)"),
        "transpose": ("z.transpose(0, 0)", "z.transpose(-1, 0)", "z.transpose(0, 1)",
                      "x.transpose(0, 2)"),
        "size": ("x.size(axis=1)", "x.size(2)", "z.size(0)", "z.size(1)", "x.size(-3)"),
        "cat and stack": ("L.cat([x, x], axis=1)", "L.cat([x, x], axis=2)",
                          "L.stack([x, x], axis=2)", "L.stack([x, x], axis=3)",
                          "L.cat([z, z])", "L.stack([z, z], 1)"),
        "split and chunk": ("x.chunk(2, axis=1)", "x.chunk(2, 2)", "z.chunk(1)", "z.split(1)",
                            "x.split(2, 2)", "x.chunk(0)", "x.split(0)", "x.split(-1)",
                            "x.split(2.0)", "x.chunk(2.0)", "e.split(0)", "x.split([1, 1])",
                            "x.split([1, 1], 1)"),
        "gather and narrow": ("x.gather(axis=1, index=L.zeros(2, 1, dtype=L.int64))",
                              "x.gather(2, L.zeros(2, 1, dtype=L.int64))",
                              "x.narrow(axis=1, start=0, length=2)", "x.narrow(1, 5, 1)",
                              "x.narrow(1, -1, 1)", "x.narrow(1, -4, 1)", "x.narrow(1, 2, 2)",
                              "x.narrow(1, 1, -1)", "x.narrow(1, 3, 0)", "z.narrow(0, 0, 1)",
                              "x.narrow(2, 0, 1)"),
        "shape arguments": ("x.reshape(3, 2.0)", "x.view(6.0)", "x.permute(0, 2)",
                            "x.permute(0.0, 1)", "x.expand(2, 3.0)", "x.repeat(1, 2.0)",
                            "x.flip(2)", "x.flip(1.0)", "x.reshape(L.tensor(3), 2)"),
    }.items()
    for expr in exprs
]  # fmt: skip


@pytest.mark.parametrize("expr", [c[1] for c in DIM_CASES], ids=[c[1] for c in DIM_CASES])
def test_dim_arguments_match_torch(expr):
    def evaluate(L):
        names = {"L": L, "x": L.tensor(X), "z": L.tensor(1.5), "e": L.ones(0, 3)}
        return eval(expr, {"np": np}, names)  # noqa: S307 - the expression is a row of this table

    ours, _ = check(evaluate)
    if ours.error is not None and isinstance(ours.error, IndexError):
        assert "out of range" in str(ours.error) or "dim" in str(ours.error).lower()


def test_dimension_errors_say_the_range_like_torch():
    check(lambda L: L.tensor(1.0).sum(1), match="expected to be in range of [-1, 0], but got 1")
    check(lambda L: L.tensor(1.0).squeeze(10), match="but got 10")
    check(lambda L: L.ones(2, 3).softmax(-3), match="range of [-2, 1]")
    check(lambda L: L.ones(0, 3).amax(0), match="Expected reduction dim 0 to have non-zero size")


# ---------------------------------------------------------------------- creation

CREATION_CASES = """
L.linspace(0, 1, 5, dtype=L.bool)
L.linspace(0, 10, 5, dtype=L.int64)
L.linspace(0, 1, 0)
L.linspace(0, 1, -1)
L.linspace(0, 1, 2.0)
L.linspace(L.tensor(0.0), L.tensor(2.0), 3)
L.arange(0, 5, 0)
L.arange(0, 1, 0.0)
L.arange(0, 5, -1)
L.arange(5, 0, 1)
L.arange(5, 0)
L.arange(5, 0, -2)
L.arange(0.0, 1.0, -0.1)
L.arange(1, 1)
L.arange(5, dtype=L.bool)
L.arange(5, dtype=L.float64)
L.arange(end=4)
L.arange(1, 4, step=2)
L.arange(L.tensor(3))
L.arange(float('inf'))
L.arange(float('nan'))
L.arange(3, dtype=L.int64, requires_grad=True)
L.zeros(-1)
L.zeros(2, -1)
L.zeros(2.0)
L.zeros()
L.zeros(())
L.zeros(size=(2, 3))
L.ones(2, dtype="float32")
L.ones(2, dtype=np.float32)
L.ones(2, dtype=float)
L.ones(2, dtype=int)
L.ones(2, dtype=L.int64, requires_grad=True)
L.empty(size=(2,)).shape
L.full((2,), 1.5)
L.full(2, 1.5)
L.full((2,), None)
L.full((2,), "a")
L.full((2,), L.tensor(2.5))
L.full((-1,), 1.0)
L.eye(2.0)
L.eye(-1)
L.eye(2, -3)
L.eye(0)
L.eye(2, 3, dtype=L.int64)
L.rand(2, dtype=L.int64)
L.rand(2, dtype=L.bool)
L.randn(2, dtype=L.int64)
L.rand(2.0)
L.rand(size=(2, 3)).shape
L.randn(size=(2, 3)).shape
L.rand(-1)
L.rand_like(L.ones(2, dtype=L.int64))
L.randn_like(L.ones(2, dtype=L.int64))
L.randint(5, 5, (3,))
L.randint(5, 3, (3,))
L.randint(0.5, 5.5, (3,))
L.randint(0, 5, (3,), dtype=L.bool)
L.randint(0, 2, (3,), dtype=L.bool).shape
L.randint(-1, 2, (3,), dtype=L.uint8)
L.randint(0, 256, (3,), dtype=L.uint8).shape
L.randint(0, 257, (3,), dtype=L.uint8)
L.randint(0, 2**40, (3,), dtype=L.int32)
L.randint(high=5, size=(3,)).shape
L.randint(0, 5, (3,), requires_grad=True)
L.randint(0, 5, (-3,))
L.randperm(3.0)
L.randperm(-1)
L.randperm(3, dtype=L.bool)
L.randperm(3, dtype=L.float32, requires_grad=True).shape
L.randperm(3, requires_grad=True)
L.zeros_like([1, 2])
L.ones_like(L.ones(2, dtype=L.int64), requires_grad=True)
L.tensor(None)
L.tensor(2**63)
L.tensor(-2**63 - 1)
L.tensor([1, 2**64])
L.tensor(2**63, dtype=L.float32)
L.tensor(-2**63)
L.manual_seed(-1).initial_seed()
L.manual_seed(2**64)
L.manual_seed(-2**63 - 1)
""".strip().splitlines()


@pytest.mark.parametrize("expr", CREATION_CASES)
def test_creation_arguments_match_torch(expr):
    check(lambda L: eval(expr))  # noqa: S307 - the expression is a row of this table


def test_creation_errors_name_the_problem():
    check(lambda L: L.arange(0, 5, -1), match="inconsistent with step sign")
    check(lambda L: L.arange(0, 5, 0), match="step must be nonzero")
    check(lambda L: L.randint(0, 257, (3,), dtype=L.uint8), match="out of bounds")
    check(lambda L: L.linspace(0, 1, -1), match="non-negative")
    check(lambda L: L.eye(-1), match="greater or equal to 0")
    check(lambda L: L.zeros(2, -1), match="must be non-negative")


# ---------------------------------------------------------------------- losses

P = np.array([[0.2], [0.7], [0.4], [0.9]], dtype=np.float32)

LOSS_CASES = [
    # class indices: dtype, shape and batch checks, in torch's order
    ("CE float class indices", lambda L, F, x, p: F.cross_entropy(x, L.tensor([0., 1., 2., 1.])),
     "expected target dtype"),
    ("CrossEntropyLoss float indices",
     lambda L, F, x, p: L.nn.CrossEntropyLoss()(x, L.tensor([0., 1., 2., 1.])), "target dtype"),
    ("CE int32 indices", lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]).int()),
     "Long or Byte"),
    ("CE uint8 indices",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1], dtype=L.uint8)), None),
    ("CE bool indices",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([True, False, True, False])), "Long or Byte"),
    ("CE (32, 1) float target", lambda L, F, x, p: F.cross_entropy(x, L.zeros(32, 1)),
     "batch_size"),
    ("CE (4, 1) float target", lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 1)),
     "multi-target not supported"),
    ("CE (4, 1) int target", lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 1, dtype=L.int64)),
     "multi-target not supported"),
    ("CE (4, 4) target", lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 4)), "multi-target"),
    ("CE short target", lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2])), "batch_size"),
    ("CE 0-d target, 2-d input", lambda L, F, x, p: F.cross_entropy(x, L.tensor(1)),
     "batch_size"),
    ("CE (C,) input, 0-d target", lambda L, F, x, p: F.cross_entropy(x[0], L.tensor(1)), None),
    ("CE (C,) input, (1,) target", lambda L, F, x, p: F.cross_entropy(x[0], L.tensor([1])), None),
    ("CE (C,) input, (2,) target", lambda L, F, x, p: F.cross_entropy(x[0], L.tensor([1, 2])),
     "1D target must have size 1"),
    ("CE 0-d input", lambda L, F, x, p: F.cross_entropy(L.tensor(1.0), L.tensor(0)),
     "class probabilities"),
    ("CE target out of range", lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 3])),
     "out of bounds"),
    ("CE short weight",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]), weight=L.ones(2)),
     "for all 3 classes"),
    ("CE 2-d weight",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]), weight=L.ones(1, 3)),
     "for all 3 classes"),
    ("CE float64 weight",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]), weight=L.ones(3).double()),
     None),
    ("CE label smoothing 1.5",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]), label_smoothing=1.5),
     "label_smoothing must be between"),
    ("CE label smoothing -0.5",
     lambda L, F, x, p: F.cross_entropy(x, L.tensor([0, 1, 2, 1]), label_smoothing=-0.5), None),
    ("CE list target", lambda L, F, x, p: F.cross_entropy(x, [0, 1, 2, 1]), None),
    ("CE 3-d input, bad target size",
     lambda L, F, x, p: F.cross_entropy(L.ones(4, 3, 2), L.zeros(4, 3, dtype=L.int64)),
     "Expected target size"),
    ("CE 3-d input, probabilities of the wrong layout",
     lambda L, F, x, p: F.cross_entropy(L.ones(4, 3, 2), L.zeros(4, 2, 3)), "target size"),
    # class probabilities: a float target of the input's shape
    ("CE probabilities", lambda L, F, x, p: F.cross_entropy(x, L.softmax(x * 2, 1)), None),
    ("CE integer target of the input's shape",
     lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 3, dtype=L.int64)), "floating point"),
    ("CE probabilities with ignore_index",
     lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 3), ignore_index=1), "ignore_index"),
    ("CE probabilities, short weight",
     lambda L, F, x, p: F.cross_entropy(x, L.zeros(4, 3), weight=L.ones(2)), "for all 3 classes"),
    ("NLL float target", lambda L, F, x, p: F.nll_loss(x, L.tensor([0., 1., 2., 1.])),
     "target dtype"),
    ("NLLLoss float target", lambda L, F, x, p: L.nn.NLLLoss()(x, L.tensor([0., 1., 2., 1.])),
     "target dtype"),
    ("NLL 0-d input", lambda L, F, x, p: F.nll_loss(L.tensor(1.0), L.tensor(0)),
     "1 or more dimensions"),
    ("NLL short weight",
     lambda L, F, x, p: F.nll_loss(x, L.tensor([0, 1, 2, 1]), weight=L.ones(2)), "for all 3"),
    ("NLL long input", lambda L, F, x, p: F.nll_loss(x.long(), L.tensor([0, 1, 2, 1])), None),
    # elementwise losses: a target of another size is broadcast, with torch's warning
    ("MSE (4, 1) vs (4,)", lambda L, F, x, p: F.mse_loss(p, L.ones(4)), None),
    ("MSELoss (4, 1) vs (4,)", lambda L, F, x, p: L.nn.MSELoss()(p, L.ones(4)), None),
    ("MSE (4, 1) vs (1,)", lambda L, F, x, p: F.mse_loss(p, L.ones(1)), None),
    ("MSE same size", lambda L, F, x, p: F.mse_loss(p, L.ones(4, 1)), None),
    ("L1Loss (4, 1) vs (4,)", lambda L, F, x, p: L.nn.L1Loss()(p, L.ones(4)), None),
    ("HuberLoss (4, 1) vs (4,)", lambda L, F, x, p: L.nn.HuberLoss()(p, L.ones(4)), None),
    ("Huber negative delta", lambda L, F, x, p: F.huber_loss(p, p, delta=-1.0), "delta"),
    ("Huber zero delta", lambda L, F, x, p: F.huber_loss(p, p, delta=0.0), "delta"),
    ("MSE legacy size_average", lambda L, F, x, p: F.mse_loss(p, p * 2, size_average=False),
     None),
    ("MSELoss legacy reduce", lambda L, F, x, p: L.nn.MSELoss(reduce=False)(p, p * 2), None),
    ("MSE weight of another size",
     lambda L, F, x, p: F.mse_loss(p, p, weight=L.ones(4)), "same size"),
    ("BCE (4, 1) vs (4,)", lambda L, F, x, p: F.binary_cross_entropy(p, L.ones(4)), "size"),
    ("BCELoss (4, 1) vs (4,)", lambda L, F, x, p: L.nn.BCELoss()(p, L.ones(4)), "size"),
    ("BCE float64 target",
     lambda L, F, x, p: F.binary_cross_entropy(p, L.ones(4, 1, dtype=L.float64)), "dtype"),
    ("BCE int target",
     lambda L, F, x, p: F.binary_cross_entropy(p, L.ones(4, 1, dtype=L.int64)), "dtype"),
    ("BCE weight that does not broadcast",
     lambda L, F, x, p: F.binary_cross_entropy(p, p, weight=L.ones(3)), None),
    ("BCEWithLogits (4, 1) vs (4,)",
     lambda L, F, x, p: F.binary_cross_entropy_with_logits(p, L.ones(4)), "size"),
    ("BCEWithLogitsLoss (4, 1) vs (4,)",
     lambda L, F, x, p: L.nn.BCEWithLogitsLoss()(p, L.ones(4)), "size"),
    ("BCEWithLogits int target",
     lambda L, F, x, p: F.binary_cross_entropy_with_logits(p, L.ones(4, 1, dtype=L.int64)),
     None),
    ("BCEWithLogits pos_weight that grows the output",
     lambda L, F, x, p: F.binary_cross_entropy_with_logits(p, p, pos_weight=L.ones(2)),
     "shape"),
    ("BCEWithLogits weight that grows the output",
     lambda L, F, x, p: F.binary_cross_entropy_with_logits(p, p, weight=L.ones(4, 3)), "shape"),
    ("BCEWithLogits per-class pos_weight",
     lambda L, F, x, p: F.binary_cross_entropy_with_logits(x, x.sigmoid(), pos_weight=L.ones(3)),
     None),
]


# torch computes this loss but refuses its backward ("size mismatch"); graphgrad differentiates it
FORWARD_ONLY = {"CE (C,) input, (1,) target"}


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_targets_match_torch(case):
    name, fn, match = case

    def loss(L):
        x = L.tensor(LOGITS, requires_grad=True)
        p = L.tensor(P, requires_grad=True)
        out = fn(L, L.nn.functional, x, p)
        if name in FORWARD_ONLY:
            return out
        out.sum().backward()
        return out, x.grad, p.grad

    ours, theirs = check(loss, match)
    if UserWarning in theirs.warned and theirs.error is None:
        assert "target size" in _warning_text(loss) or "deprecated" in _warning_text(loss)


def _warning_text(fn) -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(gg)
    return " ".join(str(w.message) for w in caught)


def test_size_warning_points_at_the_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gg.nn.functional.mse_loss(gg.ones(4, 1), gg.ones(4))
    assert [w.filename for w in caught] == [__file__]


# ---------------------------------------------------------------------- .grad of a non-leaf

GRAD_CASES = [
    ("non-leaf", lambda L, x: (x * 2).grad),
    ("non-leaf after retain_grad", lambda L, x: _retained(x * 2).grad),
    ("non-leaf after backward", lambda L, x: _after_backward(x * 2).grad),
    ("retained non-leaf after backward", lambda L, x: _after_backward(_retained(x * 2)).grad),
    ("leaf", lambda L, x: x.grad),
    ("leaf after backward", lambda L, x: _after_backward(x).grad),
    ("tensor without grad", lambda L, x: (x.detach() * 2).grad),
    ("assign a list", lambda L, x: setattr(x, "grad", [1.0, 2.0, 3.0])),
    ("assign another size", lambda L, x: setattr(x, "grad", L.ones(2))),
    ("assign another dtype", lambda L, x: setattr(x, "grad", L.ones(3, dtype=L.float64))),
    ("assign and read", lambda L, x: (setattr(x, "grad", L.ones(3)), x.grad)[1]),
    ("assign None", lambda L, x: (setattr(x, "grad", None), x.grad)[1]),
]


def _retained(t):
    t.retain_grad()
    return t


def _after_backward(t):
    (t * t).sum().backward()
    return t


@pytest.mark.parametrize("fn", [c[1] for c in GRAD_CASES], ids=[c[0] for c in GRAD_CASES])
def test_grad_attribute_warns_and_checks_like_torch(fn):
    check(lambda L: fn(L, L.tensor([1.0, 2.0, 3.0], requires_grad=True)))


def test_non_leaf_grad_warning_names_retain_grad():
    with pytest.warns(UserWarning, match=r"not a leaf Tensor.*retain_grad"):
        _ = (gg.ones(2, requires_grad=True) * 2).grad
