"""The Poisson and Gaussian NLL, margin, hinge, soft-margin, cosine-embedding, triplet and
multi-margin losses, interpolate and the Upsample layers, Bilinear, ConvTranspose1d, Dropout1d
and the parameter containers against torch (the oracle), beyond what
tests/test_interop_modules.py's cases cover: the functional forms under each reduction, edge
values, torch's errors, the deprecated size_average/reduce arguments and reprs."""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_errors import assert_same_error

import graphgrad as gg
import graphgrad.nn.functional as F

TOL = dict(rtol=1e-12, atol=1e-12)


def run(lib, fn: str, arrays: list, kwargs: dict, no_grad: tuple) -> tuple:
    """``lib``'s functional ``fn`` on ``arrays`` (float ones take gradients unless their index
    is in ``no_grad``) and ``kwargs``, then backward of a fixed random weighting of the output:
    the output and the input gradients."""
    functional = F if lib is gg else TF
    inputs = [lib.tensor(a, requires_grad=a.dtype.kind == "f" and i not in no_grad)
              for i, a in enumerate(arrays)]  # fmt: skip
    named = {k: lib.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = getattr(functional, fn)(*inputs, **named)
    weights = np.random.default_rng(5).standard_normal(tuple(out.shape))
    (out * lib.tensor(weights)).sum().backward()
    return [out.detach().numpy()] + [t.grad.numpy() for t in inputs if t.requires_grad]


def assert_matches_torch(fn: str, arrays: list, no_grad: tuple = (), **kwargs) -> None:
    ours, theirs = run(gg, fn, arrays, kwargs, no_grad), run(torch, fn, arrays, kwargs, no_grad)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOL)


rng = np.random.default_rng(0)
normal = rng.standard_normal


def signs(*shape):
    return rng.choice([-1.0, 1.0], shape)


def counts(*shape):
    return rng.integers(0, 6, shape) * 1.0


REDUCTIONS = ["none", "mean", "sum"]

# (function, arrays, indices of arrays without gradients, keyword arguments)
FUNCTIONAL = [
    ("poisson_nll_loss", [normal((4, 3)), counts(4, 3)], (1,), {}),
    ("poisson_nll_loss", [normal((4, 3)), counts(4, 3)], (), dict(full=True)),
    ("poisson_nll_loss", [rng.uniform(0.0, 3.0, (4, 3)), counts(4, 3)], (1,),
     dict(log_input=False, full=True, eps=0.1)),
    ("poisson_nll_loss", [normal((5,)), counts(1)], (1,), {}),  # target broadcast
    ("gaussian_nll_loss", [normal((4, 3)), normal((4, 3)), rng.uniform(0.1, 2, (4, 3))], (), {}),
    ("gaussian_nll_loss", [normal((4, 3)), normal((4, 3)), rng.uniform(0.1, 2, (4,))], (),
     dict(full=True)),  # one short of the input: unsqueezed
    ("gaussian_nll_loss", [normal((2, 3, 4)), normal((2, 3, 4)), rng.uniform(0, 0.3, (2, 1, 4))],
     (), dict(eps=0.1)),  # one dimension of size 1; clamped in value only
    ("gaussian_nll_loss", [normal((2, 3)), normal((3,)), rng.uniform(0.1, 2, (2, 3))], (), {}),
    ("margin_ranking_loss", [normal(6), normal(6), signs(6)], (), dict(margin=0.4)),
    ("margin_ranking_loss", [normal((2, 3)), normal((2, 3)), signs(2, 3)], (2,), {}),
    ("hinge_embedding_loss", [normal((4, 3)), signs(4, 3)], (1,), dict(margin=0.3)),
    ("hinge_embedding_loss", [normal((4, 3)), rng.choice([-1.0, 0.0, 1.0], (4, 3))], (1,), {}),
    ("soft_margin_loss", [normal((4, 3)), signs(4, 3)], (1,), {}),
    ("soft_margin_loss", [normal((4, 3)) * 30, signs(4, 3)], (1,), {}),
    ("multilabel_soft_margin_loss", [normal((4, 3)), rng.uniform(0, 1, (4, 3))], (), {}),
    ("multilabel_soft_margin_loss", [normal((2, 4, 3)), rng.integers(0, 2, (2, 4, 3)) * 1.0],
     (1,), dict(weight=rng.uniform(0.5, 2, 3))),
    ("cosine_embedding_loss", [normal((5, 3)), normal((5, 3)), signs(5)], (2,),
     dict(margin=-0.2)),
    ("cosine_embedding_loss", [normal(4), normal(4), np.array(-1.0)], (2,), {}),
    ("cosine_embedding_loss", [np.zeros((2, 3)), normal((2, 3)), signs(2)], (2,), {}),
    ("triplet_margin_loss", [normal((5, 4)), normal((5, 4)), normal((5, 4))], (), {}),
    ("triplet_margin_loss", [normal((5, 4)), normal((5, 4)), normal((5, 4))], (),
     dict(margin=3.0, p=3.0, eps=0.01, swap=True)),
    ("triplet_margin_loss", [normal(4), normal(4), normal(4)], (), dict(p=1.0)),
    ("multi_margin_loss", [normal((5, 4)), rng.integers(0, 4, 5)], (), {}),
    ("multi_margin_loss", [normal((5, 4)), rng.integers(0, 4, 5)], (),
     dict(p=2, margin=0.5, weight=rng.uniform(0.5, 2, 4))),
    ("multi_margin_loss", [normal(4), np.array([2])], (), {}),
    ("multi_margin_loss", [normal(4), np.array(1)], (), dict(p=2)),
    ("multi_margin_loss", [normal(()), np.array(0)], (), {}),
]  # fmt: skip


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # full Poisson's NaN at y = 0
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn,arrays,no_grad,kwargs", FUNCTIONAL,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(FUNCTIONAL)])  # fmt: skip
def test_functional_matches_torch(fn, arrays, no_grad, kwargs, reduction):
    assert_matches_torch(fn, arrays, no_grad, reduction=reduction, **kwargs)


