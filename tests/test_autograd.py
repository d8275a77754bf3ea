"""Autograd behaviour of graphgrad compared with torch on the same inputs.

Every test runs the same computation through ``graphgrad`` and ``torch`` (the oracle) and compares
values, gradients, error types and grad_fn names, or checks hand-worked numbers. Values are
float64 wherever a comparison is tight, so that only the maths can differ, not rounding.
"""

from __future__ import annotations

import operator
import threading

import numpy as np
import pytest
import torch

import graphgrad as gg

LIBS = {"graphgrad": gg, "torch": torch}
RNG_SEED = 1234


# ---------------------------------------------------------------------- helpers


def leaf_pair(array, requires_grad: bool = True):
    """The same values as a graphgrad leaf and a torch leaf (dtype kept, float64 by default)."""
    array = np.asarray(array, dtype=np.float64) if np.asarray(array).dtype.kind == "f" else array
    return (
        gg.tensor(array, requires_grad=requires_grad),
        torch.tensor(array, requires_grad=requires_grad),
    )


def as_numpy(t) -> np.ndarray:
    """Values of a graphgrad or torch tensor as a NumPy array, whatever its requires_grad."""
    return np.asarray(t.detach().numpy())


def assert_close(gg_value, torch_value, rtol: float = 1e-12, atol: float = 1e-12) -> None:
    np.testing.assert_allclose(as_numpy(gg_value), as_numpy(torch_value), rtol=rtol, atol=atol)


def random_array(*shape, seed: int = RNG_SEED) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def grad_fn_name(t) -> str:
    """The node's class name; torch's ``name()`` and ``type(..).__name__`` agree for built-ins."""
    return t.grad_fn.name()


# ---------------------------------------------------------------------- accumulation and backward


def test_leaf_used_three_times_sums_all_three_contributions():
    x_gg, x_t = leaf_pair([0.5, -1.0, 2.0])
    for x in (x_gg, x_t):
        (x * x + x.exp()).sum().backward()  # three uses: d/dx = 2x + exp(x)
    assert_close(x_gg.grad, x_t.grad)
    expected = 2 * np.array([0.5, -1.0, 2.0]) + np.exp([0.5, -1.0, 2.0])
    np.testing.assert_allclose(as_numpy(x_gg.grad), expected, rtol=1e-12)


def test_intermediate_node_used_three_times_receives_summed_gradient():
    x_gg, x_t = leaf_pair([0.3, -0.7])
    for x in (x_gg, x_t):
        h = x.tanh()
        (h * h + h).sum().backward()
    assert_close(x_gg.grad, x_t.grad)


def test_grad_accumulates_across_two_backward_calls():
    x_gg, x_t = leaf_pair([1.0, 2.0, 3.0])
    for x in (x_gg, x_t):
        (x * x).sum().backward()
        (x * x * x).sum().backward()  # a new graph: its gradient adds to the first
    assert_close(x_gg.grad, x_t.grad)
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(as_numpy(x_gg.grad), 2 * x + 3 * x**2)


def test_backward_with_explicit_gradient_for_non_scalar_output():
    values = random_array(2, 3)
    weights = random_array(2, 3, seed=7)
    x_gg, x_t = leaf_pair(values)
    (x_gg * x_gg).backward(gradient=gg.tensor(weights))
    (x_t * x_t).backward(gradient=torch.tensor(weights))
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), 2 * values * weights)


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_non_scalar_backward_without_gradient_raises(lib):
    x = lib.ones(2, 3, dtype=lib.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (x * 2).backward()


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_second_backward_through_freed_graph_raises_mentioning_retain_graph(lib):
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = (x * x).sum()  # mul saves its inputs; the first backward frees them
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_retain_graph_allows_second_backward_and_doubles_grads():
    x_gg, x_t = leaf_pair([1.0, -2.0])
    for x in (x_gg, x_t):
        y = (x * x.sin()).sum()
        y.backward(retain_graph=True)
        y.backward()
    assert_close(x_gg.grad, x_t.grad)
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(as_numpy(x_gg.grad), 2 * (np.sin(x) + x * np.cos(x)))


def test_add_only_graph_can_be_backwarded_twice_like_torch():
    # Nothing is saved for backward, so torch has nothing to free and allows a second pass.
    x_gg, x_t = leaf_pair([1.0, 2.0])
    for x in (x_gg, x_t):
        y = (x + x + 1.0).sum()
        y.backward()
        y.backward()
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [4.0, 4.0])


# ---------------------------------------------------------------------- grad_fn names


