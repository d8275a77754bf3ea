"""The eager hot paths (an operator with a Python number or a tensor of the same dtype, a unary
op) and the backward engine's shortcuts, against torch on the same inputs: every gradient has its
tensor's dtype and shape, in each float dtype, with or without hooks in the way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import graphgrad as gg

TOLERANCE = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}


def _leaves(lib, dtype: str):
    x = np.linspace(-1.0, 1.0, 6).astype(dtype)
    w = np.linspace(0.5, 1.5, 6).astype(dtype)
    return lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)


def _chain(x, w):
    """Every hot path: tensor op number, number op tensor, unary ops, two tensors, a leaf
    reached twice."""
    y = x * 1.5 + 0.25
    y = y.tanh().exp() * w
    y = (2.0 - y).sigmoid() / 3.0
    y = y * y + x
    y = 1.0 / (y + 2.0)
    return (y.log() - y.sqrt()).sum()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_elementwise_chain_gradients_have_the_leaf_dtype_and_torch_values(dtype):
    grads = {}
    for lib in (gg, torch):
        x, w = _leaves(lib, dtype)
        _chain(x, w).backward()
        grads[lib.__name__] = (x.grad, w.grad)
    for ours, theirs in zip(grads["graphgrad"], grads["torch"]):
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.") == dtype
        np.testing.assert_allclose(
            ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64),
            rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype],
        )


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_broadcast_and_zero_d_operands_are_summed_back_to_each_input(dtype):
    grads = {}
    for lib in (gg, torch):
        a = lib.tensor(np.arange(6).reshape(2, 3).astype(dtype) / 4, requires_grad=True)
        b = lib.tensor(np.array([0.5, 1.0, 2.0], dtype), requires_grad=True)
        s = lib.tensor(np.array(0.75, dtype), requires_grad=True)
        ((a * b + s) * 2.0 - s.exp()).tanh().sum().backward()
        grads[lib.__name__] = (a.grad, b.grad, s.grad)
    for ours, theirs in zip(grads["graphgrad"], grads["torch"]):
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.dtype.name == dtype
        np.testing.assert_allclose(
            ours.numpy().astype(np.float64), theirs.numpy().astype(np.float64),
            rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype],
        )


def test_a_hook_that_changes_the_gradient_is_seen_by_the_inputs():
    grads = {}
    for lib in (gg, torch):
        x, _ = _leaves(lib, "float64")
        y = (x * 3.0).tanh()
        y.register_hook(lambda g: g * 10.0)
        (y + 1.0).sum().backward()
        grads[lib.__name__] = x.grad.numpy()
    np.testing.assert_allclose(grads["graphgrad"], grads["torch"], rtol=1e-12)


def test_a_hook_gradient_of_another_dtype_is_cast_to_the_input_dtype():
    """torch refuses a hook that changes the dtype; graphgrad casts it, as it casts every
    gradient to its input's dtype: x.grad is float32, 3 * (1 - tanh(3x)^2) * 2."""
    x = gg.tensor(np.array([0.1, -0.2], np.float32), requires_grad=True)
    y = (x * 3.0).tanh()
    y.register_hook(lambda g: gg.tensor(g.numpy().astype(np.float64) * 2.0))
    y.sum().backward()
    assert x.grad.dtype == gg.float32
    expected = 3.0 * (1.0 - np.tanh(3.0 * x.detach().numpy().astype(np.float64)) ** 2) * 2.0
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_a_leaf_hook_returning_the_wrong_shape_is_refused_as_in_torch():
    for lib in (gg, torch):
        x, _ = _leaves(lib, "float64")
        x.register_hook(lambda g: g[:2])
        with pytest.raises(RuntimeError):
            (x * 2.0).sum().backward()


def test_replacing_a_leaf_array_after_use_still_fits_its_gradient():
    """x.data = ... after x was used: the node kept the old array; backward fits the gradient to
    the array x now holds (here the same shape), as it would without the shortcut."""
    x = gg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * 2.0).exp()
    x.data = gg.tensor(np.array([5.0, 6.0]))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * np.exp([2.0, 4.0]), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(300, 200), (7, 5), (3, 40000)], ids=str)
def test_relu_gradient_in_blocks_equals_torchs(shape, dtype):
    """Above 32,768 elements ReLU's gradient goes in blocks (no layer-sized mask); the last
    block is partial, and a transposed (non-contiguous) upstream gradient takes the plain
    path: torch's threshold_backward on the same values, exactly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    x[0, :3] = 0.0  # relu'(0) is 0 in both
    weights = rng.standard_normal(shape[::-1]).astype(dtype).T  # a transposed view
    grads = []
    for lib in (gg, torch):
        leaf = lib.tensor(x, requires_grad=True)
        for upstream in (lib.tensor(np.ascontiguousarray(weights)), lib.tensor(weights)):
            leaf.grad = None
            (lib.relu(leaf) * upstream).sum().backward()
            grads.append(leaf.grad.numpy().copy())
    ours, theirs = grads[:2], grads[2:]
    for mine, ref in zip(ours, theirs):
        np.testing.assert_array_equal(mine, ref)