def test_gaussian_nll_loss_takes_a_float_variance():
    x, y = normal((3, 2)), normal((3, 2))
    ours = F.gaussian_nll_loss(gg.tensor(x), gg.tensor(y), 0.5, full=True)
    theirs = TF.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), 0.5, full=True)
    np.testing.assert_allclose(ours.item(), theirs.item(), **TOL)


LEGACY = [
    ("poisson_nll_loss", [normal((3, 2)), counts(3, 2)], (1,)),
    ("margin_ranking_loss", [normal(4), normal(4), signs(4)], ()),
    ("hinge_embedding_loss", [normal(4), signs(4)], (1,)),
    ("soft_margin_loss", [normal(4), signs(4)], (1,)),
    ("multilabel_soft_margin_loss", [normal((3, 2)), rng.uniform(0, 1, (3, 2))], ()),
    ("cosine_embedding_loss", [normal((3, 2)), normal((3, 2)), signs(3)], (2,)),
    ("triplet_margin_loss", [normal((3, 2)), normal((3, 2)), normal((3, 2))], ()),
    ("multi_margin_loss", [normal((3, 4)), rng.integers(0, 4, 3)], ()),
]  # fmt: skip


@pytest.mark.parametrize("legacy", [dict(size_average=False), dict(reduce=False),
                                    dict(size_average=True, reduce=True)])  # fmt: skip
@pytest.mark.parametrize("fn,arrays,no_grad", LEGACY, ids=[c[0] for c in LEGACY])
def test_deprecated_size_average_and_reduce_decide_the_reduction(fn, arrays, no_grad, legacy):
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        assert_matches_torch(fn, arrays, no_grad, **legacy)
    assert any("size_average and reduce args will be deprecated" in str(w.message) for w in ours)


def test_soft_margin_loss_refuses_a_target_that_takes_gradients():
    def build(lib, functional):
        target = lib.tensor([1.0, -1.0], requires_grad=True)
        return functional.soft_margin_loss(lib.tensor([0.5, 0.2]), target)

    assert_same_error(build)
    with gg.no_grad():  # without gradients torch takes it
        target = gg.tensor([1.0, -1.0], requires_grad=True)
        np.testing.assert_allclose(F.soft_margin_loss(gg.tensor([0.5, 0.2]), target).item(),
                                   TF.soft_margin_loss(torch.tensor([0.5, 0.2]),
                                                       torch.tensor([1.0, -1.0])).item())


