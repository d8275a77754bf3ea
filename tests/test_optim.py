"""graphgrad.optim against torch.optim (the oracle): trajectories, param groups, closures,
state_dict layout and resume, hyperparameter checks, and the pure update functions."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from optim_case import SHAPES, assert_close, gradient, initial_params, leaves, make, run

import graphgrad as gg
import graphgrad.optim as optim
from graphgrad.optim.adagrad import adagrad_update
from graphgrad.optim.adam import adam_update
from graphgrad.optim.rmsprop import rmsprop_update
from graphgrad.optim.sgd import BLOCK, add_scaled, sgd_update

STEPS = 25

CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.9), "maximize": True}),  # lerp's other formula
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "maximize": True}),
]
IDS = [f"{name}-{'-'.join(kw) or 'defaults'}" for name, kw in CASES]


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_float64_trajectory_matches_torch(name, kwargs):
    arrays = initial_params()
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    a = run(gg, make(gg, name, ours, kwargs), ours, STEPS)
    b = run(torch, make(torch, name, theirs, kwargs), theirs, STEPS)
    assert_close(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_float32_trajectory_close_to_torch(name, kwargs):
    arrays = initial_params(np.float32)
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    a = run(gg, make(gg, name, ours, kwargs), ours, STEPS)
    b = run(torch, make(torch, name, theirs, kwargs), theirs, STEPS)
    assert a[-1][0].dtype == np.float32
    assert_close(a, b, rtol=1e-4, atol=1e-5)


def grouped(lib, params):
    return [{"params": params[:2], "lr": 0.05}, {"params": params[2:], "momentum": 0.5}]


def test_param_groups_with_their_own_hyperparameters():
    arrays = initial_params()
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    opt = optim.SGD(grouped(gg, ours), lr=0.1, momentum=0.9)
    ref = torch.optim.SGD(grouped(torch, theirs), lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1]
    assert [g["momentum"] for g in opt.param_groups] == [0.9, 0.5]
    assert_close(run(gg, opt, ours, 10), run(torch, ref, theirs, 10), 1e-12, 1e-13)


def test_add_param_group_fills_defaults_and_rejects_duplicates():
    arrays = initial_params()
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    opt, ref = optim.Adam(ours[:1], lr=0.01), torch.optim.Adam(theirs[:1], lr=0.01)
    opt.add_param_group({"params": ours[1:], "lr": 0.1})
    ref.add_param_group({"params": theirs[1:], "lr": 0.1})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.param_groups[1].keys() == ref.param_groups[1].keys()
    assert_close(run(gg, opt, ours, 10), run(torch, ref, theirs, 10), 1e-12, 1e-13)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [ours[0]]})


def test_zero_grad_set_to_none_or_zeros():
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None


def test_step_with_closure_returns_its_loss_and_enables_grad():
    w = gg.tensor([3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        assert gg.is_grad_enabled()
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with gg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0 and w.item() == 1.5


def test_parameters_without_gradient_are_left_alone():
    arrays = initial_params()
    ours = leaves(gg, arrays)
    opt = optim.Adam(ours, lr=0.1)
    ours[0].grad = gg.tensor(np.ones(SHAPES[0]))
    opt.step()
    np.testing.assert_array_equal(ours[1].detach().numpy(), arrays[1])
    assert len(opt.state) == 1


def test_no_gradient_warns_once():
    opt = optim.SGD([gg.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.warns(UserWarning, match=r"no parameter received a gradient.*backward\(\)"):
        opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()


def test_step_bumps_the_parameter_version():
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    w.grad = gg.ones(2)
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def to_numpy(value):
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    if isinstance(value, (gg.Tensor, torch.Tensor)):
        return (value.dtype.__str__().split(".")[-1], value.detach().numpy())
    return value


def assert_same_structure(ours, theirs, rtol=1e-12):
    if isinstance(theirs, dict):
        assert list(ours) == list(theirs)
        for k in theirs:
            assert_same_structure(ours[k], theirs[k], rtol)
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same_structure(a, b, rtol)
    elif isinstance(theirs, tuple) and isinstance(theirs[1], np.ndarray):
        assert ours[0] == theirs[0]  # dtype name
        assert ours[1].shape == theirs[1].shape
        np.testing.assert_allclose(ours[1], theirs[1], rtol=rtol, atol=1e-14)
    else:
        assert ours == theirs


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_state_dict_layout_and_values_equal_torch(name, kwargs):
    arrays = initial_params()
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    opt, ref = make(gg, name, ours, kwargs), make(torch, name, theirs, kwargs)
    run(gg, opt, ours, 10)
    run(torch, ref, theirs, 10)
    assert_same_structure(to_numpy(opt.state_dict()), to_numpy(ref.state_dict()))


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_resume_from_state_dict_is_exact(name, kwargs):
    arrays = initial_params()
    straight = leaves(gg, arrays)
    expected = run(gg, make(gg, name, straight, kwargs), straight, STEPS)
    resumed = leaves(gg, arrays)
    first = make(gg, name, resumed, kwargs)
    run(gg, first, resumed, 10)
    saved = copy.deepcopy(first.state_dict())
    second = make(gg, name, resumed, {**kwargs, "lr": 123.0})  # the lr comes from the state
    second.load_state_dict(saved)
    rest = run(gg, second, resumed, STEPS - 10, start=10)
    for a, b in zip(rest[-1], expected[-1]):
        np.testing.assert_array_equal(a, b)


def to_graphgrad(value):
    if isinstance(value, dict):
        return {k: to_graphgrad(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_graphgrad(v) for v in value]
    if isinstance(value, torch.Tensor):
        return gg.tensor(value.detach().numpy().copy())
    return value


@pytest.mark.parametrize(("name", "kwargs"), [CASES[2], CASES[5], CASES[10], CASES[13]],
                         ids=[IDS[2], IDS[5], IDS[10], IDS[13]])
def test_loading_torchs_state_dict_continues_torchs_run(name, kwargs):
    arrays = initial_params()
    theirs = leaves(torch, arrays)
    ref = make(torch, name, theirs, kwargs)
    run(torch, ref, theirs, 10)
    ours = leaves(gg, [p.detach().numpy() for p in theirs])
    opt = make(gg, name, ours, kwargs)
    opt.load_state_dict(to_graphgrad(ref.state_dict()))
    a = run(gg, opt, ours, 15, start=10)
    b = run(torch, ref, theirs, 15, start=10)
    assert_close(a, b, rtol=1e-12, atol=1e-13)


def test_load_state_dict_casts_state_to_the_parameter_dtype_but_not_step():
    w64 = gg.zeros(2, dtype=gg.float64, requires_grad=True)
    w32 = gg.zeros(2, requires_grad=True)
    source = optim.Adam([w64])
    w64.grad = gg.ones(2, dtype=gg.float64)
    source.step()
    target = optim.Adam([w32])
    target.load_state_dict(source.state_dict())
    state = target.state[w32]
    assert state["exp_avg"].dtype == gg.float32 and state["step"].dtype == gg.float32
    assert state["exp_avg"] is not source.state[w64]["exp_avg"]


def test_load_state_dict_validates_groups():
    a, b = gg.zeros(1, requires_grad=True), gg.zeros(1, requires_grad=True)
    opt = optim.SGD([a, b])
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(optim.SGD([{"params": [a]}, {"params": [b]}]).state_dict())
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(optim.SGD([a]).state_dict())


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("SGD", {"lr": -1}, "Invalid learning rate: -1"),
    ("SGD", {"momentum": -0.5}, "Invalid momentum value: -0.5"),
    ("SGD", {"weight_decay": -1}, "Invalid weight_decay value: -1"),
    ("SGD", {"nesterov": True}, "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", {"lr": -1}, "Invalid learning rate: -1"),
    ("Adam", {"eps": -1}, "Invalid epsilon value: -1"),
    ("Adam", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
    ("AdamW", {"betas": (0.9, -0.1)}, "Invalid beta parameter at index 1: -0.1"),
    ("RMSprop", {"alpha": -1}, "Invalid alpha value: -1"),
    ("RMSprop", {"momentum": -1}, "Invalid momentum value: -1"),
    ("Adagrad", {"lr_decay": -1}, "Invalid lr_decay value: -1"),
    ("Adagrad", {"initial_accumulator_value": -1},
     "Invalid initial_accumulator_value value: -1"),
])
def test_invalid_hyperparameters_raise_torchs_errors(name, kwargs, message):
    with pytest.raises(ValueError) as torch_error:
        make(torch, name, [torch.zeros(1, requires_grad=True)], kwargs)
    with pytest.raises(ValueError) as our_error:
        make(gg, name, [gg.zeros(1, requires_grad=True)], kwargs)
    assert str(our_error.value) == str(torch_error.value) == message


def test_bad_params_argument():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        optim.SGD(gg.zeros(1, requires_grad=True))
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([gg.zeros(1, requires_grad=True) * 2])


# ---------------------------------------------------------------------- pure update functions
def test_sgd_update_alone():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    buf = sgd_update(p, g, None, lr=0.1, momentum=0.9, weight_decay=0.1)
    np.testing.assert_array_equal(buf, g + np.array([1.0, -2.0]) * 0.1)
    buf = sgd_update(p, g, buf, lr=0.1, momentum=0.9, nesterov=True)
    assert g.tolist() == [0.5, 0.25]  # the gradient is never written


@pytest.mark.parametrize("shape", [(BLOCK,), (3, BLOCK // 2 + 5), (BLOCK + 1,)])
def test_the_blocked_update_rounds_as_the_one_line_formula(shape):
    # Larger than one block: the update runs in blocks, with no temporary of the weight's size.
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(shape).astype(np.float32), rng.standard_normal(shape).astype(
        np.float32)
    expected = p + np.multiply(g, np.float32(-0.1))
    add_scaled(p, g, -0.1)
    np.testing.assert_array_equal(p, expected)
    memory = np.zeros(2 * p.size, np.float32)
    strided = memory[::2].reshape(shape)  # not contiguous: updated in place all the same
    assert np.shares_memory(strided, memory) and not strided.flags.c_contiguous
    add_scaled(strided, g, 1.0)
    np.testing.assert_array_equal(memory[::2], g.reshape(-1))


def test_adam_update_alone_matches_the_textbook_formula():
    p, g = np.array([1.0, -2.0]), np.array([0.5, -0.25])
    m, v = np.zeros(2), np.zeros(2)
    for step in (1, 2):
        adam_update(p, g, m, v, None, step, lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8)
    m_ref = 0.1 * g * 0.9 + 0.1 * g
    v_ref = 0.001 * g * g * 0.999 + 0.001 * g * g
    np.testing.assert_allclose(m, m_ref, rtol=1e-15)
    np.testing.assert_allclose(v, v_ref, rtol=1e-15)
    m_hat, v_hat = m_ref / (1 - 0.9**2), v_ref / (1 - 0.999**2)
    first = np.array([1.0, -2.0]) - 0.1 * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(p, first - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8), rtol=1e-12)


def test_rmsprop_update_alone():
    p, g = np.array([1.0]), np.array([2.0])
    sq, avg, buf = np.zeros(1), np.zeros(1), np.zeros(1)
    rmsprop_update(p, g, sq, avg, buf, lr=0.1, alpha=0.5, eps=0.0, momentum=0.9, centered=True)
    # square_avg = 2, grad_avg = 1, denominator sqrt(2 - 1) = 1
    assert (sq.tolist(), avg.tolist(), buf.tolist(), p.tolist()) == ([2.0], [1.0], [2.0], [0.8])


def test_adagrad_update_alone():
    p, s = np.array([1.0]), np.array([5.0])
    adagrad_update(p, np.array([2.0]), s, 3, lr=0.3, lr_decay=0.5, eps=0.0)
    # clr = 0.3 / (1 + 2 * 0.5), sum = 9, step = clr * 2 / 3
    assert s.tolist() == [9.0]
    np.testing.assert_allclose(p, [1.0 - 0.15 * 2 / 3], rtol=1e-15)


# ---------------------------------------------------------------------- flat ("foreach") path
FLAT_CASES = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3}),
    ("AdamW", {"lr": 0.01, "amsgrad": True, "maximize": True}),
]
FLAT_IDS = [f"{name}-{'-'.join(kw)}" for name, kw in FLAT_CASES]
MLP_SHAPES = [(5, 8), (8,), (8, 3), (3,)]


def mlp_problem(dtype=np.float64):
    rng = np.random.default_rng(7)
    weights = [rng.standard_normal(shape).astype(dtype) for shape in MLP_SHAPES]
    x = rng.standard_normal((16, 5)).astype(dtype)
    y = rng.standard_normal((16, 3)).astype(dtype)
    return weights, x, y


def train_mlp(lib, name, kwargs, problem, steps=20, set_to_none=True, between=None):
    """``steps`` steps of a 5-8-3 MLP's squared error, written in tensor ops both libraries
    share; ``between(t, params)`` runs after step ``t``. Returns the parameters and optimizer."""
    weights, x, y = problem
    params = leaves(lib, weights)
    opt = make(lib, name, params, kwargs)
    x, y = lib.tensor(x), lib.tensor(y)
    for t in range(steps):
        mlp_step(params, opt, x, y, kwargs, set_to_none)
        if between is not None:
            between(t, params)
    return params, opt


def mlp_step(params, opt, x, y, kwargs, set_to_none=True):
    sign = -1 if kwargs.get("maximize") else 1  # maximize the negated error
    opt.zero_grad(set_to_none=set_to_none)
    w1, b1, w2, b2 = params
    (sign * (((x @ w1 + b1).relu() @ w2 + b2 - y) ** 2).mean()).backward()
    opt.step()


def assert_bitwise(a: np.ndarray, b: np.ndarray, what="") -> None:
    np.testing.assert_array_equal(a, b, err_msg=what)
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), what  # -0.0 is not 0.0 here


def assert_same_run(params_a, opt_a, params_b, opt_b) -> None:
    """Parameters and every state entry equal bit for bit, with the same state layout."""
    for i, (a, b) in enumerate(zip(params_a, params_b)):
        assert_bitwise(a.detach().numpy(), b.detach().numpy(), f"parameter {i}")
    state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert list(state_a) == list(state_b)
    for index in state_b:
        assert list(state_a[index]) == list(state_b[index])
        for key, value in state_b[index].items():
            assert_bitwise(state_a[index][key].numpy(), value.numpy(), f"{index}/{key}")


def shares_a_flat_buffer(params) -> bool:
    bases = {id(p._data.base) for p in params}
    return len(bases) == 1 and params[0]._data.base is not None


@pytest.mark.parametrize(("name", "kwargs"), FLAT_CASES, ids=FLAT_IDS)
def test_flat_path_equals_the_per_tensor_path_bit_for_bit(name, kwargs):
    problem = mlp_problem()
    flat = train_mlp(gg, name, {**kwargs, "foreach": True}, problem)
    per_tensor = train_mlp(gg, name, {**kwargs, "foreach": False}, problem)
    assert shares_a_flat_buffer(flat[0]) and not shares_a_flat_buffer(per_tensor[0])
    assert_same_run(*flat, *per_tensor)


@pytest.mark.parametrize(("name", "kwargs"), FLAT_CASES, ids=FLAT_IDS)
def test_flat_path_matches_torchs_optimizer(name, kwargs):
    problem = mlp_problem()
    ours, opt = train_mlp(gg, name, {**kwargs, "foreach": True}, problem)
    theirs, ref = train_mlp(torch, name, {**kwargs, "foreach": True}, problem)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12,
                                   atol=1e-14)
    assert_same_structure(to_numpy(opt.state_dict()), to_numpy(ref.state_dict()))


def test_foreach_default_steps_one_tensor_at_a_time_as_torch_on_the_cpu():
    params = leaves(gg, initial_params()[:2])
    alias = params[0].detach()  # as torch, an alias of a parameter sees every update
    run(gg, optim.Adam(params), params, 1)
    assert all(p._data.base is None for p in params)
    np.testing.assert_array_equal(alias.numpy(), params[0].detach().numpy())
    forced = leaves(gg, initial_params()[:1])
    run(gg, optim.Adam(forced, foreach=True), forced, 1)
    assert forced[0]._data.base is not None
    assert optim.Adam(forced, foreach=True).param_groups[0]["foreach"] is True
    assert optim.Adam(forced).param_groups[0]["foreach"] is None


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_flat_path_with_mixed_dtypes_in_a_group(name):
    arrays = [a.astype(dt) for a, dt in
              zip(initial_params(), (np.float32, np.float64, np.float32))]
    kwargs = {"lr": 0.01, "momentum": 0.9} if name == "SGD" else {"lr": 0.01}
    runs = []
    for foreach in (True, False):
        params = leaves(gg, arrays)
        opt = make(gg, name, params, {**kwargs, "foreach": foreach})
        run(gg, opt, params, 12)
        runs += [params, opt]
    assert_same_run(*runs)
    assert [p.dtype for p in runs[0]] == [gg.float32, gg.float64, gg.float32]
    assert shares_a_flat_buffer([runs[0][0], runs[0][2]]) and runs[0][1]._data.base is not None


def run_with_missing_grads(opt, params, steps=15):
    """Parameter 0 gets no gradient before step 3 and at step 7; parameter 2 never gets one."""
    for t in range(steps):
        for i, p in enumerate(params):
            missing = i == 2 or (i == 0 and (t < 3 or t == 7))
            p.grad = None if missing else gg.tensor(gradient(p.detach().numpy(), t, i))
        opt.step()


@pytest.mark.parametrize(("name", "kwargs"), [FLAT_CASES[2], FLAT_CASES[3], FLAT_CASES[5]],
                         ids=[FLAT_IDS[2], FLAT_IDS[3], FLAT_IDS[5]])
def test_flat_path_skips_parameters_without_gradient(name, kwargs):
    arrays = initial_params() + [np.ones(4)]
    runs = []
    for foreach in (True, False):
        params = leaves(gg, arrays)
        opt = make(gg, name, params, {**kwargs, "foreach": foreach})
        run_with_missing_grads(opt, params)
        runs += [params, opt]
    assert_same_run(*runs)
    assert 2 not in runs[1].state_dict()["state"]  # never stepped: no state, as in torch
    np.testing.assert_array_equal(runs[0][2].detach().numpy(), arrays[2])


@pytest.mark.parametrize(("name", "kwargs"), [FLAT_CASES[1], FLAT_CASES[5]],
                         ids=[FLAT_IDS[1], FLAT_IDS[5]])
def test_flat_path_with_gradients_zeroed_in_place(name, kwargs):
    problem = mlp_problem()
    flat = train_mlp(gg, name, {**kwargs, "foreach": True}, problem, set_to_none=False)
    per_tensor = train_mlp(gg, name, {**kwargs, "foreach": False}, problem)
    assert_same_run(*flat, *per_tensor)


def test_flat_path_with_groups_and_a_scheduler_changing_lr():
    def grouped_run(lib, foreach):
        params = leaves(lib, initial_params() + [np.ones(4)])
        groups = [{"params": params[:2], "lr": 0.05}, {"params": params[2:], "lr": 0.01}]
        module = optim if lib is gg else torch.optim
        opt = module.Adam(groups, foreach=foreach)
        sched = module.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
        for t in range(12):
            for i, p in enumerate(params):
                p.grad = lib.tensor(gradient(p.detach().numpy(), t, i))
            opt.step()
            sched.step()
        return params, opt

    flat, per_tensor = grouped_run(gg, True), grouped_run(gg, False)
    assert_same_run(*flat, *per_tensor)
    assert shares_a_flat_buffer(flat[0][:2]) and shares_a_flat_buffer(flat[0][2:])
    for a, b in zip(flat[0], grouped_run(torch, True)[0]):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize(("name", "kwargs"), [FLAT_CASES[2], FLAT_CASES[5]],
                         ids=[FLAT_IDS[2], FLAT_IDS[5]])
def test_flat_path_follows_rebound_parameter_data(name, kwargs):
    def rebind(t, params):
        if t == 4:  # new arrays with the same values: the buffers are rebuilt around them
            params[0].data = gg.tensor(params[0].detach().numpy().copy())
        if t == 9:  # new values
            params[1].data = gg.zeros(MLP_SHAPES[1], dtype=gg.float64)

    problem = mlp_problem()
    flat = train_mlp(gg, name, {**kwargs, "foreach": True}, problem, between=rebind)
    per_tensor = train_mlp(gg, name, {**kwargs, "foreach": False}, problem, between=rebind)
    assert_same_run(*flat, *per_tensor)
    assert shares_a_flat_buffer(flat[0])


@pytest.mark.parametrize(("name", "kwargs"), [FLAT_CASES[3], FLAT_CASES[5], FLAT_CASES[7]],
                         ids=[FLAT_IDS[3], FLAT_IDS[5], FLAT_IDS[7]])
def test_flat_state_dict_round_trip_continues_the_run(name, kwargs):
    kwargs = {**kwargs, "foreach": True}
    problem = mlp_problem()
    straight = train_mlp(gg, name, kwargs, problem, steps=20)
    first, first_opt = train_mlp(gg, name, kwargs, problem, steps=8)
    saved_params = [p.detach().numpy().copy() for p in first]
    saved = copy.deepcopy(first_opt.state_dict())
    # an optimizer that already has flat buffers loads the state; its parameters get the
    # saved values in place, so only the state tells the flat buffers to be rebuilt
    params, opt = train_mlp(gg, name, {**kwargs, "lr": 123.0}, problem, steps=1)
    opt.load_state_dict(saved)
    with gg.no_grad():
        for p, value in zip(params, saved_params):
            p.copy_(gg.tensor(value))
    x, y = gg.tensor(problem[1]), gg.tensor(problem[2])
    for _ in range(12):
        mlp_step(params, opt, x, y, kwargs)
    assert_same_run(*straight, params, opt)
    assert shares_a_flat_buffer(params)


def test_flat_state_survives_a_state_replaced_by_hand():
    arrays = initial_params()
    runs = []
    for foreach in (True, False):
        params = leaves(gg, arrays)
        opt = optim.SGD(params, lr=0.1, momentum=0.9, foreach=foreach)
        run(gg, opt, params, 3)
        opt.state[params[1]]["momentum_buffer"] = gg.zeros(SHAPES[1], dtype=gg.float64)
        del opt.state[params[0]]  # forgotten: the buffer starts again from the gradient
        run(gg, opt, params, 3, start=3)
        runs += [params, opt]
    assert_same_run(*runs)


def test_kernel_flags_checked_as_torch_does():
    w = gg.zeros(2, requires_grad=True)
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        with pytest.raises(RuntimeError, match="`fused` and `foreach` cannot be `True`"):
            cls([w], foreach=True, fused=True)
        with pytest.raises(NotImplementedError, match="differentiable=True"):
            cls([w], differentiable=True)
    with pytest.raises(ValueError, match="capturable=True"):
        optim.Adam([w], capturable=True)
    theirs = torch.optim.AdamW([torch.zeros(2, requires_grad=True)], fused=True)
    ours = optim.AdamW([w], fused=True)
    assert ours.param_groups[0].keys() == theirs.param_groups[0].keys()
    assert ours.param_groups[0]["fused"] is True


def test_a_deep_copy_of_a_flat_optimizer_steps_on_its_own_parameters():
    params = leaves(gg, initial_params())
    opt = optim.Adam(params, lr=0.01, fused=True)
    run(gg, opt, params, 3)
    params_copy, opt_copy = copy.deepcopy((params, opt))
    a = run(gg, opt, params, 4, start=3)
    b = run(gg, opt_copy, params_copy, 4, start=3)
    for x, y in zip(a[-1], b[-1]):
        assert_bitwise(x, y)
    assert shares_a_flat_buffer(params_copy)
    assert not np.shares_memory(params[0]._data, params_copy[0]._data)