def _name_cases(lib):
    """Operation name -> a function of two float64 leaves (x: 3x4, y: 4x2) for ``lib``."""
    return {
        "mul": lambda x, y: x * x,
        "mul_scalar": lambda x, y: x * 2.0,
        "add": lambda x, y: x + x,
        "add_scalar": lambda x, y: x + 1.0,
        "sub": lambda x, y: x - x,
        "rsub_scalar": lambda x, y: 1.0 - x,
        "div": lambda x, y: x / (x * x + 1.0),
        "pow_scalar_exponent": lambda x, y: x**2,
        "pow_tensor_exponent": lambda x, y: x.abs() ** x,
        "exp": lambda x, y: x.exp(),
        "log": lambda x, y: x.abs().log(),
        "tanh": lambda x, y: x.tanh(),
        "sigmoid": lambda x, y: x.sigmoid(),
        "relu": lambda x, y: x.relu(),
        "neg": lambda x, y: -x,
        "sum_all": lambda x, y: x.sum(),
        "sum_dim": lambda x, y: x.sum(1),
        "mean_all": lambda x, y: x.mean(),
        "mean_dim": lambda x, y: x.mean(0),
        "matmul_2d": lambda x, y: x @ y,
        "matmul_matrix_vector": lambda x, y: x @ y[:, 0],
        "transpose": lambda x, y: x.transpose(0, 1),
        "t": lambda x, y: x.t(),
        "permute": lambda x, y: x.permute(1, 0),
        "unsqueeze": lambda x, y: x.unsqueeze(0),
        "squeeze_dim": lambda x, y: x.unsqueeze(0).squeeze(0),
        "reshape": lambda x, y: x.reshape(12),
        "expand": lambda x, y: x[:1].expand(3, 4),
        "select": lambda x, y: x[0],
        "slice": lambda x, y: x[1:],
        "clone": lambda x, y: x.clone(),
        "cat": lambda x, y: lib.cat([x, x]),
        "softmax": lambda x, y: x.softmax(1),
        "log_softmax": lambda x, y: x.log_softmax(1),
    }


@pytest.mark.parametrize("op", list(_name_cases(gg)))
def test_grad_fn_name_matches_torch(op):
    x_gg, x_t = leaf_pair(random_array(3, 4))
    y_gg, y_t = leaf_pair(random_array(4, 2, seed=5))
    out_gg = _name_cases(gg)[op](x_gg, y_gg)
    out_t = _name_cases(torch)[op](x_t, y_t)
    assert grad_fn_name(out_gg) == type(out_t.grad_fn).__name__


# ---------------------------------------------------------------------- leaves, detach, retain_grad


def _leaf_flags(lib):
    """(requires_grad, is_leaf, has grad_fn) for tensors made in the usual ways."""
    w = lib.tensor([1.0, 2.0], requires_grad=True)
    c = lib.tensor([3.0, 4.0])
    made = {
        "leaf": w,
        "constant": c,
        "leaf_times_constant": w * c,
        "constant_times_constant": c * c,
        "detached": (w * c).detach(),
    }
    with lib.no_grad():
        made["under_no_grad"] = w * c
    return {k: (t.requires_grad, t.is_leaf, t.grad_fn is not None) for k, t in made.items()}


def test_is_leaf_and_requires_grad_propagation_match_torch():
    assert _leaf_flags(gg) == _leaf_flags(torch)
    assert _leaf_flags(gg)["leaf_times_constant"] == (True, False, True)


def test_detach_shares_memory_and_cuts_the_graph():
    x_gg, x_t = leaf_pair([1.0, 2.0])
    for x in (x_gg, x_t):
        d = x.detach()
        d.add_(10.0)  # d does not require grad; its storage is x's, as in torch
        (d * x).sum().backward()  # d is a constant: d/dx = d
    assert_close(x_gg, x_t)
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [11.0, 12.0])


# ---------------------------------------------------------------------- outputs without gradient