# ---------------------------------------------------------------------- errors


def t(lib, *shape):
    return lib.tensor(np.ones(shape))


ERRORS = {
    "gaussian-negative-var": lambda lib, f: f.gaussian_nll_loss(
        t(lib, 2, 3), t(lib, 2, 3), lib.tensor(-np.ones((2, 3)))),
    "gaussian-negative-float-var": lambda lib, f: f.gaussian_nll_loss(
        t(lib, 2, 3), t(lib, 2, 3), -1.0),
    "gaussian-var-size": lambda lib, f: f.gaussian_nll_loss(t(lib, 2, 3), t(lib, 2, 3),
                                                            t(lib, 3)),
    "gaussian-var-two-ones": lambda lib, f: f.gaussian_nll_loss(t(lib, 2, 3, 4),
                                                                t(lib, 2, 3, 4), t(lib, 2, 1, 1)),
    "gaussian-reduction": lambda lib, f: f.gaussian_nll_loss(t(lib, 2), t(lib, 2), t(lib, 2),
                                                             reduction="avg"),
    "poisson-reduction": lambda lib, f: f.poisson_nll_loss(t(lib, 2), t(lib, 2),
                                                           reduction="avg"),
    "margin-ranking-dims": lambda lib, f: f.margin_ranking_loss(t(lib, 3), t(lib, 3),
                                                                t(lib, 1, 3)),
    "hinge-reduction": lambda lib, f: f.hinge_embedding_loss(t(lib, 2), t(lib, 2),
                                                             reduction="avg"),
    "multilabel-reduction": lambda lib, f: f.multilabel_soft_margin_loss(t(lib, 2, 2),
                                                                         t(lib, 2, 2),
                                                                         reduction="avg"),
    "cosine-target-dims": lambda lib, f: f.cosine_embedding_loss(t(lib, 2, 3), t(lib, 2, 3),
                                                                 t(lib, 2, 1)),
    "cosine-1d-target": lambda lib, f: f.cosine_embedding_loss(t(lib, 3), t(lib, 3), t(lib, 3)),
    "cosine-0d-target": lambda lib, f: f.cosine_embedding_loss(t(lib, 2, 3), t(lib, 2, 3),
                                                               lib.tensor(1.0)),
    "triplet-margin": lambda lib, f: f.triplet_margin_loss(t(lib, 2), t(lib, 2), t(lib, 2),
                                                           margin=0.0),
    "triplet-dims": lambda lib, f: f.triplet_margin_loss(t(lib, 2, 3), t(lib, 3), t(lib, 2, 3)),
    "multi-margin-p": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3), lib.tensor([0, 1]), p=3),
    "multi-margin-weight-dim": lambda lib, f: f.multi_margin_loss(
        t(lib, 2, 3), lib.tensor([0, 1]), weight=t(lib, 1, 3)),
    "multi-margin-weight-size": lambda lib, f: f.multi_margin_loss(
        t(lib, 2, 3), lib.tensor([0, 1]), weight=t(lib, 2)),
    "multi-margin-target-size": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3),
                                                                   lib.tensor([0, 1, 2])),
    "multi-margin-target-2d": lambda lib, f: f.multi_margin_loss(t(lib, 3), lib.tensor([[0]])),
    "multi-margin-target-range": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3),
                                                                    lib.tensor([0, 3])),
    "multi-margin-target-dtype": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3),
                                                                    lib.tensor([0.0, 1.0])),
    "multi-margin-3d": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3, 1), lib.tensor([0, 1])),
    "multi-margin-empty": lambda lib, f: f.multi_margin_loss(t(lib, 2, 0), lib.tensor([0, 1])),
    "multi-margin-reduction": lambda lib, f: f.multi_margin_loss(t(lib, 2, 3),
                                                                 lib.tensor([0, 1]),
                                                                 reduction="avg"),
    "module-triplet-margin": lambda lib, f: lib.nn.TripletMarginLoss(margin=-1.0),
    "module-multi-margin-p": lambda lib, f: lib.nn.MultiMarginLoss(p=3),
    "module-multi-margin-weight": lambda lib, f: lib.nn.MultiMarginLoss(weight=t(lib, 2, 2)),
}  # fmt: skip


