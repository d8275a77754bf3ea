"""The tensor API against torch: creation, dtypes and promotion, indexing, shapes, reductions,
numerically stable softmax family, in-place updates and conversions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphgrad as gg


def same(ours, theirs, rtol=1e-6, atol=1e-7):
    """Equal values, shape and dtype name."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol, atol)


# ---------------------------------------------------------------------- creation


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.tensor([1.0, 2.0]),
        lambda L: L.tensor([1, 2]),
        lambda L: L.tensor([True, False]),
        lambda L: L.tensor(3.5),
        lambda L: L.tensor([[1, 2], [3, 4]], dtype=L.float64),
        lambda L: L.zeros(2, 3),
        lambda L: L.zeros((2, 3), dtype=L.int64),
        lambda L: L.ones(4),
        lambda L: L.full((2, 2), 7),
        lambda L: L.full((2,), 1.5),
        lambda L: L.full((2,), True),
        lambda L: L.arange(5),
        lambda L: L.arange(1, 4, 0.5),
        lambda L: L.arange(0.0, 1.0, 0.25),
        lambda L: L.linspace(0, 1, 5),
        lambda L: L.eye(3),
        lambda L: L.eye(2, 3),
        lambda L: L.zeros_like(L.ones(2, dtype=L.float64)),
        lambda L: L.ones_like(L.tensor([1, 2])),
        lambda L: L.full_like(L.zeros(3), 2.5),
        lambda L: L.empty(2, 2).zero_(),
        lambda L: L.tensor(np.arange(3, dtype=np.float64)),
        lambda L: L.tensor(np.arange(3)),
        lambda L: L.from_numpy(np.ones(2, dtype=np.float32)),
        lambda L: L.as_tensor([1.5, 2.5], dtype=L.float64),
    ],
)
def test_creation_matches_torch(make):
    same(make(gg), make(torch))


def test_random_creation_shapes_dtypes_and_seeding():
    gg.manual_seed(3)
    a = gg.rand(2, 3)
    gg.manual_seed(3)
    assert a.equal(gg.rand(2, 3))
    assert gg.randn(4, dtype=gg.float64).dtype == gg.float64
    r = gg.randint(0, 5, (100,))
    assert r.dtype == gg.int64 and 0 <= r.min().item() and r.max().item() < 5
    assert gg.randint(3, (2, 2)).shape == (2, 2)
    assert gg.rand_like(gg.zeros(2, 2, dtype=gg.float64)).dtype == gg.float64
    assert 0.0 <= gg.rand(1000).min().item() and gg.rand(1000).max().item() < 1.0


def test_from_numpy_shares_memory():
    array = np.zeros(3, dtype=np.float32)
    t = gg.from_numpy(array)
    array[0] = 5
    assert t[0].item() == 5.0


def test_creation_rejects_bad_input():
    with pytest.raises(TypeError, match="numbers"):
        gg.tensor(["a", "b"])
    with pytest.raises(RuntimeError, match="negative dimension"):
        gg.zeros(-1, 2)
    with pytest.raises(RuntimeError, match="CPU only"):
        gg.zeros(2, device="cuda")


# ---------------------------------------------------------------------- dtypes and promotion

