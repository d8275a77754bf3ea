"""graphgrad.optim.lr_scheduler against torch.optim.lr_scheduler (the oracle): learning-rate
sequences over 60 steps, momentum cycling, SequentialLR, ReduceLROnPlateau, state_dict round
trips and ``preview``."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import graphgrad as gg
import graphgrad.optim as optim
from graphgrad.optim import lr_scheduler

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of")

STEPS = 60


def warmup_then_cosine(lib, opt):
    s = lib.optim.lr_scheduler
    return s.SequentialLR(opt, [s.LinearLR(opt, start_factor=0.1, total_iters=10),
                                s.CosineAnnealingLR(opt, T_max=30, eta_min=1e-4),
                                s.ExponentialLR(opt, gamma=0.9)], milestones=[10, 40])


SCHEDULES = {
    "StepLR": lambda s, o: s.StepLR(o, step_size=7, gamma=0.3),
    "MultiStepLR": lambda s, o: s.MultiStepLR(o, milestones=[5, 20, 20, 41], gamma=0.7),
    "ExponentialLR": lambda s, o: s.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda s, o: s.CosineAnnealingLR(o, T_max=17, eta_min=0.001),
    "CosineAnnealingWarmRestarts": lambda s, o: s.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=0.01),
    "OneCycleLR-cos": lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=STEPS + 1),
    "OneCycleLR-linear-three-phase": lambda s, o: s.OneCycleLR(
        o, max_lr=0.5, epochs=7, steps_per_epoch=9, anneal_strategy="linear",
        three_phase=True, pct_start=0.25, div_factor=10.0, final_div_factor=100.0),
    "LinearLR": lambda s, o: s.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=13),
    "LambdaLR": lambda s, o: s.LambdaLR(o, [lambda e: 0.95**e, lambda e: 1 / (1 + e)]),
}


def optimizer(lib, name="SGD", **kwargs):
    module = optim if lib is gg else torch.optim
    params = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    return getattr(module, name)([{"params": params[:1]}, {"params": params[1:], "lr": 0.05}],
                                 lr=0.1, **kwargs)


def lib_module(lib):
    return lr_scheduler if lib is gg else torch.optim.lr_scheduler


def history(lib, build, steps=STEPS, key=None):
    """Each group's lr (or ``key``'s value) after construction and after each step."""
    opt = optimizer(lib, **({"momentum": 0.9} if key == "momentum" else {}))
    sched = build(lib_module(lib), opt)
    values = []
    for _ in range(steps):
        values.append([g[key or "lr"] for g in opt.param_groups] + list(sched.get_last_lr()))
        sched.step()
    return np.array(values, dtype=np.float64)


@pytest.mark.parametrize("name", SCHEDULES)
def test_learning_rates_equal_torch(name):
    ours, theirs = history(gg, SCHEDULES[name]), history(torch, SCHEDULES[name])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_sequential_lr_with_milestones_equals_torch():
    ours = history(gg, lambda s, o: warmup_then_cosine(gg, o))
    theirs = history(torch, lambda s, o: warmup_then_cosine(torch, o))
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["OneCycleLR-cos", "OneCycleLR-linear-three-phase"])
def test_one_cycle_cycles_momentum_like_torch(name):
    ours = history(gg, SCHEDULES[name], key="momentum")
    theirs = history(torch, SCHEDULES[name], key="momentum")
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[0, 0] == pytest.approx(0.95) and ours[:, 0].min() < 0.86


def test_one_cycle_cycles_adam_beta1_like_torch():
    betas = {}
    for lib in (gg, torch):
        opt = optimizer(lib, "Adam")
        sched = lib_module(lib).OneCycleLR(opt, max_lr=0.01, total_steps=30)
        seen = []
        for _ in range(29):
            seen.append([g["betas"][0] for g in opt.param_groups])
            assert opt.param_groups[0]["betas"][1] == 0.999
            sched.step()
        betas[lib.__name__] = np.array(seen)
    np.testing.assert_allclose(betas["graphgrad"], betas["torch"], rtol=1e-12)


PLATEAU_LOSSES = [5.0, 4.0, 4.0, 3.9999, 4.1, 4.2, 3.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.5, 2.5,
                  2.5, 2.5, 2.5, 2.5, 2.5, 2.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("kwargs", [
    {"patience": 2, "factor": 0.5},
    {"patience": 1, "factor": 0.3, "cooldown": 2, "min_lr": [0.01, 0.02]},
    {"mode": "max", "patience": 0, "threshold": 0.1, "threshold_mode": "abs", "eps": 1e-3},
    {"patience": 1, "threshold": 0.5, "threshold_mode": "rel", "min_lr": 0.004},
])
def test_reduce_lr_on_plateau_with_scripted_losses_equals_torch(kwargs):
    rates = {}
    for lib in (gg, torch):
        opt = optimizer(lib)
        sched = lib_module(lib).ReduceLROnPlateau(opt, **kwargs)
        seen = []
        for loss in PLATEAU_LOSSES:
            sched.step(lib.tensor(loss))
            seen.append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
        rates[lib.__name__] = np.array(seen)
        assert sched.num_bad_epochs >= 0
    np.testing.assert_allclose(rates["graphgrad"], rates["torch"], rtol=1e-12)
    assert len(np.unique(rates["graphgrad"][:, 0])) > 1  # the script does reduce the rate


@pytest.mark.parametrize("name", [*SCHEDULES, "SequentialLR"])
def test_state_dict_round_trip_resumes_the_schedule(name):
    build = SCHEDULES.get(name, lambda s, o: warmup_then_cosine(gg, o))
    expected = history(gg, build)
    opt = optimizer(gg)
    sched = build(lr_scheduler, opt)
    for _ in range(20):
        sched.step()
    saved_sched, saved_opt = copy.deepcopy(sched.state_dict()), copy.deepcopy(opt.state_dict())
    opt = optimizer(gg)
    sched = build(lr_scheduler, opt)
    opt.load_state_dict(saved_opt)
    sched.load_state_dict(saved_sched)
    for t in range(20, STEPS):
        assert [g["lr"] for g in opt.param_groups] == list(expected[t, :2])
        sched.step()


def test_reduce_lr_on_plateau_state_dict_round_trip():
    opt = optimizer(gg)
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1)
    for loss in PLATEAU_LOSSES[:8]:
        sched.step(loss)
    restored = lr_scheduler.ReduceLROnPlateau(optimizer(gg), patience=5)
    restored.load_state_dict(copy.deepcopy(sched.state_dict()))
    assert (restored.best, restored.num_bad_epochs, restored.patience) == (3.0, 1, 1)


def test_scheduler_sets_initial_lr_and_base_lrs():
    opt = optimizer(gg)
    sched = lr_scheduler.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == sched.base_lrs == [0.1, 0.05]
    assert sched.last_epoch == 0 and sched.get_last_lr() == [0.1, 0.05]


def test_scheduler_stepped_before_the_optimizer_warns():
    sched = lr_scheduler.StepLR(optimizer(gg), step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


@pytest.mark.parametrize("name", SCHEDULES)
def test_preview_matches_a_real_run(name):
    build = SCHEDULES[name]
    if name in ("OneCycleLR-cos", "LambdaLR"):  # their arguments are lists for two groups
        build = SCHEDULES["OneCycleLR-linear-three-phase"]
    rates = lr_scheduler.preview(lambda o: build(lr_scheduler, o), 40, lr=0.1)
    w = gg.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    sched = build(lr_scheduler, opt)
    for expected in rates:
        assert opt.param_groups[0]["lr"] == expected
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
        sched.step()


def test_preview_by_name_and_for_plateau():
    assert lr_scheduler.preview("ExponentialLR", 3, lr=1.0, gamma=0.5) == [1.0, 0.5, 0.25]
    rates = lr_scheduler.preview("ReduceLROnPlateau", 4, lr=1.0, patience=0, factor=0.5,
                                 metrics=[1.0, 1.0, 1.0, 1.0])
    assert rates == [1.0, 1.0, 0.5, 0.25]
    with pytest.raises(ValueError, match="unknown scheduler"):
        lr_scheduler.preview("NoSuchLR", 3)


def test_invalid_arguments_raise_torchs_errors():
    for kwargs in ({"start_factor": 0}, {"end_factor": 2.0}):
        with pytest.raises(ValueError) as theirs:
            torch.optim.lr_scheduler.LinearLR(optimizer(torch), **kwargs)
        with pytest.raises(ValueError) as ours:
            lr_scheduler.LinearLR(optimizer(gg), **kwargs)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="Factor should be < 1.0."):
        lr_scheduler.ReduceLROnPlateau(optimizer(gg), factor=1.0)
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched = lr_scheduler.OneCycleLR(optimizer(gg), max_lr=1.0, total_steps=2)
        for _ in range(3):
            sched.step()