@pytest.mark.parametrize("name", ERRORS)
def test_errors_match_torch(name):
    assert_same_error(ERRORS[name])


# ---------------------------------------------------------------------- modules


MODULES = [
    lambda nn: nn.PoissonNLLLoss(log_input=False, full=True, eps=1e-4, reduction="sum"),
    lambda nn: nn.GaussianNLLLoss(full=True, eps=1e-3),
    lambda nn: nn.HingeEmbeddingLoss(margin=2.0),
    lambda nn: nn.SoftMarginLoss(reduction="none"),
    lambda nn: nn.MultiLabelSoftMarginLoss(),
    lambda nn: nn.CosineEmbeddingLoss(margin=0.5),
    lambda nn: nn.MarginRankingLoss(),
    lambda nn: nn.MultiMarginLoss(p=2, margin=0.5),
    lambda nn: nn.TripletMarginLoss(margin=0.5, p=1.0, swap=True),
]


@pytest.mark.parametrize("build", MODULES, ids=range(len(MODULES)))
def test_modules_print_and_hold_options_as_torch(build):
    ours, theirs = build(gg.nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    for name in ("reduction", "margin", "p", "eps", "swap", "full", "log_input"):
        assert getattr(ours, name, None) == getattr(theirs, name, None), name


def test_weighted_losses_keep_weight_as_a_buffer():
    weight = np.array([1.0, 2.0, 0.5])
    for name in ("MultiLabelSoftMarginLoss", "MultiMarginLoss"):
        ours = getattr(gg.nn, name)(weight=gg.tensor(weight))
        theirs = getattr(torch.nn, name)(weight=torch.tensor(weight))
        assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]


def test_gaussian_nll_loss_options_are_keyword_only():
    for lib in (gg, torch):
        with pytest.raises(TypeError):
            lib.nn.GaussianNLLLoss(True)


# ---------------------------------------------------------------------- interpolate


def interpolate_grid() -> list:
    """Odd sizes and scale factors up and down, for every mode and align_corners."""
    cases = []
    for shape in [(2, 3, 1), (1, 2, 5), (2, 1, 7), (1, 2, 3, 4), (2, 1, 5, 2), (1, 1, 1, 6)]:
        options = [dict(size=s) for s in (1, 3, 8, 11)]
        options += [dict(scale_factor=f) for f in (0.5, 0.7, 1.0, 1.3, 2.0, 2.5, 3.0)]
        options += [dict(scale_factor=f, recompute_scale_factor=True) for f in (0.7, 1.3, 2.5)]
        if len(shape) == 4:
            options += [dict(size=(2, 9)), dict(scale_factor=(1.5, 0.6)),
                        dict(scale_factor=(2.0, 3.1), recompute_scale_factor=True)]
        modes = [("nearest", None), ("nearest-exact", None), ("area", None)]
        linear = "linear" if len(shape) == 3 else "bilinear"
        modes += [(linear, False), (linear, True)]
        for (mode, corners), option in [(m, o) for m in modes for o in options]:
            if any(math.floor(n * f) == 0 for n, f in zip(shape[2:], _factors(option, shape))):
                continue  # an empty output: torch's error, tested below
            cases.append((shape, dict(mode=mode, align_corners=corners, **option)))
    return cases


def _factors(option: dict, shape: tuple) -> tuple:
    factor = option.get("scale_factor", 1.0)
    return factor if isinstance(factor, tuple) else (factor,) * (len(shape) - 2)


@pytest.mark.parametrize("shape,kwargs", interpolate_grid())
def test_interpolate_matches_torch(shape, kwargs):
    assert_matches_torch("interpolate", [normal(shape)], **kwargs)


