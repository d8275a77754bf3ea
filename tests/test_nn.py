"""graphgrad.nn against torch.nn (the oracle): same architecture, same weights, same results."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.nn as nn
import graphgrad.nn.functional as F

TOL = {gg.float64: dict(rtol=1e-10, atol=1e-12), gg.float32: dict(rtol=1e-5, atol=1e-5)}
TORCH_DTYPE = {gg.float64: torch.float64, gg.float32: torch.float32}


def as_numpy(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else t.numpy(force=True)


def close(ours, theirs, dtype=gg.float64) -> None:
    np.testing.assert_allclose(as_numpy(ours), as_numpy(theirs), **TOL[dtype])


def pair(array: np.ndarray, requires_grad: bool = True):
    """The same values as a graphgrad and a torch leaf."""
    return (
        gg.tensor(array, requires_grad=requires_grad),
        torch.tensor(array, requires_grad=requires_grad),
    )


def copy_weights(ours, theirs) -> None:
    """torch's module gets graphgrad's weights (and dtype) through the state dicts."""
    theirs.load_state_dict(
        {k: torch.from_numpy(np.array(v.numpy())) for k, v in ours.state_dict().items()}
    )


def make_net(lib):
    """One nested architecture, built from graphgrad or from torch."""

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = lib.nn.Sequential(
                lib.nn.Linear(4, 6), lib.nn.BatchNorm1d(6), lib.nn.GELU(), lib.nn.Dropout(0.1)
            )
            self.blocks = lib.nn.ModuleList([lib.nn.Linear(6, 6), lib.nn.LayerNorm(6)])
            self.heads = lib.nn.ModuleDict(
                {
                    "a": lib.nn.Linear(6, 3),
                    "b": lib.nn.Sequential(lib.nn.Linear(6, 2), lib.nn.Tanh()),
                }
            )
            self.register_buffer("scale", lib.ones(3))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)

        def forward(self, x):
            x = self.body(x)
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](x) * self.scale, self.heads["b"](x)

    return Net()


# ---------------------------------------------------------------------- Module and containers


def test_nested_model_names_state_dict_and_repr_match_torch():
    ours, theirs = make_net(gg), make_net(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert repr(ours) == repr(theirs)
    prefixed = [n for n, _ in ours.named_parameters(prefix="m", recurse=True)]
    assert prefixed == [n for n, _ in theirs.named_parameters(prefix="m")]
    assert [n for n, _ in ours.blocks.named_parameters(recurse=False)] == []


@pytest.mark.parametrize("dtype", [gg.float64, gg.float32])
def test_nested_model_forward_and_gradients_match_torch(dtype):
    ours, theirs = make_net(gg).to(dtype), make_net(torch)
    copy_weights(ours, theirs)
    theirs.to(TORCH_DTYPE[dtype])
    x = np.random.default_rng(0).normal(size=(5, 4))
    for train in (True, False):
        ours.train(train), theirs.train(train)
        ours.body[3].p = theirs.body[3].p = 0.0  # dropout off: its random masks differ
        a, b = ours(gg.tensor(x, dtype=dtype)), theirs(torch.tensor(x, dtype=TORCH_DTYPE[dtype]))
        for o, t in zip(a, b):
            close(o, t, dtype)
        ((a[0] ** 2).sum() + a[1].sum()).backward()
        ((b[0] ** 2).sum() + b[1].sum()).backward()
        for p, q in zip(ours.parameters(), theirs.parameters()):
            close(p.grad, q.grad, dtype)
        ours.zero_grad(), theirs.zero_grad()
    for buf, theirs_buf in zip(ours.state_dict().values(), theirs.state_dict().values()):
        close(buf, theirs_buf, dtype)


def test_load_state_dict_strict_errors_and_result():
    ours, theirs = make_net(gg), make_net(torch)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert repr(ours.load_state_dict(state)) == "<All keys matched successfully>"
    close(ours.heads["a"].weight, theirs.heads["a"].weight, gg.float32)
    broken = dict(state)
    del broken["body.0.weight"], broken["heads.b.0.bias"]
    broken["heads.c.weight"] = np.zeros(1)
    broken["extra"] = np.zeros(1)
    t_state = {k: torch.from_numpy(np.asarray(v)) for k, v in broken.items()}
    result, expected = (
        ours.load_state_dict(broken, strict=False),
        theirs.load_state_dict(t_state, strict=False),
    )
    assert result.missing_keys == expected.missing_keys
    assert result.unexpected_keys == expected.unexpected_keys
    with pytest.raises(RuntimeError) as err:
        ours.load_state_dict(broken)
    message = str(err.value)
    assert message.startswith("Error(s) in loading state_dict for Net:")
    assert 'Missing key(s) in state_dict: "body.0.weight", "heads.b.0.bias".' in message
    assert 'Unexpected key(s) in state_dict: "extra", "heads.c.weight".' in message
    state["blocks.0.bias"] = np.zeros(5)
    with pytest.raises(RuntimeError, match="size mismatch for blocks.0.bias"):
        ours.load_state_dict(state)


def test_parameter_is_a_leaf_sharing_memory_and_prints_like_torch():
    data = gg.tensor([1.0, 2.0])
    p = nn.Parameter(data)
    assert isinstance(p, gg.Tensor) and p.is_leaf and p.requires_grad
    assert p._data is data._data
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    assert repr(p) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))
    assert not nn.Parameter(gg.ones(1), requires_grad=False).requires_grad
    assert type(p * 2) is gg.Tensor  # results of ops are plain tensors, as in torch


def test_attribute_assignment_registers_and_checks():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        m.weight = gg.ones(2, 2)
    m.weight = None
    assert [n for n, _ in m.named_parameters()] == ["bias"]
    m.extra = nn.Parameter(gg.zeros(1))
    m.child = nn.ReLU()
    m.register_buffer("stat", gg.zeros(1))
    m.stat = gg.ones(1)
    assert list(m.state_dict()) == ["bias", "extra", "stat"]
    assert [n for n, _ in m.named_children()] == ["child"]
    del m.child
    assert list(m.children()) == []
    with pytest.raises(AttributeError, match="has no attribute 'missing'"):
        m.missing  # noqa: B018
    with pytest.raises(KeyError):
        m.register_buffer("a.b", None)


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_apply_requires_grad_zero_grad_and_dtype():
    model = nn.Sequential(nn.Linear(3, 2), nn.Dropout(), nn.Sequential(nn.BatchNorm1d(2)))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    assert model.train() is model and model[2][0].training
    with pytest.raises(ValueError):
        model.train("yes")
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Dropout", "BatchNorm1d", "Sequential", "Sequential"]
    model(gg.randn(4, 3)).sum().backward()
    model.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    weight = model[0].weight
    model.double()
    assert model[0].weight is weight and weight.dtype == gg.float64 and weight.is_leaf
    assert model[2][0].running_mean.dtype == gg.float64
    assert model[2][0].num_batches_tracked.dtype == gg.int64
    model.float()
    assert weight.dtype == gg.float32
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


def test_forward_hooks_and_missing_forward():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    calls = []
    handle = model[1].register_forward_hook(lambda m, args, out: calls.append(out.shape) or out * 0)
    assert not model(gg.ones(3, 2)).any()
    handle.remove()
    model(gg.ones(1, 2))
    assert calls == [gg.Size([3, 2])]
    with pytest.raises(NotImplementedError):
        nn.ModuleList([nn.ReLU()])(gg.ones(1))


def test_sequential_module_list_and_dict_behave_like_torch():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert isinstance(seq[1:], nn.Sequential) and len(seq[1:]) == 2
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    seq.append(nn.Sigmoid())
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"]
    with pytest.raises(IndexError):
        seq[5]
    lists = [lib.nn.ModuleList([lib.nn.Linear(2, 2)] * 3 + [lib.nn.ReLU()]) for lib in (gg, torch)]
    assert repr(lists[0]) == repr(lists[1])
    dicts = [
        lib.nn.ModuleDict({"x": lib.nn.Identity(), "y": lib.nn.Flatten()}) for lib in (gg, torch)
    ]
    assert repr(dicts[0]) == repr(dicts[1])
    assert "x" in dicts[0] and list(dicts[0]) == ["x", "y"] and len(dicts[0]) == 2


def test_layer_reprs_match_torch():
    def layers(lib):
        n = lib.nn
        return [
            n.Linear(3, 2, bias=False), n.ReLU(), n.LeakyReLU(0.2), n.Sigmoid(), n.Tanh(),
            n.GELU(), n.GELU("tanh"), n.Softmax(dim=1), n.LogSoftmax(dim=-1), n.Dropout(0.3),
            n.BatchNorm1d(4, momentum=None, affine=False), n.LayerNorm((2, 3), eps=1e-6),
            n.Embedding(10, 3, padding_idx=-1), n.Identity(), n.Flatten(0, 1), n.MSELoss(),
            n.CrossEntropyLoss(label_smoothing=0.1), n.BCEWithLogitsLoss(),
        ]  # fmt: skip

    for ours, theirs in zip(layers(gg), layers(torch)):
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())


# ---------------------------------------------------------------------- layers vs torch

LAYERS = [
    ("Linear", (5, 3), {}, (4, 5)),
    ("Linear", (5, 3), {"bias": False}, (2, 4, 5)),
    ("ReLU", (), {}, (4, 5)),
    ("LeakyReLU", (0.2,), {}, (4, 5)),
    ("Sigmoid", (), {}, (4, 5)),
    ("Tanh", (), {}, (4, 5)),
    ("GELU", (), {}, (4, 5)),
    ("GELU", (), {"approximate": "tanh"}, (4, 5)),
    ("Softmax", (1,), {}, (4, 5)),
    ("LogSoftmax", (-1,), {}, (2, 3, 5)),
    ("Flatten", (), {}, (2, 3, 4)),
    ("Identity", (), {}, (3,)),
    ("BatchNorm1d", (5,), {}, (6, 5)),
    ("BatchNorm1d", (3,), {}, (4, 3, 5)),
    ("BatchNorm1d", (5,), {"affine": False}, (6, 5)),
    ("LayerNorm", (5,), {}, (4, 5)),
    ("LayerNorm", ((3, 5),), {"bias": False}, (2, 3, 5)),
]


@pytest.mark.parametrize("dtype", [gg.float64, gg.float32])
@pytest.mark.parametrize("name,args,kwargs,shape", LAYERS)
def test_layer_forward_and_gradients_match_torch(name, args, kwargs, shape, dtype):
    rng = np.random.default_rng(1)
    ours = getattr(nn, name)(*args, **kwargs).to(dtype)
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(TORCH_DTYPE[dtype])
    with gg.no_grad():
        for p in ours.parameters():  # not the default ones and zeros
            p.copy_(rng.normal(size=p.shape))
    copy_weights(ours, theirs)
    x = rng.normal(size=shape).astype(np.float64 if dtype == gg.float64 else np.float32)
    upstream = rng.normal(size=ours(gg.tensor(x)).shape).astype(x.dtype)
    xo, xt = pair(x)
    out_o, out_t = ours(xo), theirs(xt)
    close(out_o, out_t, dtype)
    (out_o * gg.tensor(upstream)).sum().backward()
    (out_t * torch.tensor(upstream)).sum().backward()
    close(xo.grad, xt.grad, dtype)
    for p, q in zip(ours.parameters(), theirs.parameters()):
        close(p.grad, q.grad, dtype)


def test_gelu_exact_matches_torch_far_out_and_erf_to_float64_accuracy():
    x = np.concatenate([np.linspace(-30, 30, 6001), [-1e3, 0.0, 0.46875, 4.0, 1e3]])
    xo, xt = pair(x)
    F.gelu(xo).sum().backward()
    torch.nn.functional.gelu(xt).sum().backward()
    np.testing.assert_allclose(
        as_numpy(F.gelu(xo)), as_numpy(torch.nn.functional.gelu(xt)), rtol=1e-14, atol=1e-15
    )
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-13, atol=1e-15)
    erf = F.erf(gg.tensor(x)).numpy()
    np.testing.assert_allclose(erf, [math.erf(v) for v in x], rtol=1e-15, atol=1e-16)


def test_embedding_forward_and_padding_gradient_match_torch():
    ours = nn.Embedding(7, 3, padding_idx=2)
    theirs = torch.nn.Embedding(7, 3, padding_idx=2)
    assert not ours.weight[2].any()
    copy_weights(ours, theirs)
    idx = np.array([[0, 2, 6], [2, 2, 1]])
    out_o, out_t = ours(gg.tensor(idx)), theirs(torch.tensor(idx))
    close(out_o, out_t, gg.float32)
    (out_o**2).sum().backward()
    (out_t**2).sum().backward()
    close(ours.weight.grad, theirs.weight.grad, gg.float32)
    assert not ours.weight.grad[2].any()


def test_dropout_train_eval_and_scaling():
    gg.manual_seed(0)
    x = gg.ones(200, 100, requires_grad=True)
    layer = nn.Dropout(0.25)
    out = layer(x)
    kept = out.detach().numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out.detach().numpy()[kept], 1 / 0.75, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.detach().numpy())
    assert layer.eval()(x) is x
    assert F.dropout(x, 0.0) is x and not F.dropout(x, 1.0).any()
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


@pytest.mark.parametrize("momentum,shape", [(0.1, (8, 4)), (None, (8, 4)), (0.3, (5, 4, 3))])
def test_batch_norm_running_statistics_match_torch(momentum, shape):
    ours, theirs = (
        nn.BatchNorm1d(4, momentum=momentum).double(),
        torch.nn.BatchNorm1d(4, momentum=momentum).double(),
    )
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.normal(2.0, 3.0, size=shape)
        ours(gg.tensor(x)), theirs(torch.tensor(x))
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        close(a, b)
    ours.eval(), theirs.eval()
    x = rng.normal(size=shape)
    close(ours(gg.tensor(x)), theirs(torch.tensor(x)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours.train()(gg.ones(1, 4))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        ours(gg.ones(2, 4, 1, 1))


# ---------------------------------------------------------------------- losses vs torch


def check_loss(fn_ours, fn_theirs, inputs, non_grad=(), dtype=gg.float64):
    """Run both losses on the same arrays; compare values and the gradients of the float
    inputs that are not listed in ``non_grad``."""
    ours, theirs = [], []
    for i, a in enumerate(inputs):
        if a is None:
            ours.append(None), theirs.append(None)
            continue
        grad = a.dtype.kind == "f" and i not in non_grad
        o, t = pair(a, requires_grad=grad)
        ours.append(o), theirs.append(t)
    lo, lt = fn_ours(*ours), fn_theirs(*theirs)
    close(lo, lt, dtype)
    upstream = np.random.default_rng(3).normal(size=lt.shape)
    (lo * gg.tensor(upstream, dtype=lo.dtype)).sum().backward()
    (lt * torch.tensor(upstream, dtype=lt.dtype)).sum().backward()
    for o, t in zip(ours, theirs):
        if o is not None and o.requires_grad:
            close(o.grad, t.grad, dtype)


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name,kwargs", [("MSELoss", {}), ("L1Loss", {}), ("HuberLoss", {"delta": 0.7})]
)
def test_regression_losses_match_torch(name, kwargs, reduction):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    ours = getattr(nn, name)(reduction=reduction, **kwargs)
    theirs = getattr(torch.nn, name)(reduction=reduction, **kwargs)
    check_loss(ours, theirs, [x, y])
    assert getattr(nn, name)().reduction == "mean"


CE_CASES = [
    {},
    {"weight": True},
    {"ignore_index": 2},
    {"weight": True, "ignore_index": 1},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.2, "weight": True, "ignore_index": 0},
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", CE_CASES)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
def test_cross_entropy_and_nll_match_torch(case, reduction, shape):
    rng = np.random.default_rng(5)
    logits = rng.normal(size=shape) * 3
    target = rng.integers(0, 4, size=(shape[0],) + shape[2:])
    weight = rng.uniform(0.5, 2.0, size=4) if case.get("weight") else None
    kwargs = {k: v for k, v in case.items() if k != "weight"}

    def loss(functional):
        return lambda x, t, w: functional.cross_entropy(x, t, w, reduction=reduction, **kwargs)

    check_loss(loss(F), loss(torch.nn.functional), [logits, target, weight], non_grad=(2,))
    if "label_smoothing" not in case:
        log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        w_o, w_t = (None, None) if weight is None else (gg.tensor(weight), torch.tensor(weight))
        nll_o = nn.NLLLoss(w_o, reduction=reduction, **kwargs)
        nll_t = torch.nn.NLLLoss(w_t, reduction=reduction, **kwargs)
        check_loss(nll_o, nll_t, [log_p, target])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_with_probability_targets_and_1d_input(reduction, smoothing):
    rng = np.random.default_rng(6)
    logits, probs = rng.normal(size=(5, 3)), rng.dirichlet(np.ones(3), size=5)
    weight = rng.uniform(0.5, 2.0, size=3)
    for w in (None, weight):
        check_loss(
            lambda x, t, w=w: F.cross_entropy(
                x,
                t,
                None if w is None else gg.tensor(w),
                reduction=reduction,
                label_smoothing=smoothing,
            ),
            lambda x, t, w=w: torch.nn.functional.cross_entropy(
                x,
                t,
                None if w is None else torch.tensor(w),
                reduction=reduction,
                label_smoothing=smoothing,
            ),
            [logits, probs],
        )
    check_loss(
        lambda x, t: F.cross_entropy(x, t, reduction=reduction),
        lambda x, t: torch.nn.functional.cross_entropy(x, t, reduction=reduction),
        [logits[0], np.array(2)],
    )


def test_cross_entropy_stays_finite_at_large_logits_and_checks_targets():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    target = np.array([1, 0])
    for dtype in (gg.float64, gg.float32):
        x = logits.astype(np.float64 if dtype == gg.float64 else np.float32)
        check_loss(F.cross_entropy, torch.nn.functional.cross_entropy, [x, target], dtype=dtype)
    with pytest.raises(IndexError, match="out of bounds"):
        F.cross_entropy(gg.tensor(logits), gg.tensor([0, 3]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_matches_torch_including_p_equal_0_and_1(reduction):
    p = np.array([[0.0, 1.0, 0.3], [0.999, 1e-8, 0.5]])
    y = np.array([[1.0, 0.0, 0.2], [1.0, 0.0, 1.0]])
    weight = np.array([0.5, 2.0, 1.5])
    for w in (None, weight):
        check_loss(
            lambda a, b, w=w: F.binary_cross_entropy(
                a, b, None if w is None else gg.tensor(w), reduction=reduction
            ),
            lambda a, b, w=w: torch.nn.functional.binary_cross_entropy(
                a, b, None if w is None else torch.tensor(w), reduction=reduction
            ),
            [p, y],
            non_grad=(1,),
        )
    value = nn.BCELoss(reduction=reduction)(gg.tensor(p), gg.tensor(y))
    assert np.isfinite(value.numpy()).all()
    inner = np.array([0.2, 0.7])  # the target's gradient is finite only inside (0, 1)
    check_loss(
        nn.BCELoss(reduction=reduction),
        torch.nn.BCELoss(reduction=reduction),
        [inner, inner[::-1].copy()],
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch_at_large_logits(reduction):
    x = np.array([[1e4, -1e4, 0.0, 2.5], [-3.0, 40.0, -40.0, 0.1]])
    y = np.array([[0.0, 1.0, 1.0, 0.3], [1.0, 0.0, 1.0, 0.5]])
    weight, pos_weight = np.array([1.0, 0.5, 2.0, 1.5]), np.array([3.0, 1.0, 0.5, 2.0])
    for w, pw in [(None, None), (weight, None), (None, pos_weight), (weight, pos_weight)]:

        def make(lib, w=w, pw=pw):
            def as_t(a):
                return None if a is None else lib.tensor(a)

            return lib.nn.BCEWithLogitsLoss(as_t(w), reduction=reduction, pos_weight=as_t(pw))

        check_loss(make(gg), make(torch), [x, y])


# ---------------------------------------------------------------------- init


def test_calculate_gain_and_fans_match_torch():
    for name in ["linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"]:
        assert nn.init.calculate_gain(name) == torch.nn.init.calculate_gain(name)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == torch.nn.init.calculate_gain(
        "leaky_relu", 0.2
    )
    with pytest.raises(ValueError):
        nn.init.calculate_gain("swish")
    for shape in [(3, 4), (5, 2, 3), (6, 4, 3, 2)]:
        assert nn.init._calculate_fan_in_and_fan_out(
            gg.empty(shape)
        ) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    with pytest.raises(ValueError):
        nn.init._calculate_fan_in_and_fan_out(gg.empty(3))


def uniform_bound_and_std(sample: np.ndarray, bound: float) -> None:
    assert np.abs(sample).max() <= bound and np.abs(sample).max() > 0.99 * bound
    assert abs(sample.std() / (bound / math.sqrt(3)) - 1) < 0.02
    assert abs(sample.mean()) < 0.02 * bound


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_and_xavier_distributions(mode):
    w = gg.empty(300, 200, 2)
    fan = 400 if mode == "fan_in" else 600
    gain = torch.nn.init.calculate_gain("relu")
    uniform_bound_and_std(
        nn.init.kaiming_uniform_(w, mode=mode, nonlinearity="relu").numpy(),
        gain * math.sqrt(3 / fan),
    )
    gain = torch.nn.init.calculate_gain("leaky_relu", 0.3)
    std = nn.init.kaiming_normal_(w, a=0.3, mode=mode).numpy().std()
    assert abs(std / (gain / math.sqrt(fan)) - 1) < 0.02
    uniform_bound_and_std(nn.init.xavier_uniform_(w, gain=2.0).numpy(), 2.0 * math.sqrt(6 / 1000))
    assert abs(nn.init.xavier_normal_(w).numpy().std() / math.sqrt(2 / 1000) - 1) < 0.02
    with pytest.raises(ValueError):
        nn.init.kaiming_uniform_(w, mode="fan_avg")


def test_other_inits_and_generator():
    w = gg.empty(200, 300)
    t = torch.nn.init.trunc_normal_(torch.empty(200, 300), 0.5, 2.0, -1.0, 3.0).numpy()
    ours = nn.init.trunc_normal_(w, 0.5, 2.0, -1.0, 3.0).numpy()
    assert ours.min() >= -1.0 and ours.max() <= 3.0
    assert abs(ours.std() - t.std()) < 0.02 and abs(ours.mean() - t.mean()) < 0.02
    assert abs(nn.init.normal_(w, 1.0, 0.5).numpy().std() - 0.5) < 0.01
    assert (nn.init.constant_(w, 0.25).numpy() == 0.25).all()
    assert (nn.init.ones_(w).numpy() == 1).all() and not nn.init.zeros_(w).any()
    a = nn.init.uniform_(gg.empty(5), generator=gg.Generator().manual_seed(3))
    b = nn.init.uniform_(gg.empty(5), generator=gg.Generator().manual_seed(3))
    assert a.equal(b)
    p = nn.Parameter(gg.empty(3, 3))
    nn.init.kaiming_uniform_(p)  # a parameter requiring grad: init runs under no_grad
    assert p.is_leaf and p.grad_fn is None


def test_default_layer_initialisation_matches_torch_formulas():
    layer = nn.Linear(400, 500)
    bound = 1 / math.sqrt(400)
    uniform_bound_and_std(layer.weight.detach().numpy(), bound)
    assert np.abs(layer.bias.detach().numpy()).max() <= bound
    emb = nn.Embedding(300, 300).weight.detach().numpy()
    assert abs(emb.std() - 1) < 0.01 and abs(emb.mean()) < 0.01
    norm = nn.LayerNorm(4)
    assert norm.weight.tolist() == [1.0] * 4 and norm.bias.tolist() == [0.0] * 4


# ---------------------------------------------------------------------- utils and summary


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(7)
    grads = [rng.normal(size=s) for s in [(3, 4), (4,), (2, 2, 2)]]
    ours = [nn.Parameter(gg.zeros(g.shape, dtype=gg.float64)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = gg.tensor(g), torch.tensor(g)
    ours.append(nn.Parameter(gg.zeros(2, dtype=gg.float64)))  # no grad: skipped
    total_o = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    close(total_o, total_t)
    for o, t in zip(ours, theirs):
        close(o.grad, t.grad)


def test_clip_grad_errors_value_and_vectors():
    p = nn.Parameter(gg.zeros(2))
    p.grad = gg.tensor([float("nan"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert nn.utils.clip_grad_norm_([nn.Parameter(gg.zeros(1))], 1.0).item() == 0.0
    p.grad = gg.tensor([-3.0, 0.5])
    nn.utils.clip_grad_value_(p, 1.0)
    assert p.grad.tolist() == [-1.0, 0.5]
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (11,)
    nn.utils.vector_to_parameters(gg.arange(11.0), model.parameters())
    assert model[1].bias.tolist() == [10.0] and model[0].weight.shape == (2, 3)


def test_summary_counts_parameters():
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)
    )
    model[1].requires_grad_(False)
    summary = nn.summary(model, (3, 4))
    assert summary.total_params == sum(p.numel() for p in model.parameters()) == 104 + 16 + 27
    assert summary.trainable_params == 16 + 27
    assert [row[1] for row in summary.rows] == [
        "Flatten",
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Linear",
    ]
    assert summary.rows[1][2] == [1, 8] and sum(r[3] for r in summary.rows) == summary.total_params
    text = str(summary)
    assert "Total params: 147" in text and "Trainable params: 43" in text
    assert model.training and int(model[2].num_batches_tracked) == 0
    emb = nn.summary(nn.Sequential(nn.Embedding(10, 4)), (5,), dtype=gg.int64, batch_size=2)
    assert emb.rows == [("0", "Embedding", [2, 5, 4], 40)]


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 1]])
    assert (
        F.one_hot(gg.tensor(labels)).tolist()
        == torch.nn.functional.one_hot(torch.tensor(labels)).tolist()
    )
    assert F.one_hot(gg.tensor(labels), 6).shape == (2, 2, 6)


def test_assigning_an_existing_name_keeps_its_place_as_in_torch():
    """``lin.weight = Parameter(...)`` and ``layers[0] = ...`` replace in place: the state
    dict's order, and a ModuleList's entries, are torch's."""
    seen = []
    for lib in (gg, torch):
        lin = lib.nn.Linear(2, 3)
        lin.weight = lib.nn.Parameter(lib.zeros(3, 2))
        layers = lib.nn.ModuleList([lib.nn.ReLU(), lib.nn.Tanh()])
        layers[0] = lib.nn.Sigmoid()
        layers[1] = lib.nn.GELU()
        seen.append((list(lin.state_dict()), [type(m).__name__ for m in layers]))
    assert seen[0] == seen[1] == (["weight", "bias"], ["Sigmoid", "GELU"])