def _not_float_cases(lib):
    """Name -> a function of a float64 leaf x (3x4) whose result is not floating point."""
    cases = {
        "bool": lambda x: x.bool(),
        "long": lambda x: x.long(),
        "int": lambda x: x.int(),
        "to_int64": lambda x: x.to(lib.int64),
        "to_bool_keyword": lambda x: x.to(dtype=lib.bool),
        "type_int32": lambda x: x.type(lib.int32),
        "type_as_int": lambda x: x.type_as(lib.tensor([1])),
        "argmax": lambda x: x.argmax(),
        "argmin_dim": lambda x: x.argmin(1),
        "max_dim_indices": lambda x: x.max(0).indices,
        "isnan": lambda x: x.isnan(),
        "isinf": lambda x: lib.isinf(x),
        "isfinite": lambda x: x.isfinite(),
        "logical_not": lambda x: x.logical_not(),
        "logical_and": lambda x: lib.logical_and(x, x),
        "and": lambda x: (x > 0) & (x < 1),
        "invert": lambda x: ~(x > 0),
        "all": lambda x: x.all(),
        "any_dim": lambda x: x.any(1),
        "equal_shapes_mask": lambda x: x == x,
    }
    for name in ("gt", "lt", "ge", "le", "eq", "ne"):
        compare = getattr(operator, name)  # the Python operator: x > 0.25 and 0.25 > x
        cases[f"{name}_number"] = lambda x, f=compare: f(x, 0.25)
        cases[f"{name}_number_first"] = lambda x, f=compare: f(0.25, x)
        cases[f"{name}_tensor"] = lambda x, f=compare: f(x, x.detach() * 0.5)
        cases[f"{name}_method"] = lambda x, n=name: getattr(x, n)(0.25)
        cases[f"{name}_function"] = lambda x, n=name: getattr(lib, n)(x, 0.25)
        cases[f"{name}_function_tensor"] = lambda x, n=name: getattr(lib, n)(x, x)
    return cases


@pytest.mark.parametrize("case", list(_not_float_cases(gg)))
def test_outputs_that_are_not_floating_point_never_require_grad_like_torch(case):
    x_gg, x_t = leaf_pair(random_array(3, 4))
    out_gg, out_t = _not_float_cases(gg)[case](x_gg), _not_float_cases(torch)[case](x_t)
    assert str(out_gg.dtype).split(".")[-1] == str(out_t.dtype).split(".")[-1]
    assert not out_t.is_floating_point() and out_t.grad_fn is None and not out_t.requires_grad
    assert out_gg.grad_fn is None and not out_gg.requires_grad and out_gg.is_leaf


def _masking_cases(lib):
    """Name -> a loss of a float64 leaf x that multiplies or selects by a mask computed from x."""
    return {
        "times_comparison": lambda x: (x * (x > 0.3)).sum(),
        "comparison_times": lambda x: ((x <= 0.3) * x.exp()).sum(),
        "times_float_mask": lambda x: (x * (x != 0.0).float()).sum(),
        "times_long_mask": lambda x: (x * x.ge(0).long()).sum(),
        "where": lambda x: lib.where(x > 0, x * x, -x).sum(),
        "boolean_index": lambda x: x[x > 0].pow(3).sum(),
        "masked_mean": lambda x: (x * (x.abs() < 1)).sum() / (x.abs() < 1).sum(),
        "argmax_gather": lambda x: x.gather(1, x.argmax(1, keepdim=True)).sum(),
        "relu_by_hand": lambda x: (x * (x > 0)).pow(2).sum(),
        "floor_divide_float": lambda x: (x.div(0.5, rounding_mode="floor") * x).sum(),
        "sign_floor_round": lambda x: (x * x.sign() + x.floor() + x.ceil() * x.round()).sum(),
    }


@pytest.mark.parametrize("case", list(_masking_cases(gg)))
def test_gradients_through_masks_match_torch(case):
    x_gg, x_t = leaf_pair(random_array(3, 4))
    _masking_cases(gg)[case](x_gg).backward()
    _masking_cases(torch)[case](x_t).backward()
    assert_close(x_gg.grad, x_t.grad)


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_floor_divide_backward_raises_like_torch(lib):
    x = lib.tensor([1.5, -2.5], requires_grad=True)
    out = x // 0.5
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="not implemented"):
        out.sum().backward()


@pytest.mark.parametrize("op", ["sign", "floor", "ceil", "round"])
def test_piecewise_constant_gradients_are_constant_zeros_like_torch(op):
    # torch's backward is zeros_like(grad): a NaN gradient gives 0, and with create_graph the
    # zeros do not require grad.
    for lib in LIBS.values():
        x = lib.tensor([-1.3, 0.4, 2.6], dtype=lib.float64, requires_grad=True)
        upstream = lib.tensor([float("nan"), 1.0, 2.0], dtype=lib.float64)
        (g,) = lib.autograd.grad(getattr(x, op)(), x, upstream, create_graph=True)
        assert not g.requires_grad
        np.testing.assert_array_equal(as_numpy(g), [0.0, 0.0, 0.0])


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_requires_grad_on_integer_tensor_raises(lib):
    with pytest.raises(RuntimeError, match="floating point"):
        lib.tensor([1, 2, 3]).requires_grad_()


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_requires_grad_false_on_non_leaf_raises(lib):
    y = lib.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_retain_grad_keeps_non_leaf_gradient():
    x_gg, x_t = leaf_pair([0.5, 1.5])
    hidden = {}
    for name, x in (("gg", x_gg), ("torch", x_t)):
        h = x * x
        h.retain_grad()
        (h.sin() * 3.0).sum().backward()
        hidden[name] = h
    assert hidden["gg"].retains_grad and hidden["torch"].retains_grad
    assert_close(hidden["gg"].grad, hidden["torch"].grad)
    np.testing.assert_allclose(as_numpy(hidden["gg"].grad), 3 * np.cos([0.25, 2.25]))