@pytest.mark.parametrize("kwargs", [dict(scale_factor=1.7, mode="nearest"),
                                    dict(size=(5, 7), mode="nearest-exact"),
                                    dict(scale_factor=(2.3, 0.7), mode="bilinear"),
                                    dict(size=(4, 9), mode="bilinear", align_corners=True)])
def test_interpolate_float32_matches_torch(kwargs):
    """ATen computes the indices and weights in the input's precision (float32 here)."""
    x = normal((2, 3, 5, 4)).astype(np.float32)
    ours = F.interpolate(gg.tensor(x), **kwargs).numpy()
    theirs = TF.interpolate(torch.tensor(x), **kwargs).numpy()
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def x4(lib):
    return t(lib, 1, 1, 3, 4)


INTERPOLATE_ERRORS = {
    "size-and-scale": lambda lib, f: f.interpolate(x4(lib), size=2, scale_factor=2),
    "neither": lambda lib, f: f.interpolate(x4(lib)),
    "size-length": lambda lib, f: f.interpolate(x4(lib), size=(2,)),
    "size-float": lambda lib, f: f.interpolate(x4(lib), size=(2.0, 3)),
    "scale-length": lambda lib, f: f.interpolate(x4(lib), scale_factor=(2.0,)),
    "recompute-with-size": lambda lib, f: f.interpolate(x4(lib), size=3,
                                                        recompute_scale_factor=True),
    "corners-nearest": lambda lib, f: f.interpolate(x4(lib), size=3, align_corners=True),
    "linear-4d": lambda lib, f: f.interpolate(x4(lib), size=3, mode="linear"),
    "bilinear-3d": lambda lib, f: f.interpolate(t(lib, 1, 3, 4), size=3, mode="bilinear"),
    "bad-mode": lambda lib, f: f.interpolate(x4(lib), size=3, mode="cubic"),
    "2d-input": lambda lib, f: f.interpolate(t(lib, 3, 4), size=3),
    "antialias-nearest": lambda lib, f: f.interpolate(x4(lib), size=3, antialias=True),
    "empty-output-2d": lambda lib, f: f.interpolate(x4(lib), scale_factor=0.2, mode="bilinear"),
    "empty-output-1d": lambda lib, f: f.interpolate(t(lib, 1, 3, 4), scale_factor=0.2),
}  # fmt: skip


@pytest.mark.parametrize("name", INTERPOLATE_ERRORS)
def test_interpolate_errors_match_torch(name):
    assert_same_error(INTERPOLATE_ERRORS[name])


@pytest.mark.parametrize("build", [
    lambda nn: nn.Upsample(scale_factor=2),
    lambda nn: nn.Upsample(size=(3, 5), mode="bilinear", align_corners=True),
    lambda nn: nn.Upsample(scale_factor=(2, 3), mode="nearest-exact"),
    lambda nn: nn.Upsample(size=4, scale_factor=0),  # torch: a zero scale is none
    lambda nn: nn.UpsamplingNearest2d(scale_factor=3),
    lambda nn: nn.UpsamplingBilinear2d(size=(3, 4)),
], ids=range(6))  # fmt: skip
def test_upsampling_modules_print_and_hold_options_as_torch(build):
    ours, theirs = build(gg.nn), build(torch.nn)
    assert repr(ours) == repr(theirs)
    for name in ("name", "size", "scale_factor", "mode", "align_corners",
                 "recompute_scale_factor"):  # fmt: skip
        assert getattr(ours, name) == getattr(theirs, name), name


# ---------------------------------------------------------------------- more layers


@pytest.mark.parametrize("arrays", [
    [normal((5, 3)), normal((5, 4)), normal((2, 3, 4)), normal(2)],
    [normal((2, 5, 3)), normal((2, 5, 4)), normal((6, 3, 4))],
    [normal(3), normal(4), normal((2, 3, 4)), normal(2)],
], ids=["2d", "3d-nobias", "1d"])  # fmt: skip
def test_bilinear_matches_torch(arrays):
    assert_matches_torch("bilinear", arrays)