PROMOTIONS = [
    ("float32 + float64 (both with dims)", lambda L: L.ones(2) + L.ones(2, dtype=L.float64)),
    ("float32 + 0-d float64", lambda L: L.ones(2) + L.tensor(1.0, dtype=L.float64)),
    ("int64 + python float", lambda L: L.tensor([1, 2]) + 1.5),
    ("int64 * python int", lambda L: L.tensor([1, 2]) * 3),
    ("int64 / int64", lambda L: L.tensor([1, 2]) / L.tensor([2, 4])),
    ("bool + bool", lambda L: L.tensor([True]) + L.tensor([True])),
    ("bool + python int", lambda L: L.tensor([True, False]) + 2),
    ("int64 + float32", lambda L: L.tensor([1, 2]) + L.ones(2)),
    ("0-d int + float32", lambda L: L.tensor(3) * L.ones(2)),
    ("float32 + numpy float64 array", lambda L: L.ones(2) + np.ones(2)),
    ("python float - tensor", lambda L: 1.0 - L.ones(2, dtype=L.float64)),
    ("python int / int tensor", lambda L: 1 / L.tensor([2, 4])),
    ("int tensor ** 2", lambda L: L.tensor([2, 3]) ** 2),
    ("int tensor ** 0.5", lambda L: L.tensor([4, 9]) ** 0.5),
    ("2 ** float tensor", lambda L: 2 ** L.tensor([1.0, 3.0])),
    ("exp of int tensor", lambda L: L.tensor([0, 1]).exp()),
    ("sum of bool", lambda L: L.tensor([True, True, False]).sum()),
    ("mean of float64", lambda L: L.ones(3, dtype=L.float64).mean()),
    ("comparison with float", lambda L: L.tensor([1, 2]) > 1.5),
    ("where mixing float32 and scalar", lambda L: L.where(L.tensor([True, False]), L.ones(2), 0.0)),
    ("float32 ones cat float64", lambda L: L.cat([L.ones(1), L.ones(1, dtype=L.float64)])),
    ("int floor divide", lambda L: L.tensor([7, -7]) // 2),
    ("int remainder", lambda L: L.tensor([7, -7]) % 3),
]


@pytest.mark.parametrize("name,expr", PROMOTIONS, ids=[p[0] for p in PROMOTIONS])
def test_dtype_promotion_matches_torch(name, expr):
    same(expr(gg), expr(torch))


def test_to_and_conversions():
    x = gg.tensor([1.7, -2.2])
    assert x.to(gg.float64).dtype == gg.float64
    assert x.double().dtype == gg.float64 and x.long().tolist() == [1, -2]
    assert x.to("cpu") is x and x.to(gg.float32) is x
    assert x.to(gg.float32, copy=True) is not x
    assert x.to(gg.ones(1, dtype=gg.float64)).dtype == gg.float64
    assert x.to(dtype=float).dtype == gg.float64
    assert gg.tensor([1, 0]).bool().tolist() == [True, False]
    with pytest.raises(RuntimeError, match="CPU only"):
        x.to("cuda")
    y = gg.tensor([1.0, 2.0], requires_grad=True)
    y.double().sum().backward()
    assert y.grad.dtype == gg.float32 and y.grad.tolist() == [1.0, 1.0]


def test_attributes():
    x = gg.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and x.size() == (2, 3, 4) and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24 and len(x) == 2
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    assert repr(gg.zeros(2).shape) == "graphgrad.Size([2])"
    assert gg.tensor(2.5).item() == 2.5 and float(gg.tensor([3.0])) == 3.0
    assert gg.tensor([[1, 2]]).tolist() == [[1, 2]]
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        gg.ones(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(gg.ones(2))


def test_repr_like_torch():
    assert repr(gg.tensor([1.0, 2.0])) == repr(torch.tensor([1.0, 2.0]))
    assert repr(gg.tensor([1, 2])) == repr(torch.tensor([1, 2]))
    assert repr(gg.tensor([1.5, 2.0])) == repr(torch.tensor([1.5, 2.0]))
    x = gg.tensor([1.0], requires_grad=True)
    assert repr(x) == "tensor([1.], requires_grad=True)"
    assert repr(x * 2) == "tensor([2.], grad_fn=<MulBackward0>)"
    assert repr(gg.tensor([1.0], dtype=gg.float64)) == "tensor([1.], dtype=graphgrad.float64)"


# ---------------------------------------------------------------------- indexing

INDEXES = [
    ("int", lambda L: 1),
    ("negative int", lambda L: -1),
    ("slice", lambda L: slice(1, None)),
    ("step slice", lambda L: (slice(None), slice(None, None, 2))),
    ("None", lambda L: (None, 0)),
    ("Ellipsis", lambda L: (Ellipsis, 1)),
    ("int list", lambda L: [2, 0, 2]),
    ("int tensor", lambda L: L.tensor([[0, 1], [2, 2]])),
    ("bool mask", lambda L: L.tensor([True, False, True])),
    ("2-D bool mask", lambda L: L.arange(12).reshape(3, 4) % 3 == 0),
    ("two int arrays", lambda L: (L.tensor([0, 2, 0]), L.tensor([1, 1, 1]))),
    ("mixed", lambda L: (slice(0, 2), L.tensor([3, 3, 0]))),
    ("0-d tensor", lambda L: L.tensor(1)),
]


@pytest.mark.parametrize("name,make_index", INDEXES, ids=[i[0] for i in INDEXES])
def test_indexing_values_and_gradients_match_torch(name, make_index):
    data = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    results = []
    for L in (gg, torch):
        x = L.tensor(data, requires_grad=True)
        y = x[make_index(L)]
        (y * L.arange(1, y.numel() + 1, dtype=L.float64).reshape(y.shape)).sum().backward()
        results.append((y, x.grad))
    same(results[0][0], results[1][0])
    same(results[0][1], results[1][1])


def test_repeated_indices_accumulate_gradient():
    x = gg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


def test_index_errors_name_index_and_shape():
    with pytest.raises(IndexError, match=r"getitem.*\(3,\)"):
        gg.ones(3)[5]
    with pytest.raises(IndexError, match="float"):
        gg.ones(3)[gg.tensor([0.5])]


def test_setitem_under_no_grad_and_on_plain_tensors():
    x = gg.zeros(3)
    x[1] = 2.0
    x[gg.tensor([True, False, True])] = gg.tensor(5.0)
    assert x.tolist() == [5.0, 2.0, 5.0]


# ---------------------------------------------------------------------- shapes and joining

SHAPE_EXPRS = [
    ("reshape", lambda L, x: x.reshape(3, -1)),
    ("view", lambda L, x: x.view(-1)),
    ("flatten", lambda L, x: x.flatten()),
    ("flatten range", lambda L, x: x.flatten(0, 1)),
    ("squeeze all", lambda L, x: x.reshape(1, 2, 1, 12).squeeze()),
    ("squeeze dim", lambda L, x: x.reshape(1, 2, 1, 12).squeeze(2)),
    ("squeeze tuple", lambda L, x: x.reshape(1, 2, 1, 12).squeeze((0, 2))),
    ("unsqueeze", lambda L, x: x.unsqueeze(-2)),
    ("transpose", lambda L, x: x.transpose(0, 2)),
    ("permute", lambda L, x: x.permute(1, 2, 0)),
    ("expand", lambda L, x: x[:1].expand(3, -1, -1, -1)),
    ("repeat", lambda L, x: x.repeat(1, 2, 1, 2)),
    ("split int", lambda L, x: L.cat(x.split(2, dim=2), 1)),
    ("split sizes", lambda L, x: x.split([1, 3], dim=-1)[1]),
    ("chunk", lambda L, x: x.chunk(3, dim=2)[-1]),
    ("stack", lambda L, x: L.stack([x, x * 2], 1)),
    ("cat neg dim", lambda L, x: L.cat([x, x], -1)),
    ("narrow", lambda L, x: x.narrow(2, 1, 2)),
]


@pytest.mark.parametrize("name,expr", SHAPE_EXPRS, ids=[s[0] for s in SHAPE_EXPRS])
def test_shape_ops_match_torch(name, expr):
    data = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    results = []
    for L in (gg, torch):
        x = L.tensor(data, requires_grad=True)
        y = expr(L, x)
        (y * y).sum().backward()
        results.append((y, x.grad))
    same(results[0][0], results[1][0])
    same(results[0][1], results[1][1])


def test_split_and_chunk_sizes_match_torch():
    for L_args in [(7, 3), (6, 3), (5, 10)]:
        n, k = L_args
        ours = [t.shape[0] for t in gg.arange(n).chunk(k)]
        theirs = [t.shape[0] for t in torch.arange(n).chunk(k)]
        assert ours == theirs
        assert [t.shape[0] for t in gg.arange(n).split(k)] == [
            t.shape[0] for t in torch.arange(n).split(k)
        ]


# ---------------------------------------------------------------------- reductions

REDUCTIONS = [
    ("sum", lambda x: x.sum()),
    ("sum dim", lambda x: x.sum(1)),
    ("sum neg", lambda x: x.sum(-1, keepdim=True)),
    ("sum tuple", lambda x: x.sum((0, 2))),
    ("mean", lambda x: x.mean()),
    ("mean dims", lambda x: x.mean((-1, 0), True)),
    ("var", lambda x: x.var()),
    ("var dim", lambda x: x.var(1, keepdim=True)),
    ("var biased", lambda x: x.var(0, unbiased=False)),
    ("var correction", lambda x: x.var(2, correction=0)),
    ("std", lambda x: x.std()),
    ("std dim", lambda x: x.std(-1)),
    ("prod", lambda x: x.prod()),
    ("prod dim", lambda x: x.prod(1, keepdim=True)),
    ("max", lambda x: x.max()),
    ("max dim values", lambda x: x.max(1).values),
    ("max dim keepdim", lambda x: x.max(-1, keepdim=True)[0]),
    ("min dim", lambda x: x.min(0).values),
    ("amax tuple", lambda x: x.amax((0, 1))),
    ("amin", lambda x: x.amin(-1)),
    ("logsumexp", lambda x: x.logsumexp(1)),
    ("logsumexp tuple", lambda x: x.logsumexp((0, 2), keepdim=True)),
    ("norm", lambda x: x.norm()),
    ("norm dim", lambda x: x.norm(dim=1)),
]


@pytest.mark.parametrize("name,expr", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reductions_match_torch(name, expr):
    data = np.random.default_rng(0).permutation(24).reshape(2, 3, 4) / 10 + 0.5
    results = []
    for L in (gg, torch):
        x = L.tensor(data, requires_grad=True)
        y = expr(x)
        (y * y).sum().backward()
        results.append((y, x.grad))
    same(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    same(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_max_with_dim_returns_values_and_indices():
    x = gg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.5]])
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.5] and indices.tolist() == [1, 2]
    assert x.argmax().item() == 5 and x.argmin(dim=1).tolist() == [0, 1]


def test_ties_share_gradient_like_torch():
    for expr in [lambda x: x.max(), lambda x: x.amax(0), lambda x: x.max(0).values]:
        results = []
        for L in (gg, torch):
            x = L.tensor([2.0, 1.0, 2.0], requires_grad=True)
            expr(x).sum().backward()
            results.append(x.grad.tolist())
        assert results[0] == results[1]


def test_bad_dims_raise_index_error():
    with pytest.raises(IndexError, match=r"sum.*range of \[-2, 1\], but got 2"):
        gg.ones(2, 3).sum(2)
    with pytest.raises(RuntimeError, match="multiple times"):
        gg.ones(2, 3).sum((1, -1))


# ---------------------------------------------------------------------- matmul


@pytest.mark.parametrize(
    "shapes",
    [
        ((3,), (3,)),
        ((2, 3), (3,)),
        ((3,), (3, 4)),
        ((2, 3), (3, 4)),
        ((5, 2, 3), (3, 4)),
        ((3,), (5, 3, 4)),
        ((5, 2, 3), (3,)),
        ((2, 1, 2, 3), (4, 3, 2)),
    ],
)
def test_matmul_shapes_and_gradients_match_torch(shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    results = []
    for L in (gg, torch):
        a, b = (L.tensor(x, requires_grad=True) for x in arrays)
        y = a @ b
        (y * y).sum().backward()
        results.append((y, a.grad, b.grad))
    for ours, theirs in zip(*results):
        same(ours, theirs, rtol=1e-12, atol=1e-12)


def test_matmul_error_names_the_shapes():
    with pytest.raises(
        RuntimeError, match=r"matmul: \(3, 4\) @ \(5, 2\): inner dimensions differ \(4 != 5\)"
    ):
        gg.ones(3, 4) @ gg.ones(5, 2)


# ---------------------------------------------------------------------- stable softmax family


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_is_finite_at_large_logits_and_minus_inf(fn):
    data = np.array(
        [[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [0.0, -np.inf, 1.0], [1e4, 1e4, -np.inf]]
    )
    results = []
    for L in (gg, torch):
        x = L.tensor(data, requires_grad=True)
        y = getattr(x, fn)(dim=1)
        mask = L.isfinite(y)
        (L.where(mask, y, 0.0) * L.arange(12, dtype=L.float32).reshape(4, 3)).sum().backward()
        results.append((y, x.grad))
    same(results[0][0], results[1][0])
    same(results[0][1], results[1][1])
    assert np.isfinite(results[0][1].numpy()).all()


def test_logsumexp_is_finite_at_large_values_and_all_minus_inf_rows():
    data = np.array([[1e4, 1e4], [-1e4, -1e4], [-np.inf, -np.inf], [0.0, -np.inf]])
    same(gg.tensor(data).logsumexp(1), torch.tensor(data).logsumexp(1))


# ---------------------------------------------------------------------- elementwise helpers

ELEMENTWISE = [
    ("clamp min only", lambda L, x: x.clamp(min=0.5)),
    ("clamp max only", lambda L, x: x.clamp(max=0.5)),
    (
        "clamp tensor bounds",
        lambda L, x: x.clamp(L.zeros(4, dtype=L.float64), L.ones(4, dtype=L.float64)),
    ),
    ("maximum", lambda L, x: L.maximum(x, x.flip(0))),
    ("flip", lambda L, x: x.flip(0)),
    ("where scalar", lambda L, x: L.where(x > 0, x, 0.0)),
    ("square", lambda L, x: x.square()),
    ("reciprocal", lambda L, x: (x + 3).reciprocal()),
    ("abs", lambda L, x: x.abs()),
    ("sub alpha", lambda L, x: x.sub(x * x, alpha=2)),
    ("add alpha", lambda L, x: x.add(1.0, alpha=3)),
    ("div trunc", lambda L, x: (x * 7).div(2, rounding_mode="trunc")),
    ("div floor", lambda L, x: (x * 7).div(2, rounding_mode="floor")),
]


@pytest.mark.parametrize("name,expr", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_helpers_match_torch(name, expr):
    data = np.array([-1.5, -0.25, 0.75, 2.0])
    same(expr(gg, gg.tensor(data)), expr(torch, torch.tensor(data)))


# ---------------------------------------------------------------------- in place


def test_in_place_updates_under_no_grad_match_torch():
    results = []
    for L in (gg, torch):
        w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        (w * w).sum().backward()
        with L.no_grad():
            w.sub_(0.1 * w.grad)
            w.mul_(2).add_(1, alpha=0.5).div_(3)
            w.clamp_(0.0, 1.5)
        w.grad.zero_()
        results.append((w.detach().clone(), w.grad))
        v = L.zeros(3)
        v.fill_(2.0)
        v.copy_(L.tensor([1.0, 2.0, 3.0]))
        results[-1] += (v,)
    for ours, theirs in zip(*results):
        same(ours, theirs)


def test_in_place_on_leaf_requiring_grad_raises():
    w = gg.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.add_(1)


def test_augmented_assignment_rebinds_graph_tensors():
    x = gg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += 1  # torch records this in place; graphgrad rebinds y to a new node with the same value
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_numpy_array_on_the_left_promotes_like_a_tensor():
    # torch refuses ndarray * Tensor; graphgrad treats the array as torch treats from_numpy(array)
    same(np.full(2, 2.0) * gg.ones(2), torch.from_numpy(np.full(2, 2.0)) * torch.ones(2))


def test_numpy_interop():
    t = gg.tensor([1.0, 2.0])
    assert isinstance(np.asarray(t), np.ndarray)
    assert (np.ones(2) + t).__class__ is gg.Tensor
    with pytest.raises(RuntimeError, match="detach"):
        gg.ones(1, requires_grad=True).numpy()


def test_devices_as_torch_code_names_them():
    assert gg.device("cpu") == "cpu" and gg.ones(1).device == torch.ones(1).device.type
    assert not gg.cuda.is_available()
    model = gg.nn.Linear(2, 2)
    assert model.to(gg.device("cpu")) is model and gg.ones(2).to(device="cpu").shape == (2,)
    for move in (lambda: gg.ones(1).to(gg.device("cuda:0")), lambda: gg.ones(1).cuda(),
                 lambda: model.to("cuda")):
        with pytest.raises(RuntimeError, match="CPU only; device 'cuda"):
            move()


def test_tensor_constructor_is_float32_like_torch():
    same(gg.Tensor([1, 2]), torch.Tensor([1, 2]))


@pytest.mark.parametrize("weight", [0.25, 0.5, 0.75, 0.9])
def test_lerp_takes_torchs_formula_on_each_side_of_one_half(weight):
    rng = np.random.default_rng(3)
    start, end = rng.standard_normal(50).astype(np.float32), rng.standard_normal(50).astype(
        np.float32)
    ours = gg.tensor(start).lerp(gg.tensor(end), weight).numpy()
    theirs = torch.tensor(start).lerp(torch.tensor(end), weight).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)  # torch's kernel fuses (FMA)


def test_lerp_allclose_and_square_follow_torchs_dtype_rules():
    assert gg.square(gg.tensor([True, False])).dtype == gg.int64  # as torch: pow's promotion
    with pytest.raises(RuntimeError, match="expected dtype float32 for `end`"):
        gg.ones(2).lerp(gg.ones(2, dtype=gg.float64), 0.3)
    with pytest.raises(RuntimeError, match="float32 did not match float64"):
        gg.ones(2).allclose(gg.ones(2, dtype=gg.float64))


@pytest.mark.parametrize("mat2", [(1, 4, 5), (2, 5, 5), (3, 4, 5)])
def test_bmm_never_broadcasts(mat2):
    for lib in (gg, torch):
        with pytest.raises(RuntimeError, match="Expected size for first two dimensions of batch2"):
            lib.bmm(lib.ones(2, 3, 4), lib.ones(*mat2))
