"""Safety of graphgrad's autograd: stale saved tensors, dtypes, empty tensors, identity, memory,
deep graphs and error messages, compared with torch or with hand-worked numbers.
"""

from __future__ import annotations

import gc
import os
import traceback
import tracemalloc
import warnings
import weakref

import numpy as np
import pytest
import torch

import graphgrad as gg

LIBS = {"graphgrad": gg, "torch": torch}
GRAPHGRAD_DIR = os.path.dirname(os.path.abspath(gg.__file__))
NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__))


def as_numpy(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def assert_close(gg_value, torch_value, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(as_numpy(gg_value), as_numpy(torch_value), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------- in-place changes


def _modify_with_mul(t):
    t.mul_(2)


def _modify_with_add(t):
    t.add_(1)


def _modify_with_setitem(t):
    t[0] = 5


IN_PLACE_CHANGES = {
    "mul_": _modify_with_mul,
    "add_": _modify_with_add,
    "setitem": _modify_with_setitem,
}


@pytest.mark.parametrize("change", list(IN_PLACE_CHANGES))
@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_changing_a_saved_leaf_makes_backward_raise(lib, change):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()  # mul saves x for its gradient
    with lib.no_grad():
        IN_PLACE_CHANGES[change](x)
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


@pytest.mark.parametrize("change", list(IN_PLACE_CHANGES))
@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_changing_a_saved_intermediate_makes_backward_raise(lib, change):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2.0
    y = (h * h).sum()  # the second mul saves h, a non-leaf
    with lib.no_grad():
        IN_PLACE_CHANGES[change](h)
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_changing_a_saved_output_makes_backward_raise(lib):
    x = lib.tensor([0.5, 1.0], requires_grad=True)
    y = x.exp()  # exp saves its own output
    loss = y.sum()
    with lib.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_changing_a_saved_tensor_through_a_detached_alias_makes_backward_raise(lib):
    # detach() shares storage and, in torch, the version counter: the change is still caught.
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    x.detach().mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


def test_changing_an_input_that_backward_does_not_read_is_allowed_like_torch():
    grads = []
    for lib in LIBS.values():
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x + 1.0).sum()  # add's gradient does not depend on x's value
        with lib.no_grad():
            x.mul_(3)
        y.backward()
        grads.append(x.grad)
    assert_close(grads[0], grads[1])
    np.testing.assert_allclose(as_numpy(grads[0]), [1.0, 1.0])


@pytest.mark.parametrize("change", list(IN_PLACE_CHANGES))
@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_in_place_on_leaf_requiring_grad_outside_no_grad_raises(lib, change):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        IN_PLACE_CHANGES[change](x)
    np.testing.assert_array_equal(as_numpy(x), [1.0, 2.0, 3.0])


# ---------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
@pytest.mark.parametrize("int_dtype", ["int64", "int32"])
def test_integer_tensors_cannot_require_grad(lib, int_dtype):
    dtype = getattr(lib, int_dtype)
    with pytest.raises(RuntimeError, match="floating point"):
        lib.tensor([1, 2], dtype=dtype, requires_grad=True)
    t = lib.tensor([1, 2], dtype=dtype)
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad = True
    assert not t.requires_grad


def _float_network(lib, dtype, x_values, w_values):
    """A loss built from many ops and Python float constants; returns leaves and loss."""
    x = lib.tensor(x_values, dtype=dtype, requires_grad=True)
    w = lib.tensor(w_values, dtype=dtype, requires_grad=True)
    h = (x @ w).tanh() * 0.5 + 1.0
    h = (2.0**h) / 3.0 - (1.0 - h).sigmoid() + h.clamp(0.6, 1.4) ** 2.5
    h = h.sqrt().log_softmax(1) + h.softmax(0).exp() / 1.5
    loss = h.mean() + h.var() + (x * 0.1).sum()
    loss.backward()
    return x, w, loss


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_float_dtype_is_kept_through_forward_and_backward(dtype_name):
    rng = np.random.default_rng(11)
    x_values, w_values = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    x_gg, w_gg, loss_gg = _float_network(gg, getattr(gg, dtype_name), x_values, w_values)
    x_t, w_t, loss_t = _float_network(torch, getattr(torch, dtype_name), x_values, w_values)
    expected = np.dtype(dtype_name)
    for t in (loss_gg, x_gg.grad, w_gg.grad):
        assert as_numpy(t).dtype == expected
    tol = 1e-5 if dtype_name == "float32" else 1e-12
    for ours, theirs in ((loss_gg, loss_t), (x_gg.grad, x_t.grad), (w_gg.grad, w_t.grad)):
        np.testing.assert_allclose(as_numpy(ours), as_numpy(theirs), rtol=tol, atol=tol)


# ---------------------------------------------------------------------- zero-size tensors


EMPTY_SHAPES = [(0,), (0, 3), (2, 0)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty_sum_exp_and_backward_match_torch(shape):
    results = []
    for lib in LIBS.values():
        x = lib.zeros(*shape, dtype=lib.float64, requires_grad=True)
        e = x.exp()
        total = e.sum()
        total.backward()
        results.append((tuple(e.shape), total.item(), tuple(x.grad.shape)))
    assert results[0] == results[1] == (shape, 0.0, shape)


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty_mean_is_nan_like_torch(shape):
    ours = gg.zeros(*shape, dtype=gg.float64).mean()
    theirs = torch.zeros(*shape, dtype=torch.float64).mean()
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


def test_empty_mean_along_empty_dim_is_nan_like_torch():
    ours = gg.zeros(0, 3, dtype=gg.float64).mean(0)
    theirs = torch.zeros(0, 3, dtype=torch.float64).mean(0)
    np.testing.assert_array_equal(as_numpy(ours), as_numpy(theirs))  # [nan, nan, nan]
    assert np.isnan(as_numpy(ours)).all()


def test_empty_mean_emits_no_numpy_warning_like_torch():
    # torch returns nan silently; a NumPy RuntimeWarning would leak graphgrad's internals.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gg.zeros(0, dtype=gg.float64).mean()
    assert [str(w.message) for w in caught] == []


def test_empty_sum_along_dim_matches_torch():
    ours = gg.zeros(2, 0, dtype=gg.float64).sum(1)
    theirs = torch.zeros(2, 0, dtype=torch.float64).sum(1)
    assert_close(ours, theirs)
    np.testing.assert_array_equal(as_numpy(ours), [0.0, 0.0])


@pytest.mark.parametrize("shapes", [((2, 0), (0, 3)), ((0, 3), (3, 2)), ((2, 3), (3, 0))])
def test_empty_matmul_and_its_backward_match_torch(shapes):
    results = []
    for lib in LIBS.values():
        a = lib.ones(*shapes[0], dtype=lib.float64, requires_grad=True)
        b = lib.ones(*shapes[1], dtype=lib.float64, requires_grad=True)
        product = a @ b
        product.sum().backward()
        results.append((as_numpy(product), as_numpy(a.grad), as_numpy(b.grad)))
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


def test_cat_with_empty_tensor_matches_torch():
    results = []
    for lib in LIBS.values():
        empty = lib.zeros(0, 3, dtype=lib.float64, requires_grad=True)
        full = lib.ones(2, 3, dtype=lib.float64, requires_grad=True)
        joined = lib.cat([empty, full])
        (joined * 2.0).sum().backward()
        results.append((as_numpy(joined), as_numpy(empty.grad), as_numpy(full.grad)))
    for ours, theirs in zip(*results):
        assert ours.shape == theirs.shape
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_max_of_empty_tensor_raises(lib):
    with pytest.raises(RuntimeError):
        lib.zeros(0, 3).max()


# ---------------------------------------------------------------------- identity, not equality


def test_equal_valued_leaves_get_separate_gradients():
    grads = []
    for lib in LIBS.values():
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([1.0, 2.0], requires_grad=True)  # equal values, different tensor
        (a * 3.0 + b * 5.0).sum().backward()
        grads.append((as_numpy(a.grad), as_numpy(b.grad)))
    for ours, theirs in zip(*grads):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(grads[0][0], [3.0, 3.0])
    np.testing.assert_array_equal(grads[0][1], [5.0, 5.0])


def test_equal_valued_intermediates_keep_separate_gradients():
    # Two nodes with identical values and shapes: a walk keyed on value would merge them.
    x = gg.tensor([2.0], dtype=gg.float64, requires_grad=True)
    first, second = x * 1.0, x * 1.0
    first.retain_grad()
    second.retain_grad()
    (first * 7.0 + second * 11.0).sum().backward()
    assert first.grad.item() == 7.0 and second.grad.item() == 11.0
    assert x.grad.item() == 18.0


def test_autograd_grad_with_equal_valued_inputs_returns_each_its_own():
    a = gg.tensor([1.0], dtype=gg.float64, requires_grad=True)
    b = gg.tensor([1.0], dtype=gg.float64, requires_grad=True)
    ga, gb, ga_again = gg.autograd.grad((a * 2.0 + b * 9.0).sum(), [a, b, a])
    assert (ga.item(), gb.item(), ga_again.item()) == (2.0, 9.0, 2.0)


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_tensors_as_dict_keys_and_set_members_work_by_identity(lib):
    a, b = lib.tensor([1.0, 2.0]), lib.tensor([1.0, 2.0])
    names = {a: "a", b: "b"}
    assert len(names) == 2 and names[a] == "a" and names[b] == "b"
    members = {a, b, a}
    assert len(members) == 2 and a in members and b in members
    assert lib.tensor([1.0, 2.0]) not in names


# ---------------------------------------------------------------------- memory


STEPS = 10_000
MEMORY_BUDGET = 1 << 20  # bytes


def _tiny_mlp():
    rng = np.random.default_rng(0)
    x = gg.tensor(rng.standard_normal((4, 3)))
    weights = [
        gg.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
        for s in ((3, 6), (6, 6), (6, 1))
    ]
    return x, weights


def _training_step(x, weights):
    """One forward/backward; returns the loss, its node and a hidden activation's node."""
    for w in weights:
        w.grad = None
    h1 = (x @ weights[0]).tanh()
    h2 = (h1 @ weights[1]).tanh()
    loss = ((h2 @ weights[2]) ** 2).mean()
    loss.backward()
    return loss, h1


def _run_step_and_check_freed(x, weights) -> None:
    loss, hidden = _training_step(x, weights)
    refs = [weakref.ref(loss), weakref.ref(loss.grad_fn), weakref.ref(hidden.grad_fn)]
    del loss, hidden  # the step is over: nothing but a reference cycle could keep it alive
    dead = [r() is None for r in refs]
    assert dead == [True, True, True], "a graph outlived its step (reference cycle?)"


def test_memory_stays_flat_over_many_steps_without_gc():
    x, weights = _tiny_mlp()
    for _ in range(50):  # warm caches (free lists, interned objects) before measuring
        _training_step(x, weights)
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(STEPS):
            _run_step_and_check_freed(x, weights)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        gc.enable()
    assert current - start < MEMORY_BUDGET
    assert peak - start < MEMORY_BUDGET


def test_backward_keeps_a_fresh_gradient_as_grad_instead_of_copying_it():
    """The gradient of ``(x @ w).sum()`` for a 1000 x 1000 float64 ``w`` is one new 8 MB
    array (``x.T @ g``); storing it as ``w.grad`` must not copy it: a copy doubles the peak
    and, for big weights, page-faults every step. Where two leaves get the same array
    (``a + b``), each must still own its ``.grad``."""
    w = gg.zeros(1000, 1000, dtype=gg.float64, requires_grad=True)
    x = gg.ones(1, 1000, dtype=gg.float64)
    tracemalloc.start()
    try:
        (x @ w).sum().backward()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * 8_000_000, f"backward peaked at {peak / 1e6:.1f} MB"
    np.testing.assert_array_equal(w.grad.numpy(), np.ones((1000, 1000)))
    a, b = gg.ones(4, requires_grad=True), gg.ones(4, requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())


# ---------------------------------------------------------------------- deep graphs


CHAIN_PAIRS = 50_000  # 100,000 ops: a multiply and an add per pair
FACTOR, OFFSET = 1.0000001, 1e-7


def _expected_chain(x0: float) -> tuple[float, float]:
    """Value and derivative of the chain, as the same float64 operations in a NumPy loop."""
    value, slope = np.float64(x0), np.float64(1.0)
    for _ in range(CHAIN_PAIRS):
        value = value * FACTOR + OFFSET
    for _ in range(CHAIN_PAIRS):
        slope = slope * FACTOR
    return float(value), float(slope)


def test_chain_of_100k_ops_differentiates_and_is_freed():
    x = gg.tensor([0.5], dtype=gg.float64, requires_grad=True)
    y = x
    for _ in range(CHAIN_PAIRS):
        y = y * FACTOR
        y = y + OFFSET
    y.sum().backward()
    value, slope = _expected_chain(0.5)
    np.testing.assert_allclose(as_numpy(y), [value], rtol=1e-12)
    np.testing.assert_allclose(as_numpy(x.grad), [slope], rtol=1e-12)
    np.testing.assert_allclose(as_numpy(x.grad), [FACTOR**CHAIN_PAIRS], rtol=1e-9)  # closed form
    root = weakref.ref(y.grad_fn)
    gc.disable()
    try:
        del y  # deallocating 100,000 nested nodes must not recurse into a RecursionError
        assert root() is None
    finally:
        gc.enable()


# ---------------------------------------------------------------------- error messages


def _raise_and_capture(fn, kind):
    with pytest.raises(kind) as info:
        fn()
    return str(info.value), traceback.extract_tb(info.tb)


def _assert_raised_in_graphgrad(frames) -> None:
    """The last frame is graphgrad's own code and NumPy's internals are not in the traceback."""
    assert os.path.abspath(frames[-1].filename).startswith(GRAPHGRAD_DIR)
    assert not any(os.path.abspath(f.filename).startswith(NUMPY_DIR) for f in frames)


def test_matmul_shape_error_names_op_shapes_and_inner_dims():
    message, frames = _raise_and_capture(lambda: gg.ones(3, 4) @ gg.ones(5, 2), RuntimeError)
    for part in ("matmul", "(3, 4)", "(5, 2)", "inner dimensions differ (4 != 5)"):
        assert part in message
    _assert_raised_in_graphgrad(frames)
    with pytest.raises(RuntimeError):
        torch.ones(3, 4) @ torch.ones(5, 2)


def test_broadcast_error_names_add_and_both_shapes():
    message, frames = _raise_and_capture(lambda: gg.ones(3) + gg.ones(4), RuntimeError)
    for part in ("add", "(3,)", "(4,)"):
        assert part in message
    _assert_raised_in_graphgrad(frames)
    with pytest.raises(RuntimeError):
        torch.ones(3) + torch.ones(4)


def test_reshape_error_names_reshape_and_shapes():
    message, frames = _raise_and_capture(lambda: gg.ones(12).reshape(5), RuntimeError)
    for part in ("reshape", "(12,)", "(5,)"):
        assert part in message
    _assert_raised_in_graphgrad(frames)
    with pytest.raises(RuntimeError):
        torch.ones(12).reshape(5)


@pytest.mark.parametrize("shape,index", [((3,), 5), ((3, 4), (1, 7)), ((3,), -4)])
def test_out_of_range_index_raises_index_error_naming_index_and_shape(shape, index):
    message, frames = _raise_and_capture(lambda: gg.ones(*shape)[index], IndexError)
    bad = index[-1] if isinstance(index, tuple) else index
    assert str(bad) in message and str(shape) in message
    _assert_raised_in_graphgrad(frames)
    with pytest.raises(IndexError):
        torch.ones(*shape)[index]