BILINEAR_ERRORS = {
    "dims": lambda lib, f: f.bilinear(t(lib, 2, 3), t(lib, 4), t(lib, 2, 3, 4)),
    "batch": lambda lib, f: f.bilinear(t(lib, 2, 3), t(lib, 5, 4), t(lib, 2, 3, 4)),
    "input1": lambda lib, f: f.bilinear(t(lib, 2, 2), t(lib, 2, 4), t(lib, 2, 3, 4)),
    "input2": lambda lib, f: f.bilinear(t(lib, 2, 3), t(lib, 2, 5), t(lib, 2, 3, 4)),
    "bias": lambda lib, f: f.bilinear(t(lib, 2, 3), t(lib, 2, 4), t(lib, 2, 3, 4), t(lib, 3)),
    "convtranspose1d-padding-mode": lambda lib, f: lib.nn.ConvTranspose1d(2, 2, 3,
                                                                          padding_mode="reflect"),
    "convtranspose1d-output-size": lambda lib, f: lib.nn.ConvTranspose1d(2, 3, 3, stride=2)(
        t(lib, 1, 2, 4), output_size=[1, 3, 11]),
    "dropout1d-4d": lambda lib, f: f.dropout1d(t(lib, 2, 3, 4, 5)),
    "dropout1d-1d": lambda lib, f: f.dropout1d(t(lib, 3)),
    "dropout1d-p": lambda lib, f: f.dropout1d(t(lib, 3, 4), p=1.5),
}  # fmt: skip


@pytest.mark.parametrize("name", BILINEAR_ERRORS)
def test_layer_errors_match_torch(name):
    assert_same_error(BILINEAR_ERRORS[name])


def test_bilinear_init_and_repr_follow_torch():
    ours, theirs = gg.nn.Bilinear(16, 9, 300, bias=False), torch.nn.Bilinear(16, 9, 300, bias=False)
    assert repr(ours) == repr(theirs)
    assert ours.bias is None and theirs.bias is None
    weight = ours.weight.detach().numpy()
    assert weight.shape == tuple(theirs.weight.shape)
    bound = 1 / math.sqrt(16)  # torch: U(+-1/sqrt(in1_features)) for weight and bias
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0.99 * bound
    bias = gg.nn.Bilinear(16, 9, 3000).bias.detach().numpy()
    assert np.abs(bias).max() <= bound and np.abs(bias).max() > 0.99 * bound


def test_conv_transpose1d_output_size_picks_the_output_padding():
    x = normal((2, 4, 5))
    ours = gg.nn.ConvTranspose1d(4, 2, 3, stride=3, padding=1).double()
    theirs = torch.nn.ConvTranspose1d(4, 2, 3, stride=3, padding=1).double()
    ours.weight.data, ours.bias.data = theirs.weight.detach().numpy(), theirs.bias.detach().numpy()
    for size in (13, 14, 15):
        np.testing.assert_allclose(ours(gg.tensor(x), output_size=[size]).detach().numpy(),
                                   theirs(torch.tensor(x), output_size=[size]).detach().numpy(),
                                   **TOL)  # fmt: skip
    assert not isinstance(ours, gg.nn.ConvTranspose2d)


@pytest.mark.parametrize("shape", [(40, 50, 6), (300, 8)])
def test_dropout1d_drops_whole_channels_and_rescales(shape):
    x = gg.ones(*shape)
    out = gg.nn.Dropout1d(0.25)(x).numpy()
    channels = out.reshape(-1, shape[-1])
    assert np.all((channels == 0).all(1) | (channels == 1 / 0.75).all(1))  # a channel as one
    assert abs((channels[:, 0] == 0).mean() - 0.25) < 0.08
    assert out.shape == shape
    assert np.array_equal(gg.nn.Dropout1d(0.25).eval()(x).numpy(), np.ones(shape))
    assert np.array_equal(F.dropout1d(x, p=1.0).numpy(), np.zeros(shape))


# ---------------------------------------------------------------------- parameter containers


def same_repr(ours, theirs) -> None:
    """Equal but for the library's name in dtypes (graphgrad.float32 for torch.float32)."""
    assert repr(ours).replace("graphgrad.", "torch.") == repr(theirs)


