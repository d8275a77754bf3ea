"""Padding, GroupNorm, InstanceNorm, RMSNorm, the 1d and adaptive max pools, pixel shuffles,
shrink activations, GLU, Threshold and the distances against torch (the oracle), beyond what
tests/test_interop_modules.py's cases cover: the functional forms, their edge values, torch's
errors, unbatched inputs and reprs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch_errors import assert_same_error

import graphgrad as gg
import graphgrad.nn.functional as F

TOL = dict(rtol=1e-12, atol=1e-12)


def run(lib, fn: str, arrays: list, kwargs: dict) -> tuple:
    """``lib``'s functional ``fn`` on ``arrays`` and the arrays among ``kwargs`` (float ones
    take gradients), then backward of a fixed random weighting of its float outputs: the
    outputs and the input gradients."""
    functional = F if lib is gg else TF

    def tensor(a):
        return lib.tensor(a, requires_grad=a.dtype.kind == "f")

    inputs = [tensor(a) for a in arrays]
    named = {k: tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = getattr(functional, fn)(*inputs, **named)
    inputs += [v for v in named.values() if isinstance(v, lib.Tensor)]
    outputs = list(out) if isinstance(out, tuple) else [out]
    rng = np.random.default_rng(5)
    floats = [o for o in outputs if o.is_floating_point()]
    loss = sum((o.nan_to_num() * lib.tensor(rng.standard_normal(tuple(o.shape)))).sum()
               for o in floats)  # fmt: skip
    loss.backward()
    return ([o.detach().numpy() for o in outputs],
            [t.grad.numpy() for t in inputs if t.requires_grad])  # fmt: skip


def assert_matches_torch(fn: str, arrays: list, **kwargs) -> None:
    ours, theirs = run(gg, fn, arrays, kwargs), run(torch, fn, arrays, kwargs)
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOL)


rng = np.random.default_rng(0)
normal = rng.standard_normal


# ---------------------------------------------------------------------- functional forms


@pytest.mark.parametrize("fn,arrays,kwargs", [
    ("pad", [normal((2, 3, 4))], dict(pad=(3, 2), mode="reflect")),
    ("pad", [normal((3, 4, 5))], dict(pad=(1, 2, 3, 0), mode="replicate")),
    ("group_norm", [normal((3, 6, 5))], dict(num_groups=3, weight=normal(6), bias=normal(6),
                                             eps=1e-3)),
    ("group_norm", [normal((2, 4, 3, 3))], dict(num_groups=4)),
    ("group_norm", [normal((2, 4))], dict(num_groups=1)),
    ("instance_norm", [normal((2, 3, 5))], dict(weight=normal(3), bias=normal(3), eps=1e-3)),
    ("rms_norm", [normal((2, 3, 4))], dict(normalized_shape=(3, 4), weight=normal((3, 4)))),
    ("rms_norm", [normal((2, 4)) * 1e-9], dict(normalized_shape=[4])),  # eps=None matters
    ("rms_norm", [normal((2, 4))], dict(normalized_shape=(4,), eps=0.1)),
    ("avg_pool1d", [normal((2, 3, 9))], dict(kernel_size=4, stride=3, padding=2,
                                            count_include_pad=False, ceil_mode=True)),
    ("adaptive_avg_pool1d", [normal((3, 7))], dict(output_size=5)),
    ("adaptive_max_pool1d", [normal((2, 3, 10))], dict(output_size=4, return_indices=True)),
    ("adaptive_max_pool1d", [normal((2, 3, 3))], dict(output_size=7)),  # windows overlap
    ("adaptive_max_pool2d", [normal((2, 3, 5, 7))], dict(output_size=(2, None),
                                                        return_indices=True)),
    ("adaptive_max_pool2d", [normal((3, 6, 4))], dict(output_size=3)),
    ("pixel_shuffle", [normal((2, 3, 8, 2, 3))], dict(upscale_factor=2)),
    ("pixel_unshuffle", [normal((2, 3, 2, 6, 4))], dict(downscale_factor=2)),
    ("pixel_unshuffle", [normal((1, 3, 3))], dict(downscale_factor=3)),
    ("glu", [normal((4, 6))], dict()),
    ("glu", [normal((4, 6, 2))], dict(dim=-3)),
    ("hardshrink", [np.array([-1.0, -0.5, -0.3, 0.0, 0.5, 0.7, np.nan])], dict()),
    ("hardshrink", [normal(5)], dict(lambd=-0.5)),  # torch takes a negative lambda here
    ("softshrink", [np.array([-1.0, -0.3, -0.2, 0.0, 0.3, 0.7, np.nan])], dict(lambd=0.3)),
    ("tanhshrink", [normal((3, 4))], dict()),
    ("threshold", [np.array([-1.0, 0.2, 0.5, 0.7, np.nan])], dict(threshold=0.5, value=-2.0)),
    ("cosine_similarity", [normal((3, 4)), normal((3, 4))], dict(dim=-1)),
    ("cosine_similarity", [np.zeros((2, 3)), normal((2, 3))], dict()),  # a zero vector
    ("cosine_similarity", [normal((2, 3)) * 1e-9, normal((1, 3))], dict()),  # clamped norm
    ("cosine_similarity", [normal(4), normal(4)], dict(dim=0)),
    ("pairwise_distance", [normal((3, 4)), normal((3, 4))], dict()),
    ("pairwise_distance", [normal(4), normal(4)], dict(p=1.0, keepdim=True)),
    ("pairwise_distance", [normal((3, 4)), normal((3, 4))], dict(p=math.inf, eps=0.0)),
    ("pairwise_distance", [normal((3, 4)), normal((3, 4))], dict(p=0.5)),
])  # fmt: skip
def test_functional_matches_torch(fn, arrays, kwargs):
    assert_matches_torch(fn, arrays, **kwargs)


def test_pairwise_distance_of_equal_inputs_is_the_norm_of_eps():
    x = normal((2, 3))
    assert_matches_torch("pairwise_distance", [x, x.copy()])
    assert_matches_torch("pairwise_distance", [x, x.copy()], eps=0.0)  # zero gradient at 0


def test_adaptive_max_pool_ties_and_nan_pick_torchs_index():
    x = np.array([[[1.0, 3.0, 3.0, np.nan, 2.0, np.nan, 0.0, 5.0, 5.0, 1.0]]])
    for size in (1, 3, 4, 7):
        assert_matches_torch("adaptive_max_pool1d", [x], output_size=size, return_indices=True)
    plane = np.ones((1, 1, 4, 5))
    plane[0, 0, 2, 1] = plane[0, 0, 3, 4] = np.nan
    assert_matches_torch("adaptive_max_pool2d", [plane], output_size=(3, 2),
                         return_indices=True)  # fmt: skip


def test_instance_norm_updates_and_uses_running_statistics():
    x = normal((4, 3, 6))
    libs = {}
    for lib, functional in ((gg, F), (torch, TF)):
        mean, var = lib.tensor(normal(3) * 0 + 0.5), lib.tensor(np.full(3, 2.0))
        train = functional.instance_norm(lib.tensor(x), mean, var, momentum=0.3)
        evaluated = functional.instance_norm(lib.tensor(x), mean, var, use_input_stats=False)
        libs[lib] = [t.numpy() for t in (train, evaluated, mean, var)]
    for a, b in zip(libs[gg], libs[torch]):
        np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rms_norm_default_eps_is_the_dtypes_epsilon(dtype):
    x = (normal((2, 5)) * 1e-4).astype(dtype)
    ours = F.rms_norm(gg.tensor(x), (5,)).numpy()
    theirs = TF.rms_norm(torch.tensor(x), (5,)).numpy()
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-6 if dtype == "float32" else 1e-12)


def test_float32_layers_keep_float32():
    x = normal((2, 4, 6)).astype(np.float32)
    for build in (lambda lib: lib.nn.GroupNorm(2, 4), lambda lib: lib.nn.InstanceNorm1d(4),
                  lambda lib: lib.nn.RMSNorm(6),
                  lambda lib: lib.nn.ReflectionPad1d(2)):  # fmt: skip
        ours, theirs = build(gg)(gg.tensor(x)).detach().numpy(), build(torch)(torch.tensor(x))
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- unbatched inputs


@pytest.mark.parametrize("build,shape", [
    (lambda lib: lib.nn.ReflectionPad1d((2, 1)), (3, 4)),
    (lambda lib: lib.nn.ReplicationPad2d(1), (2, 3, 4)),
    (lambda lib: lib.nn.ZeroPad2d((1, 2, 0, 1)), (3, 4)),  # constant padding takes any rank
    (lambda lib: lib.nn.InstanceNorm1d(3, affine=True), (3, 5)),
    (lambda lib: lib.nn.AvgPool1d(2), (3, 6)),
    (lambda lib: lib.nn.AdaptiveAvgPool1d(2), (3, 5)),
    (lambda lib: lib.nn.AdaptiveMaxPool2d(2), (3, 5, 4)),
    (lambda lib: lib.nn.PixelUnshuffle(2), (1, 4, 4)),
])  # fmt: skip
def test_unbatched_inputs_match_torch(build, shape):
    x = normal(shape)
    ours, theirs = build(gg).double(), build(torch).double()
    np.testing.assert_allclose(ours(gg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), **TOL)  # fmt: skip


# ---------------------------------------------------------------------- torch's errors


@pytest.mark.parametrize("build", [
    lambda lib, f: lib.nn.GroupNorm(2, 3),
    lambda lib, f: f.group_norm(lib.ones(2, 3, 4), 2),
    lambda lib, f: f.group_norm(lib.ones(3), 1),
    lambda lib, f: f.group_norm(lib.ones(1, 2, 1), 2),
    lambda lib, f: f.group_norm(lib.ones(2, 4, 3), 2, lib.ones(3)),
    lambda lib, f: f.instance_norm(lib.ones(2, 3, 1)),
    lambda lib, f: lib.nn.InstanceNorm2d(3)(lib.ones(2, 4)),
    lambda lib, f: lib.nn.InstanceNorm1d(3, affine=True)(lib.ones(2, 4, 5)),
    lambda lib, f: f.rms_norm(lib.ones(2, 3), (4,)),
    lambda lib, f: f.layer_norm(lib.ones(2, 3), (4,)),  # the same message as rms_norm's
    lambda lib, f: f.rms_norm(lib.ones(2, 3), (2, 2)),
    lambda lib, f: f.rms_norm(lib.ones(2, 3), (3,), lib.ones(2)),
    lambda lib, f: lib.nn.ReflectionPad1d(3)(lib.ones(1, 2, 3)),
    lambda lib, f: lib.nn.ReflectionPad2d((1, 1, 2, 2))(lib.ones(1, 2, 3)),
    lambda lib, f: lib.nn.ReflectionPad2d(1)(lib.ones(3, 3)),
    lambda lib, f: lib.nn.ReplicationPad2d(1)(lib.ones(3)),
    lambda lib, f: f.adaptive_max_pool1d(lib.ones(3), 2),
    lambda lib, f: f.adaptive_max_pool1d(lib.ones(2, 3, 4, 5), 2),
    lambda lib, f: f.adaptive_max_pool2d(lib.ones(3), 2),
    lambda lib, f: f.adaptive_max_pool1d(lib.ones(2, 3, 4), (2, 3)),
    lambda lib, f: f.adaptive_max_pool1d(lib.ones(2, 3, 0), 2),
    lambda lib, f: lib.nn.PixelShuffle(2)(lib.ones(1, 3, 2, 2)),
    lambda lib, f: f.pixel_shuffle(lib.ones(3, 2), 2),
    lambda lib, f: f.pixel_shuffle(lib.ones(1, 4, 2, 2), 0),
    lambda lib, f: lib.nn.PixelUnshuffle(2)(lib.ones(1, 1, 3, 4)),
    lambda lib, f: f.pixel_unshuffle(lib.ones(1, 1, 4, 3), 2),
    lambda lib, f: f.pixel_unshuffle(lib.ones(4, 2), 2),
    lambda lib, f: f.pixel_unshuffle(lib.ones(1, 4, 4), -1),
    lambda lib, f: lib.nn.GLU()(lib.ones(2, 3)),
    lambda lib, f: f.glu(lib.ones(())),
    lambda lib, f: f.softshrink(lib.ones(2), -1.0),
    lambda lib, f: f.softshrink(lib.ones(2, dtype=lib.float64), -0.5),
    lambda lib, f: f.pad(lib.ones(1, 2, 2, 3), (0, 0, 0, 0, 2, 2), mode="reflect"),
    lambda lib, f: f.pad(lib.ones(1, 2, 2, 3), (3, 0, 2, 2, 2, 2), mode="reflect"),
    lambda lib, f: f.cosine_similarity(lib.ones(2, 3), lib.ones(2, 4)),
    lambda lib, f: f.pairwise_distance(lib.ones(2, 3), lib.ones(2, 4)),
])  # fmt: skip
def test_errors_match_torch(build):
    assert_same_error(build)


def test_instance_norm_without_affine_warns_on_a_feature_mismatch():
    records = {}
    for lib in (gg, torch):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.nn.InstanceNorm1d(3)(lib.ones(2, 4, 5))
        records[lib] = [str(w.message) for w in caught]
    assert records[gg] == records[torch] and len(records[gg]) == 1


# ---------------------------------------------------------------------- reprs


@pytest.mark.parametrize("build", [
    lambda lib: lib.nn.ZeroPad1d(2), lambda lib: lib.nn.ZeroPad2d((1, 2, 3, 4)),
    lambda lib: lib.nn.ConstantPad1d((1, 2), 3.5), lambda lib: lib.nn.ConstantPad2d(1, -1),
    lambda lib: lib.nn.ReflectionPad1d(3), lambda lib: lib.nn.ReflectionPad2d((1, 0, 2, 0)),
    lambda lib: lib.nn.ReplicationPad1d((0, 1)), lambda lib: lib.nn.ReplicationPad2d(2),
    lambda lib: lib.nn.GroupNorm(2, 4), lambda lib: lib.nn.GroupNorm(1, 3, 1e-3, False),
    lambda lib: lib.nn.GroupNorm(2, 4, bias=False),
    lambda lib: lib.nn.InstanceNorm1d(3), lambda lib: lib.nn.InstanceNorm2d(
        4, eps=1e-3, momentum=None, affine=True, track_running_stats=True),
    lambda lib: lib.nn.RMSNorm(4), lambda lib: lib.nn.RMSNorm([2, 3], 1e-3, False),
    lambda lib: lib.nn.AvgPool1d(3), lambda lib: lib.nn.AvgPool1d(3, 2, 1, True, False),
    lambda lib: lib.nn.AdaptiveAvgPool1d(4), lambda lib: lib.nn.AdaptiveMaxPool1d(2, True),
    lambda lib: lib.nn.AdaptiveMaxPool2d((None, 3)),
    lambda lib: lib.nn.PixelShuffle(2), lambda lib: lib.nn.PixelUnshuffle(3),
    lambda lib: lib.nn.GLU(), lambda lib: lib.nn.GLU(0), lambda lib: lib.nn.Hardshrink(),
    lambda lib: lib.nn.Softshrink(0.25), lambda lib: lib.nn.Tanhshrink(),
    lambda lib: lib.nn.Threshold(0.1, 20), lambda lib: lib.nn.Threshold(0.5, 0.0, True),
    lambda lib: lib.nn.CosineSimilarity(0, 1e-6), lambda lib: lib.nn.PairwiseDistance(1.0),
])  # fmt: skip
def test_repr_matches_torch(build):
    assert repr(build(gg)) == repr(build(torch))


def test_parameters_and_buffers_match_torch():
    for build in (lambda lib: lib.nn.GroupNorm(2, 4),
                  lambda lib: lib.nn.GroupNorm(2, 4, bias=False),
                  lambda lib: lib.nn.InstanceNorm1d(3),
                  lambda lib: lib.nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
                  lambda lib: lib.nn.RMSNorm((2, 3)),
                  lambda lib: lib.nn.RMSNorm(3, elementwise_affine=False)):  # fmt: skip
        ours, theirs = build(gg), build(torch)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_instance_norm_does_not_count_batches():
    for lib in (gg, torch):
        layer = lib.nn.InstanceNorm1d(3, track_running_stats=True)
        layer(lib.ones(2, 3, 4))
        assert int(layer.num_batches_tracked) == 0


def test_instance_norm_is_no_batch_norm_as_in_torch():
    for lib in (gg, torch):  # code that finds batch norms by isinstance must skip these
        assert not issubclass(lib.nn.InstanceNorm1d, lib.nn.BatchNorm1d)
        assert not issubclass(lib.nn.InstanceNorm2d, lib.nn.BatchNorm2d)


def test_adaptive_max_pool_replays_traced_and_compiled_on_new_inputs():
    # the windows' maxima are found by ops, not read off the example: a replay on other
    # inputs gives torch's answer for those inputs
    def pool(x):
        return gg.nn.functional.adaptive_max_pool2d(x, (2, 3), return_indices=True)

    first, second = rng.standard_normal((1, 2, 5, 7)), rng.standard_normal((1, 2, 5, 7))
    traced, compiled = gg.trace(pool, gg.tensor(first)), gg.compile(pool)
    compiled(gg.tensor(first)), compiled(gg.tensor(first))  # recorded, then replayed
    values, indices = torch.nn.functional.adaptive_max_pool2d(torch.tensor(second), (2, 3),
                                                              return_indices=True)
    for run in (traced, compiled):
        out, where = run(gg.tensor(second))
        np.testing.assert_array_equal(out.numpy(), values.numpy())
        np.testing.assert_array_equal(where.numpy(), indices.numpy())