# ---------------------------------------------------------------------- hooks


def test_leaf_hooks_replace_gradient_in_registration_order():
    x_gg, x_t = leaf_pair([1.0, 2.0])
    for x in (x_gg, x_t):
        x.register_hook(lambda g: g * 2)
        x.register_hook(lambda g: g + 1)  # sees the doubled gradient
        (x * x).sum().backward()
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [5.0, 9.0])


def test_non_leaf_hook_sees_and_changes_upstream_gradient():
    x_gg, x_t = leaf_pair([0.2, -0.4, 0.6])
    seen = {}
    for name, x in (("gg", x_gg), ("torch", x_t)):
        h = x.tanh()
        seen[name] = []
        h.register_hook(lambda g, log=seen[name]: log.append(as_numpy(g).copy()))
        h.register_hook(lambda g: g * 3)  # the gradient reaching x is tripled
        (h * h).sum().backward()
    np.testing.assert_allclose(seen["gg"][0], seen["torch"][0], rtol=1e-12)
    assert_close(x_gg.grad, x_t.grad)


def test_removed_hook_no_longer_runs():
    x_gg, x_t = leaf_pair([1.0, 2.0])
    for x in (x_gg, x_t):
        h = x * 1.0
        leaf_handle = x.register_hook(lambda g: g * 100)
        node_handle = h.register_hook(lambda g: g * 10)
        leaf_handle.remove()
        node_handle.remove()
        (h * h).sum().backward()
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [2.0, 4.0])


def test_leaf_hook_applies_to_autograd_grad_result_like_torch():
    # torch runs a tensor's hooks before autograd.grad captures its gradient.
    x_gg, x_t = leaf_pair([1.0, 2.0])
    results = []
    for lib, x in ((gg, x_gg), (torch, x_t)):
        x.register_hook(lambda g: g * 10)
        (g,) = lib.autograd.grad((x * x).sum(), x)
        results.append(g)
    np.testing.assert_allclose(as_numpy(results[1]), [20.0, 40.0])
    assert_close(results[0], results[1])


# ---------------------------------------------------------------------- grad mode


def _state_trace(lib):
    """(is_grad_enabled, does a new op record) at each point of nested grad-mode contexts."""
    x = lib.ones(2, requires_grad=True)
    trace = []

    def record():
        trace.append((lib.is_grad_enabled(), (x * 2).requires_grad))

    record()
    with lib.no_grad():
        record()
        with lib.enable_grad():
            record()
            with lib.set_grad_enabled(False):
                record()
            record()
        record()
    with lib.set_grad_enabled(True):
        record()
    record()
    return trace


def test_nested_state_contexts_match_torch():
    on, off = (True, True), (False, False)
    assert _state_trace(gg) == _state_trace(torch) == [on, off, on, off, on, off, on, on]


def _decorator_trace(lib):
    """What decorated functions see, called with grad on and inside no_grad."""
    x = lib.ones(2, requires_grad=True)

    @lib.no_grad()
    def no_grad_called():
        return lib.is_grad_enabled(), (x * 2).requires_grad

    @lib.no_grad
    def no_grad_bare():
        return lib.is_grad_enabled(), (x * 2).requires_grad

    @lib.enable_grad()
    def enabled():
        return lib.is_grad_enabled(), (x * 2).requires_grad

    @lib.set_grad_enabled(False)
    def disabled():
        return lib.is_grad_enabled(), (x * 2).requires_grad

    trace = [no_grad_called(), no_grad_bare(), disabled(), lib.is_grad_enabled()]
    with lib.no_grad():
        trace += [enabled(), lib.is_grad_enabled()]
    return trace