def parameter_list(lib):
    params = lib.nn.ParameterList([lib.nn.Parameter(lib.zeros(2, 3)), lib.ones(4)])
    params.append(lib.zeros(1, dtype=lib.float64)).extend([7, lib.ones(2, 2)])
    params += [lib.zeros(3)]
    params[-1] = lib.ones(5)
    return params


def test_parameter_list_behaves_as_torch():
    ours, theirs = parameter_list(gg), parameter_list(torch)
    same_repr(ours, theirs)
    assert len(ours) == len(theirs) == 6
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert isinstance(ours[1], gg.nn.Parameter) and ours[3] == 7
    assert tuple(ours[-1].shape) == (5,) and ours[-1] is ours[5]
    same_repr(ours[1:5:2], theirs[1:5:2])
    assert [type(p).__name__ for p in ours] == [type(p).__name__ for p in theirs]
    same_repr(gg.nn.ParameterList(), torch.nn.ParameterList())
    same_repr(gg.nn.Sequential(gg.nn.ParameterList([gg.zeros(2)])),
              torch.nn.Sequential(torch.nn.ParameterList([torch.zeros(2)])))


def parameter_dict(lib):
    table = lib.nn.ParameterDict({"b": lib.zeros(2, 3), "a": lib.nn.Parameter(lib.ones(1))})
    table.update([("z", lib.zeros(4)), ("c", lib.ones(2))])
    table.update(OrderedDict([("y", lib.zeros(1)), ("d", lib.ones(1))]))
    table["e"] = 3
    table.setdefault("f", lib.zeros(2))
    del table["z"]
    return table


def test_parameter_dict_behaves_as_torch():
    ours, theirs = parameter_dict(gg), parameter_dict(torch)
    same_repr(ours, theirs)
    assert list(ours) == list(theirs) == ["a", "b", "c", "y", "d", "e", "f"]
    assert list(reversed(ours)) == list(reversed(theirs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "c" in ours and "z" not in ours and ours.get("z", 1) == 1 and ours["e"] == 3
    for table in (ours, theirs):
        assert tuple(table.pop("y").shape) == (1,)
        assert table.popitem()[0] == "f"
    same_repr(ours | gg.nn.ParameterDict({"g": gg.ones(1)}),
              theirs | torch.nn.ParameterDict({"g": torch.ones(1)}))
    same_repr(ours.fromkeys(["p", "q"]), theirs.fromkeys(["p", "q"]))
    same_repr(ours.copy(), theirs.copy())
    ours.clear()
    assert len(ours) == 0 and not list(ours.parameters())


CONTAINER_ERRORS = {
    "list-index": lambda lib, f: lib.nn.ParameterList([lib.zeros(1)])[1],
    "list-extend": lambda lib, f: lib.nn.ParameterList().extend(lib.zeros(2)),
    "list-call": lambda lib, f: lib.nn.ParameterList()(lib.zeros(1)),
    "dict-key": lambda lib, f: lib.nn.ParameterDict()[1],
    "dict-update": lambda lib, f: lib.nn.ParameterDict().update(3),
    "dict-update-pair": lambda lib, f: lib.nn.ParameterDict().update([("a", lib.zeros(1), 1)]),
    "dict-update-element": lambda lib, f: lib.nn.ParameterDict().update([3]),
    "dict-call": lambda lib, f: lib.nn.ParameterDict()(lib.zeros(1)),
}  # fmt: skip


@pytest.mark.parametrize("name", CONTAINER_ERRORS)
def test_container_errors_match_torch(name):
    assert_same_error(CONTAINER_ERRORS[name])


def test_a_parameter_container_of_other_objects_does_not_convert():
    from graphgrad.interop.modules import UnsupportedModuleError, from_torch, to_torch

    with pytest.raises(UnsupportedModuleError, match="its entry 1 is a builtins.int"):
        to_torch(gg.nn.ParameterList([gg.zeros(2), 5]))
    with pytest.raises(UnsupportedModuleError, match="its entry 'a' is a builtins.str"):
        from_torch(torch.nn.ParameterDict({"a": "text"}))
    twin = from_torch(torch.nn.ParameterList([torch.zeros(2, dtype=torch.float64)]))
    assert type(twin) is gg.nn.ParameterList and twin[0].dtype == gg.float64
