"""NAdam, RAdam, Adamax, Adadelta and LBFGS against torch.optim (the oracle): every step of a
trajectory, param groups, state_dict round trips, lr schedulers, compiled steps, errors."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from optim_case import assert_close, initial_params, leaves, make, run

import graphgrad as gg
import graphgrad.optim as optim

STEPS = 100

CASES = [
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1, "momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.3, 0.9), "weight_decay": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-4, "weight_decay": 0.1, "maximize": True}),
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
def test_float32_trajectory_matches_torch(name, kwargs):
    arrays = initial_params(np.float32)
    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    a = run(gg, make(gg, name, ours, kwargs), ours, STEPS)
    b = run(torch, make(torch, name, theirs, kwargs), theirs, STEPS)
    assert_close(a, b, rtol=1e-5, atol=1e-6)


def _mlp(lib, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 2))
    for p in model.parameters():
        p.data = lib.tensor(rng.standard_normal(tuple(p.shape)).astype(dtype) * 0.5)
    return model


def _data(dtype=np.float32):
    rng = np.random.default_rng(3)
    return rng.standard_normal((16, 4)).astype(dtype), rng.standard_normal((16, 2)).astype(dtype)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=IDS)
def test_training_an_mlp_matches_torch_at_every_step(name, kwargs):
    x, y = _data()
    runs = []
    for lib in (gg, torch):
        model = _mlp(lib)
        opt = make(lib, name, model.parameters(), kwargs)
        inputs, targets = lib.tensor(x), lib.tensor(y)
        steps = []
        for _ in range(30):
            opt.zero_grad()
            loss = ((model(inputs) - targets) ** 2).mean()
            loss.backward()
            opt.step()
            steps.append([loss.detach().numpy().copy()]
                         + [p.detach().numpy().copy() for p in model.parameters()])
        runs.append(steps)
    assert_close(*runs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "kwargs"), CASES[::3], ids=IDS[::3])
def test_param_groups_and_state_dict_round_trip(name, kwargs):
    arrays = initial_params()

    def groups(params):
        return [{"params": params[:2], "lr": 0.05}, {"params": params[2:]}]

    ours, theirs = leaves(gg, arrays), leaves(torch, arrays)
    opt, ref = make(gg, name, groups(ours), kwargs), make(torch, name, groups(theirs), kwargs)
    run(gg, opt, ours, 5)
    run(torch, ref, theirs, 5)
    saved, theirs_saved = opt.state_dict(), ref.state_dict()
    assert saved["param_groups"] == theirs_saved["param_groups"]
    for index, entries in theirs_saved["state"].items():
        assert list(saved["state"][index]) == list(entries)  # torch's keys, in torch's order
        for key, value in entries.items():
            np.testing.assert_allclose(saved["state"][index][key].numpy(), value.numpy(),
                                       rtol=1e-12, atol=1e-14)
            assert saved["state"][index][key].dtype.name == str(value.dtype).split(".")[1]
    # a fresh optimizer resumed from the state dict continues as the original does
    resumed_params = leaves(gg, [p.detach().numpy() for p in ours])
    resumed = make(gg, name, groups(resumed_params), kwargs)
    resumed.load_state_dict(copy.deepcopy(saved))
    theirs_resumed_params = leaves(torch, [p.detach().numpy() for p in theirs])
    theirs_resumed = make(torch, name, groups(theirs_resumed_params), kwargs)
    theirs_resumed.load_state_dict(copy.deepcopy(theirs_saved))  # casts as ours does
    a = run(gg, resumed, resumed_params, 5, start=5)
    b = run(torch, theirs_resumed, theirs_resumed_params, 5, start=5)
    assert_close(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["NAdam", "RAdam", "Adamax", "Adadelta"])
def test_an_lr_scheduler_drives_them_as_torch(name):
    arrays = initial_params()
    trajectories = []
    for lib in (gg, torch):
        params = leaves(lib, arrays)
        opt = make(lib, name, params, {"lr": 0.1})
        sched = (optim if lib is gg else torch.optim).lr_scheduler.StepLR(opt, 3, gamma=0.5)
        steps = []
        for t in range(10):
            steps += run(lib, opt, params, 1, start=t)
            sched.step()
        trajectories.append(steps)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert_close(*trajectories, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(("name", "kwargs"), CASES[::3], ids=IDS[::3])
def test_a_compiled_step_gives_the_eager_bits(name, kwargs):
    x, y = _data()
    results = []
    for compiled in (False, True):
        model = _mlp(gg)
        opt = make(gg, name, model.parameters(), kwargs)
        inputs, targets = gg.tensor(x), gg.tensor(y)

        def step(inputs, targets, model=model, opt=opt):
            opt.zero_grad()
            loss = ((model(inputs) - targets) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        run_step = gg.compile(step, fullgraph=True) if compiled else step
        losses = [run_step(inputs, targets).detach().numpy().copy() for _ in range(6)]
        results.append(losses + [p.detach().numpy().copy() for p in model.parameters()])
    for a, b in zip(*results, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("NAdam", {"momentum_decay": -1}, "Invalid momentum_decay value: -1"),
    ("RAdam", {"betas": (1.0, 0.9)}, "Invalid beta parameter at index 0: 1.0"),
    ("Adamax", {"eps": -1}, "Invalid epsilon value: -1"),
    ("Adadelta", {"rho": 1.5}, "Invalid rho value: 1.5"),
    ("LBFGS", {"lr": -1}, "Invalid learning rate: -1"),
])
def test_bad_hyperparameters_raise_as_in_torch(name, kwargs, message):
    for lib in (gg, torch):
        with pytest.raises(ValueError, match=message):
            make(lib, name, [lib.zeros(2, requires_grad=True)], kwargs)


def test_their_defaults_are_torchs():
    for name, _ in CASES[::3] + [("LBFGS", {})]:
        ours = make(gg, name, [gg.zeros(2, requires_grad=True)], {}).defaults
        theirs = make(torch, name, [torch.zeros(2, requires_grad=True)], {}).defaults
        assert ours == theirs, name
        assert list(ours) == list(theirs), name


# ---------------------------------------------------------------------------------- LBFGS
def rosenbrock(w: np.ndarray) -> tuple:
    """The loss and gradient of a 2-block Rosenbrock function, in NumPy: both libraries get the
    same numbers, so the comparison sees the optimizers alone."""
    x, y = w[0::2], w[1::2]
    loss = ((1 - x) ** 2 + 100 * (y - x**2) ** 2).sum()
    grad = np.empty_like(w)
    grad[0::2] = -2 * (1 - x) - 400 * x * (y - x**2)
    grad[1::2] = 200 * (y - x**2)
    return np.asarray(loss, w.dtype), grad


def _lbfgs_rosenbrock(lib, dtype, steps, **kwargs):
    w = lib.tensor(np.array([-1.5, 2.0, 0.5, -0.5], dtype=dtype), requires_grad=True)
    opt = lib.optim.LBFGS([w], **kwargs)

    def closure():
        opt.zero_grad()
        loss, grad = rosenbrock(w.detach().numpy())
        w.grad = lib.tensor(grad)
        return lib.tensor(loss)

    trajectory = []
    for _ in range(steps):
        loss = opt.step(closure)
        trajectory.append([np.asarray(loss.item()), w.detach().numpy().copy()])
    return trajectory, opt


# Rosenbrock's valley amplifies rounding: torch's own float32 and float64 runs part after a few
# iterations, so the float64 runs are compared over 3 steps and the float32 ones over 6
# iterations (torch's add_(alpha=) is a fused multiply-add, as graphgrad's LBFGS computes it).
LBFGS_CASES = [{"max_iter": 5}, {"line_search_fn": "strong_wolfe"},
               {"line_search_fn": "strong_wolfe", "lr": 10},  # overshoots: the zoom phase
               {"lr": 0.5, "history_size": 3, "max_iter": 7},
               {"line_search_fn": "strong_wolfe", "history_size": 4, "max_iter": 10}]


@pytest.mark.parametrize("kwargs", LBFGS_CASES, ids=lambda kw: "-".join(kw) or "defaults")
def test_lbfgs_on_rosenbrock_matches_torch_float64(kwargs):
    (ours, opt), (theirs, ref) = (_lbfgs_rosenbrock(lib, np.float64, 3, **kwargs)
                                  for lib in (gg, torch))
    assert_close(ours, theirs, rtol=1e-8, atol=1e-12)
    state, want = opt.state[opt.param_groups[0]["params"][0]], ref.state[ref._params[0]]
    assert sorted(state) == sorted(want)
    assert (state["func_evals"], state["n_iter"]) == (want["func_evals"], want["n_iter"])
    assert len(state["old_dirs"]) == len(want["old_dirs"])


def log_cosh(w: np.ndarray) -> tuple:
    return np.asarray(np.log(np.cosh(3 * w)).sum(), w.dtype), 3 * np.tanh(3 * w)


def exp_minus_linear(w: np.ndarray) -> tuple:
    return np.asarray((np.exp(w) - 2 * w).sum(), w.dtype), np.exp(w) - 2


@pytest.mark.parametrize("function", [log_cosh, exp_minus_linear])
def test_lbfgs_line_search_with_a_huge_first_step_matches_torch(function):
    """lr=100 makes the strong-Wolfe search bracket far out and zoom back, through its
    insufficient-progress safeguard."""
    runs = []
    for lib in (gg, torch):
        w = lib.tensor([2.0, -1.0, 0.3], dtype=lib.float64, requires_grad=True)
        opt = lib.optim.LBFGS([w], lr=100, max_iter=10, line_search_fn="strong_wolfe")

        def closure(w=w, opt=opt, lib=lib):
            opt.zero_grad()
            loss, grad = function(w.detach().numpy())
            w.grad = lib.tensor(grad)
            return lib.tensor(loss)

        steps = []
        for _ in range(3):
            opt.step(closure)
            steps.append([w.detach().numpy().copy()])
        runs.append((steps, opt.state[w]["func_evals"]))
    assert_close(runs[0][0], runs[1][0], rtol=1e-12, atol=1e-14)
    assert runs[0][1] == runs[1][1]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_on_rosenbrock_matches_torch_float32(line_search_fn):
    ours, theirs = (_lbfgs_rosenbrock(lib, np.float32, 1, max_iter=6,
                                      line_search_fn=line_search_fn)[0] for lib in (gg, torch))
    assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_trains_an_mlp_with_a_closure_as_torch(line_search_fn):
    x, y = _data(np.float64)
    runs = []
    for lib in (gg, torch):
        model = _mlp(lib, dtype=np.float64)
        opt = lib.optim.LBFGS(model.parameters(), max_iter=5, history_size=5,
                              line_search_fn=line_search_fn)
        inputs, targets = lib.tensor(x), lib.tensor(y)

        def closure(model=model, opt=opt, inputs=inputs, targets=targets):
            opt.zero_grad()
            loss = ((model(inputs) - targets) ** 2).mean()
            loss.backward()
            return loss

        steps = []
        for _ in range(4):
            loss = opt.step(closure)
            steps.append([loss.detach().numpy().copy()]
                         + [p.detach().numpy().copy() for p in model.parameters()])
        runs.append(steps)
    assert_close(*runs, rtol=1e-8, atol=1e-10)
    assert runs[0][-1][0] < runs[0][0][0]


def test_lbfgs_state_dict_resumes_as_torch():
    ours, opt = _lbfgs_rosenbrock(gg, np.float64, 2, history_size=3, max_iter=4)
    w = opt.param_groups[0]["params"][0]
    twin = gg.tensor(w.detach().numpy(), requires_grad=True)
    resumed = optim.LBFGS([twin], history_size=3, max_iter=4)
    resumed.load_state_dict(copy.deepcopy(opt.state_dict()))

    def closure():
        resumed.zero_grad()
        loss, grad = rosenbrock(twin.detach().numpy())
        twin.grad = gg.tensor(grad)
        return gg.tensor(loss)

    resumed.step(closure)
    theirs, _ = _lbfgs_rosenbrock(torch, np.float64, 3, history_size=3, max_iter=4)
    np.testing.assert_allclose(twin.detach().numpy(), theirs[-1][1], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", ["NAdam", "LBFGS"])
def test_a_state_dict_survives_graphgrad_save_and_load(name):
    if name == "LBFGS":
        _, opt = _lbfgs_rosenbrock(gg, np.float64, 2, history_size=3, max_iter=4)
    else:
        params = leaves(gg, initial_params())
        opt = make(gg, name, params, {})
        run(gg, opt, params, 3)
    buffer = io.BytesIO()
    gg.save(opt.state_dict(), buffer)
    buffer.seek(0)
    loaded = gg.load(buffer)
    assert loaded["param_groups"] == opt.state_dict()["param_groups"]
    for index, entries in opt.state_dict()["state"].items():
        assert list(loaded["state"][index]) == list(entries)
        for key, value in entries.items():
            if isinstance(value, gg.Tensor):
                assert loaded["state"][index][key].equal(value)
            elif isinstance(value, list):
                assert len(loaded["state"][index][key]) == len(value)
            else:
                assert loaded["state"][index][key] == value


def test_lbfgs_refuses_what_torch_refuses():
    a, b = gg.zeros(2, requires_grad=True), gg.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        optim.LBFGS([{"params": [a]}, {"params": [b]}])
    opt = optim.LBFGS([a], line_search_fn="backtracking")

    def closure():
        opt.zero_grad()
        loss = ((a - 1) ** 2).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(closure)


def test_lbfgs_under_compile_is_refused_by_name():
    w = gg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.LBFGS([w])

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    step = gg.compile(lambda: opt.step(closure), fullgraph=True)
    with pytest.raises(Exception, match="LBFGS.step was given a closure"):
        step()