def test_state_decorators_match_torch():
    trace = _decorator_trace(gg)
    assert trace == _decorator_trace(torch)
    assert trace == [(False, False), (False, False), (False, False), True, (True, True), False]


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_set_grad_enabled_as_a_call_takes_effect_immediately(lib):
    try:
        lib.set_grad_enabled(False)
        assert not lib.is_grad_enabled()
        assert not (lib.ones(1, requires_grad=True) * 2).requires_grad
    finally:
        lib.set_grad_enabled(True)
    assert lib.is_grad_enabled()


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_state_restored_after_exception(lib):
    with pytest.raises(ValueError):
        with lib.no_grad():
            raise ValueError("inside no_grad")
    assert lib.is_grad_enabled()


def _thread_trace(lib):
    """A worker enters no_grad and waits there while the main thread computes; then a thread
    started inside the main thread's no_grad checks that it begins with grad enabled."""
    x = lib.ones(2, requires_grad=True)
    worker_inside, main_done = threading.Event(), threading.Event()
    seen = {}

    def worker_in_no_grad():
        with lib.no_grad():
            worker_inside.set()
            main_done.wait(timeout=10)  # hold no_grad while the main thread records
            seen["worker"] = (lib.is_grad_enabled(), (x * 2).requires_grad)

    def fresh_worker():
        seen["fresh"] = (lib.is_grad_enabled(), (x * 2).requires_grad)

    thread = threading.Thread(target=worker_in_no_grad)
    thread.start()
    assert worker_inside.wait(timeout=10)
    seen["main"] = (lib.is_grad_enabled(), (x * 2).requires_grad)
    main_done.set()
    thread.join(timeout=10)
    with lib.no_grad():
        thread = threading.Thread(target=fresh_worker)
        thread.start()
        thread.join(timeout=10)
        seen["main_in_no_grad"] = lib.is_grad_enabled()
    return seen


def test_state_is_thread_local_like_torch():
    seen = _thread_trace(gg)
    assert seen == _thread_trace(torch)
    assert seen == {
        "worker": (False, False),
        "main": (True, True),
        "fresh": (True, True),
        "main_in_no_grad": False,
    }


# ---------------------------------------------------------------------- autograd.grad


def test_autograd_grad_with_grad_outputs_for_several_inputs():
    x_gg, x_t = leaf_pair(random_array(3))
    w_gg, w_t = leaf_pair(random_array(3, seed=3))
    v = random_array(3, seed=4)
    g_gg = gg.autograd.grad(x_gg * w_gg.exp(), [x_gg, w_gg], grad_outputs=gg.tensor(v))
    g_t = torch.autograd.grad(x_t * w_t.exp(), [x_t, w_t], grad_outputs=torch.tensor(v))
    for a, b in zip(g_gg, g_t):
        assert_close(a, b)


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_autograd_grad_frees_graph_unless_retain_graph(lib):
    x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
    y = (x * x).sum()
    first = lib.autograd.grad(y, x, retain_graph=True)[0]
    second = lib.autograd.grad(y, x)[0]
    np.testing.assert_allclose(as_numpy(first), [2.0, 4.0])
    np.testing.assert_allclose(as_numpy(second), [2.0, 4.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        lib.autograd.grad(y, x)


def test_autograd_grad_create_graph_gives_differentiable_gradient():
    x_gg, x_t = leaf_pair([0.5, 1.5])
    results = []
    for lib, x in ((gg, x_gg), (torch, x_t)):
        (g,) = lib.autograd.grad((x**3).sum(), x, create_graph=True)
        assert g.requires_grad
        (gg2,) = lib.autograd.grad(g.sum(), x)
        results.append((g, gg2))
    assert_close(results[0][0], results[1][0])
    assert_close(results[0][1], results[1][1])
    np.testing.assert_allclose(as_numpy(results[0][1]), [3.0, 9.0])  # d2/dx2 x^3 = 6x


@pytest.mark.parametrize("lib", LIBS.values(), ids=LIBS.keys())
def test_autograd_grad_unused_input(lib):
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    unused = lib.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        lib.autograd.grad((x * x).sum(), [x, unused])
    gx, gu = lib.autograd.grad((x * x).sum(), [x, unused], allow_unused=True)
    np.testing.assert_allclose(as_numpy(gx), [2.0, 4.0])
    assert gu is None


def test_autograd_grad_leaves_dot_grad_untouched():
    x_gg, x_t = leaf_pair([1.0, 2.0])
    w_gg, w_t = leaf_pair([3.0, 4.0])
    for lib, x, w in ((gg, x_gg, w_gg), (torch, x_t, w_t)):
        (x * w).sum().backward()  # x.grad = w, w.grad = x
        lib.autograd.grad((x * x * w).sum(), x)  # must not add to x.grad nor touch w.grad
    assert_close(x_gg.grad, x_t.grad)
    assert_close(w_gg.grad, w_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [3.0, 4.0])
    np.testing.assert_allclose(as_numpy(w_gg.grad), [1.0, 2.0])


def test_autograd_grad_with_respect_to_non_leaf_tensors():
    x_gg, x_t = leaf_pair(random_array(2, 3))
    results = []
    for lib, x in ((gg, x_gg), (torch, x_t)):
        h = x * 2.0
        z = h.tanh()
        loss = (z * z + h).sum()
        results.append(lib.autograd.grad(loss, [h, z, x]))
        assert x.grad is None
    for a, b in zip(*results):
        assert_close(a, b)


# ---------------------------------------------------------------------- autograd.Function


def _exp_function(lib):
    """exp with its output saved for backward, recording needs_input_grad on each call."""
    calls = []

    class SavedExp(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            y = x.exp() * scale
            ctx.save_for_backward(y)
            calls.append(tuple(ctx.needs_input_grad))
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            calls.append(tuple(ctx.needs_input_grad))
            return grad * y, None

    return SavedExp, calls


def test_custom_function_with_integer_output_does_not_require_grad_like_torch():
    flags = []
    for lib in LIBS.values():

        class Positive(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return (x > 0).long()

            @staticmethod
            def backward(ctx, grad):
                return grad

        out = Positive.apply(lib.tensor([1.0, -1.0], requires_grad=True))
        flags.append((out.requires_grad, out.grad_fn is None, str(out.dtype).split(".")[-1]))
    assert flags[0] == flags[1] == (False, True, "int64")


def test_custom_function_with_saved_output_matches_torch():
    x_gg, x_t = leaf_pair([0.1, -0.5, 1.2])
    grads, needs = [], []
    for lib, x in ((gg, x_gg), (torch, x_t)):
        saved_exp, calls = _exp_function(lib)
        out = saved_exp.apply(x, lib.tensor(2.0, dtype=lib.float64))
        assert out.grad_fn.name() == "SavedExpBackward"
        (out * out).sum().backward()
        grads.append(x.grad)
        needs.append(calls)
    assert_close(grads[0], grads[1])
    assert needs[0] == needs[1] == [(True, False), (True, False)]


def _clipped_identity(lib):
    """Identity forward; backward passes gradient only where |x| <= 1 (a straight-through clip)."""

    class ClippedIdentity(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x.abs() <= 1.0).to(grad.dtype)

    return ClippedIdentity


def test_custom_clipped_identity_matches_torch():
    values = [-2.0, -0.5, 0.0, 0.9, 1.5]
    x_gg, x_t = leaf_pair(values)
    for lib, x in ((gg, x_gg), (torch, x_t)):
        (_clipped_identity(lib).apply(x) * 3.0).sum().backward()
    assert_close(x_gg.grad, x_t.grad)
    np.testing.assert_allclose(as_numpy(x_gg.grad), [0.0, 3.0, 3.0, 3.0, 0.0])


def test_custom_function_double_backward_through_saved_output_matches_torch():
    # torch reconnects a saved output to the graph, so d2/dx2 of a custom exp is exp(x).
    x_gg, x_t = leaf_pair([0.3, 0.8])
    second = []
    for lib, x in ((gg, x_gg), (torch, x_t)):
        saved_exp, _ = _exp_function(lib)
        y = saved_exp.apply(x, lib.tensor(1.0, dtype=lib.float64))
        (g,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        second.append(lib.autograd.grad(g.sum(), x)[0])
    assert_close(second[0], second[1])


# ---------------------------------------------------------------------- higher order


THIRD_ORDER_CASES = {
    "tanh": (lambda lib, x: x.tanh(), [-0.8, 0.1, 1.3]),
    "sigmoid": (lambda lib, x: x.sigmoid(), [-1.5, 0.2, 2.0]),
    "sin_times_exp": (lambda lib, x: x.sin() * x.exp(), [-0.7, 0.4, 1.1]),
    "cube": (lambda lib, x: x**3, [-2.0, 0.5, 3.0]),
    "log": (lambda lib, x: x.log(), [0.3, 1.0, 2.5]),
    "sqrt": (lambda lib, x: x.sqrt(), [0.4, 1.0, 3.0]),
    "reciprocal_of_quadratic": (lambda lib, x: 1.0 / (1.0 + x * x), [-1.0, 0.3, 2.0]),
    "weighted_softmax": (
        lambda lib, x: x.softmax(0) * lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64),
        [0.2, -0.4, 0.9],
    ),
    "weighted_log_softmax": (
        lambda lib, x: x.log_softmax(0) * lib.tensor([1.0, -2.0, 0.5], dtype=lib.float64),
        [0.2, -0.4, 0.9],
    ),
}


def _third_derivative(lib, fn, x):
    """d/dx of d/dx of d/dx of sum(fn(x)), each step via autograd.grad(create_graph=True)."""
    (g1,) = lib.autograd.grad(fn(lib, x).sum(), x, create_graph=True)
    (g2,) = lib.autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = lib.autograd.grad(g2.sum(), x)
    return g1, g2, g3


@pytest.mark.parametrize("case", list(THIRD_ORDER_CASES))
def test_third_derivative_matches_torch(case):
    fn, values = THIRD_ORDER_CASES[case]
    x_gg, x_t = leaf_pair(values)
    for ours, theirs in zip(_third_derivative(gg, fn, x_gg), _third_derivative(torch, fn, x_t)):
        assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_third_derivative_of_cube_by_hand():
    x = gg.tensor([-2.0, 0.5, 3.0], dtype=gg.float64, requires_grad=True)
    g1, g2, g3 = _third_derivative(gg, THIRD_ORDER_CASES["cube"][0], x)
    values = np.array([-2.0, 0.5, 3.0])
    np.testing.assert_allclose(as_numpy(g1), 3 * values**2)
    np.testing.assert_allclose(as_numpy(g2), 6 * values)
    np.testing.assert_allclose(as_numpy(g3), [6.0, 6.0, 6.0])


def _mlp_params(rng):
    """A 4-5-3 MLP's weights and data, as float64 arrays."""
    shapes = {"w1": (4, 5), "b1": (5,), "w2": (5, 3), "b2": (3,)}
    params = {k: rng.standard_normal(s) * 0.7 for k, s in shapes.items()}
    data = {"x": rng.standard_normal((6, 4)), "y": rng.standard_normal((6, 3))}
    direction = {k: rng.standard_normal(s) for k, s in shapes.items()}
    return params, data, direction


def _hessian_vector_product(lib, params, data, direction, activation="tanh"):
    p = {k: lib.tensor(v, requires_grad=True) for k, v in params.items()}
    x, y = lib.tensor(data["x"]), lib.tensor(data["y"])
    hidden = getattr(x @ p["w1"] + p["b1"], activation)()
    loss = ((hidden @ p["w2"] + p["b2"] - y) ** 2).mean()
    order = list(p)
    grads = lib.autograd.grad(loss, [p[k] for k in order], create_graph=True)
    dot = sum((g * lib.tensor(direction[k])).sum() for g, k in zip(grads, order))
    return grads, lib.autograd.grad(dot, [p[k] for k in order])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_mlp_hessian_vector_product_matches_torch(activation):
    params, data, direction = _mlp_params(np.random.default_rng(RNG_SEED))
    grads_gg, hvp_gg = _hessian_vector_product(gg, params, data, direction, activation)
    grads_t, hvp_t = _hessian_vector_product(torch, params, data, direction, activation)
    for ours, theirs in zip(grads_gg + hvp_gg, grads_t + hvp_t):
        assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def _gradient_penalty_step(lib, params, real, fake, mix):
    """WGAN-GP: the critic's gradient at points between real and fake samples is pushed to norm
    1, and that penalty is differentiated with respect to the critic's weights."""
    p = {k: lib.tensor(v, requires_grad=True) for k, v in params.items()}
    eps = lib.tensor(mix)
    points = (eps * lib.tensor(real) + (1 - eps) * lib.tensor(fake)).requires_grad_()
    hidden = lib.nn.functional.leaky_relu(points @ p["w1"] + p["b1"], 0.2)
    critic = (hidden.relu() @ p["w2"] + p["b2"]).sum()
    (slope,) = lib.autograd.grad(critic, points, create_graph=True)
    penalty = ((slope.norm(2, dim=1) - 1) ** 2).mean()
    penalty.backward()
    # A weight the penalty reaches only through a ReLU's mask (b1) gets zeros from torch and None
    # from graphgrad: both say its second derivative is zero.
    grads = {k: lib.zeros_like(t) if t.grad is None else t.grad for k, t in p.items()}
    return {"penalty": penalty, **grads}


def test_gradient_penalty_matches_torch():
    rng = np.random.default_rng(RNG_SEED)
    params, data, _ = _mlp_params(rng)
    params["w2"], params["b2"] = params["w2"][:, :1], params["b2"][:1]  # a critic: one output
    real, fake, mix = data["x"], rng.standard_normal((6, 4)), rng.uniform(size=(6, 1))
    ours = _gradient_penalty_step(gg, params, real, fake, mix)
    theirs = _gradient_penalty_step(torch, params, real, fake, mix)
    for name in ours:
        assert_close(ours[name], theirs[name], rtol=1e-10, atol=1e-12)
    assert float(as_numpy(theirs["w1"]).std()) > 0  # the penalty does reach the first layer


# ---------------------------------------------------------------------- gradcheck


GRADCHECK_CASES = {
    "mul_sin": (lambda a, b: (a * b.sin()).sum(), [(3,), (3,)]),
    "matmul": (lambda a, b: a @ b, [(2, 3), (3, 4)]),
    "broadcast_div": (lambda a, b: a / (b * b + 1.0), [(2, 3), (3,)]),
    "softmax_tanh": (lambda a, b: (a.tanh() + b).softmax(1), [(2, 3), (1, 3)]),
    "pow_log": (lambda a, b: (a * a + 1.0) ** b.sigmoid(), [(4,), (4,)]),
}


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradcheck_passes_on_correct_functions(case):
    fn, shapes = GRADCHECK_CASES[case]
    inputs = [gg.tensor(random_array(*s, seed=i), requires_grad=True) for i, s in enumerate(shapes)]
    assert gg.autograd.gradcheck(fn, inputs)


def _wrong_square(lib):
    """x**2 whose backward forgets the factor 2: wrong everywhere."""

    class WrongSquare(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * x

    return WrongSquare


def test_gradcheck_on_wrong_custom_function_names_worst_element():
    values = [0.5, -1.0, 4.0]  # the missing factor 2 costs most where |x| is largest: element 2
    x_t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError):
        torch.autograd.gradcheck(_wrong_square(torch).apply, (x_t,))
    x_gg = gg.tensor(values, dtype=gg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="worst") as info:
        gg.autograd.gradcheck(_wrong_square(gg).apply, (x_gg,))
    assert "input element 2" in str(info.value)


def _hook_scaled_sin(lib):
    """sin whose gradient a hook triples at element 2 only (a wrong gradient without Function)."""
    scale = lib.tensor([1.0, 1.0, 3.0, 1.0], dtype=lib.float64)

    def fn(x):
        h = x * 1.0
        if h.requires_grad:  # gradcheck also runs fn under no_grad for finite differences
            h.register_hook(lambda g: g * scale)
        return h.sin()

    return fn


def test_gradcheck_on_wrong_hooked_gradient_names_worst_element():
    values = [0.1, 0.2, 0.3, 0.4]
    x_t = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError):
        torch.autograd.gradcheck(_hook_scaled_sin(torch), (x_t,))
    x_gg = gg.tensor(values, dtype=gg.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="worst") as info:
        gg.autograd.gradcheck(_hook_scaled_sin(gg), (x_gg,))
    assert "output element 2, input element 2" in str(info.value)


def _detached_cube(lib):
    """x**3 whose backward is right (3x^2) but cut from the graph: a wrong second derivative."""

    class DetachedCube(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**3

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x.detach() ** 2

    return DetachedCube


@pytest.mark.parametrize("case", list(GRADCHECK_CASES))
def test_gradgradcheck_passes_on_correct_functions(case):
    fn, shapes = GRADCHECK_CASES[case]
    inputs = [gg.tensor(random_array(*s, seed=i), requires_grad=True) for i, s in enumerate(shapes)]
    assert gg.autograd.gradgradcheck(fn, inputs)


def test_gradgradcheck_on_wrong_second_derivative_fails_like_torch():
    values = [0.5, -1.0, 2.0]
    for lib in LIBS.values():
        x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
        assert lib.autograd.gradcheck(_detached_cube(lib).apply, (x,))
        with pytest.raises(RuntimeError, match="Jacobian mismatch"):
            lib.autograd.gradgradcheck(_detached_cube(lib).apply, (x,))


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "true_divide", "multiply"])
def test_a_number_first_function_form_names_its_node_as_torch_does(name):
    x_t = torch.tensor([1.0, 2.0], requires_grad=True)
    x_g = gg.tensor([1.0, 2.0], requires_grad=True)
    out_t, out_g = getattr(torch, name)(2.0, x_t), getattr(gg, name)(2.0, x_g)
    assert out_g.grad_fn.name() == out_t.grad_fn.name()
    out_t.sum().backward()
    out_g.sum().backward()
    np.testing.assert_allclose(x_g.grad.numpy(), x_t.grad.numpy(), rtol=1e-6)
