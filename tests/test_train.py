"""graphgrad.train: fit against torch and graphgrad.graph.fit, the seed's verdicts, History
files, callbacks, every diagnostic, bit-exact resume, crash safety and the lr range test."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad import nn
from graphgrad.graph.examples import polynomial, polynomial_data
from graphgrad.graph.fit import fit as graph_fit
from graphgrad.train import (
    Callback,
    EarlyStopping,
    History,
    LRFinderResult,
    TrainingInterrupted,
    Verdict,
    fit,
    load_checkpoint,
    lr_find,
)
from graphgrad.train.diagnose import Knobs, verdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAD = {"lr": 0.1, "lr_decay": 1, "min_lr": 1e-3, "max_grad": 1e10}
GOOD = {"lr": 0.01, "lr_decay": 0.999, "min_lr": 1e-3, "max_grad": 1000}


def quiet_fit(*args, **kwargs):
    return fit(*args, progress=False, **kwargs)


def regression(n=64, features=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(dtype)
    y = (x @ rng.normal(size=(features, 1)) + 0.1 * rng.normal(size=(n, 1))).astype(dtype)
    return x, y


def classification(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return gg.tensor(x), gg.tensor((x[:, 0] + x[:, 1] > 0).astype(np.int64))


def mlp(dropout=0.0, seed=0):
    gg.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def parameters(model) -> dict:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


# ---------------------------------------------------------------------------------- the seed
def test_seed_bad_settings_end_in_a_divergence_verdict():
    history = quiet_fit(polynomial(), None, polynomial_data(), optimizer="sgd", epochs=300,
                        batch_size=None, **BAD)
    v = history.verdict
    assert isinstance(v, Verdict) and v.kind == "diverged"
    assert len(history.epochs) == v.epoch < 300  # stopped at once, without raising
    assert v.loss > 10 * history.epochs[0]["train_loss"] and v.lr == 0.1
    # the evidence: the rate is high, the cap of 1e10 never bites, and the rate never decays
    assert "learning rate 0.1 is too high" in v.cause and "uncapped" in v.cause
    assert "never decays" in v.cause
    assert "try 0.01" in v.remedy and "max_grad" in v.remedy and "decay" in v.remedy
    assert v.message.startswith(f"Training diverged at epoch {v.epoch}: the loss rose to")
    assert v.message in history.summary()


def test_seed_good_settings_converge_on_graph_fits_trajectory():
    history = quiet_fit(polynomial(), None, polynomial_data(), optimizer="sgd", epochs=300,
                        batch_size=None, **GOOD)
    assert history.verdict is None and not history.stopped_early
    losses = [r["train_loss"] for r in history.epochs]
    assert losses[-1] < 0.01 * losses[0]
    reference = graph_fit(polynomial(), polynomial_data(), epochs=300, **GOOD)
    np.testing.assert_allclose(losses, reference.losses, rtol=1e-12, atol=0)
    assert [r["lr"] for r in history.epochs] == reference.lrs


def test_verdict_cause_and_remedy_follow_the_evidence():
    capped = Knobs(max_grad=1.0, max_grad_norm=None, lr_decay=0.9, min_lr=0, has_scheduler=False)
    v = verdict("diverged", epoch=5, step=1, loss=1e6, best=2.0, grad_norm=1.0,
                first_grad_norm=0.5, last_grad_norm=0.9, lr=0.3, knobs=capped)
    assert "uncapped" not in v.cause and "never decays" not in v.cause
    assert "lower the cap max_grad=1" in v.remedy and "decay the learning rate" not in v.remedy
    uncapped = Knobs(None, None, 1.0, 0, False)
    v = verdict("non_finite", epoch=2, step=3, loss=math.inf, best=2.0, grad_norm=1e30,
                first_grad_norm=1.0, last_grad_norm=1e20, lr=0.5, knobs=uncapped)
    assert "grew from 1 to 1e+30" in v.cause and "uncapped" in v.cause
    assert v.message.startswith("Training stopped at epoch 2, step 3: the loss became inf")


def test_non_finite_data_stops_at_once_and_blames_the_data():
    x, y = regression()
    x[5, 1] = np.nan
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), epochs=5, batch_size=None)
    v = history.verdict
    assert v.kind == "non_finite" and v.epoch == 1 and math.isnan(v.loss)
    assert "very first step" in v.cause and "NaN" in v.remedy
    assert len(history.epochs) == 1
    # the NaN row first met in the second batch: no growth announced it, so the data is blamed
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), epochs=5, batch_size=4,
                        shuffle=False)
    assert history.verdict.kind == "non_finite" and "suddenly" in history.verdict.cause
    assert history.verdict.message.startswith("Training stopped at epoch 1, step 2: the loss")


def test_an_absurd_learning_rate_is_blamed_not_the_data():
    # The seed polynomial at lr 1e300: the first step is finite, but it throws the parameters,
    # which start at 0, to lr * |gradient| (SGD from zero), and the next loss overflows. The
    # gradient norm gave no warning; the parameters' norm did, so the rate is to blame.
    history = quiet_fit(polynomial(), None, polynomial_data(), optimizer="sgd", epochs=300,
                        batch_size=None, lr=1e300, max_grad=1000)
    v = history.verdict
    assert v.kind == "non_finite" and v.epoch == 2 and not math.isfinite(v.loss)
    assert "learning rate 1e+300 is too high" in v.cause and "suddenly" not in v.cause
    thrown = 1e300 * history.epochs[0]["grad_norm"]  # |w1| = lr |g0|, max_grad never bites
    assert f"norm from 0 to {thrown:.3g}" in v.cause
    assert "lower the learning rate" in v.remedy and "NaN" not in v.remedy


# ---------------------------------------------------------------------------------- torch oracle
@pytest.mark.parametrize("dtype, tolerance", [(np.float32, 1e-6), (np.float64, 1e-10)])
def test_sgd_momentum_matches_torch(dtype, tolerance):
    x, y = regression(n=40, features=4, dtype=dtype)
    gg.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    if dtype == np.float64:
        model = model.double()
    reference = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    reference = reference.to(torch.float64 if dtype == np.float64 else torch.float32)
    ours = dict(model.named_parameters())
    with torch.no_grad():
        for name, p in reference.named_parameters():
            p.copy_(torch.from_numpy(ours[name].detach().numpy().copy()))
    history = quiet_fit(model, nn.MSELoss(), (x, y), optimizer="sgd", lr=0.05, momentum=0.9,
                        epochs=3, batch_size=16, shuffle=False)
    opt = torch.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for epoch in range(3):
        total = 0.0
        for start in range(0, len(x), 16):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(reference(tx[start:start + 16]),
                                                ty[start:start + 16])
            loss.backward()
            opt.step()
            total += loss.item() * len(tx[start:start + 16])
        assert history.epochs[epoch]["train_loss"] == pytest.approx(total / len(x),
                                                                    rel=tolerance)
    for name, p in reference.named_parameters():
        np.testing.assert_allclose(ours[name].detach().numpy(),
                                   p.detach().numpy(), rtol=tolerance * 10, atol=tolerance)


def test_epoch_records_by_hand():
    # one parameter w, loss mean((w x - y)^2) on x = [1, 2], y = [2, 4], w = 0: full batch SGD
    w = nn.Linear(1, 1, bias=False).double()
    with gg.no_grad():
        w.weight.zero_()
    x = np.array([[1.0], [2.0]])
    y = np.array([[2.0], [4.0]])
    history = quiet_fit(w, nn.MSELoss(), (x, y), lr=0.1, lr_decay=0.5, epochs=2, batch_size=None,
                        step_history=True)
    first, second = history.epochs
    # loss (4 + 16) / 2 = 10; dL/dw = mean(2 (w x - y) x) = -10; w -> 0 + 0.1 * 10 = 1
    assert first["train_loss"] == 10.0 and first["grad_norm"] == 10.0 and first["lr"] == 0.1
    assert first["layer_grad_norms"] == {"weight": 10.0}
    assert first["update_ratio"] == {"weight": None}  # ||w|| was 0 before the step
    # w = 1: loss (1 + 4) / 2 = 2.5, gradient -5, lr halved to 0.05: w -> 1.25, ratio 0.25
    assert second["train_loss"] == 2.5 and second["grad_norm"] == 5.0 and second["lr"] == 0.05
    assert second["update_ratio"]["weight"] == pytest.approx(0.25)
    assert [s["loss"] for s in history.steps] == [10.0, 2.5]
    assert [s["step"] for s in history.steps] == [1, 2]


def test_graph_minibatches_and_module_metric_and_validation():
    history = quiet_fit(polynomial(), None, polynomial_data(), lr=0.001, epochs=3, batch_size=25,
                        max_grad_norm=100.0)
    assert len(history.epochs) == 3 and history.verdict is None
    x, y = classification()
    model = mlp()
    history = quiet_fit(model, nn.CrossEntropyLoss(), (x[:64], y[:64]), val_data=(x[64:], y[64:]),
                        optimizer="adam", lr=0.02, epochs=15, metric="accuracy", scheduler="cosine")
    last = history.epochs[-1]
    assert last["metric"] > 0.8 and last["val_loss"] < history.epochs[0]["val_loss"]
    assert history.monitor == "val_loss" and history.best_epoch is not None
    custom = quiet_fit(mlp(), nn.CrossEntropyLoss(), (x, y), epochs=1,
                       metric=lambda out, target: 0.25)
    assert custom.epochs[0]["metric"] == 0.25


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
@pytest.mark.parametrize("scheduler", ["step", "cosine", "exponential", "onecycle", "plateau"])
def test_every_named_optimizer_and_scheduler_runs(name, scheduler):
    x, y = regression()
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), optimizer=name, lr=0.01,
                        scheduler=scheduler, epochs=4, diagnose=False)
    assert len(history.epochs) == 4 and history.verdict is None


# ---------------------------------------------------------------------------------- History
def test_history_json_and_csv_round_trip(tmp_path):
    x, y = classification()
    history = quiet_fit(mlp(), nn.CrossEntropyLoss(), (x, y), epochs=3, step_history=True,
                        metric="accuracy")
    history.notes.append("a note")
    history.to_json(tmp_path / "h.json")
    with open(tmp_path / "h.json") as f:
        assert History.from_dict(json.load(f)) == history
    history.to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    for row, record in zip(rows, history.epochs):
        assert float(row["train_loss"]) == record["train_loss"]  # repr keeps every digit
        assert row["val_loss"] == ""
        assert float(row["layer_grad_norms/0.weight"]) == record["layer_grad_norms"]["0.weight"]
        assert float(row["update_ratio/3.bias"]) == record["update_ratio"]["3.bias"]
    summary = history.summary()
    assert "3 epochs; final train loss" in summary and "note: a note" in summary


# ---------------------------------------------------------------------------------- callbacks
def test_callback_hooks_and_stopping():
    calls = []

    class Spy(Callback):
        def on_train_begin(self, trainer):
            calls.append(("begin", trainer.completed))

        def on_epoch_end(self, trainer, record):
            calls.append(("epoch", record["epoch"]))
            return record["epoch"] == 2

        def on_train_end(self, trainer):
            calls.append(("end", len(trainer.history.epochs)))

    x, y = regression()
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), epochs=5, callbacks=[Spy()])
    assert calls == [("begin", 0), ("epoch", 1), ("epoch", 2), ("end", 2)]
    assert history.stopped_early


def test_early_stopping_restores_the_best_parameters():
    x, y = regression()
    best = {}

    class Keep(Callback):  # records the parameters after each epoch, to compare with
        def on_epoch_end(self, trainer, record):
            best[record["epoch"]] = {k: v.copy() for k, v in trainer.parameter_arrays().items()}

    model = nn.Linear(3, 1)
    stopper = EarlyStopping(monitor="train_loss", patience=2, restore_best=True)
    # a too-large rate makes the loss bounce: it stops improving, and the best is put back
    history = quiet_fit(model, nn.MSELoss(), (x, y), lr=0.9, epochs=40, batch_size=None,
                        callbacks=[Keep(), stopper], diagnose=False)
    assert history.stopped_early and history.verdict is None
    assert len(history.epochs) == stopper.best_epoch + 2
    for name, value in parameters(model).items():
        np.testing.assert_array_equal(value, best[stopper.best_epoch][name])
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=-1)


# ---------------------------------------------------------------------------------- diagnostics
def test_dead_relus_and_vanishing_gradients_are_noted():
    model = mlp()
    with gg.no_grad():
        model[0].bias.fill_(-1e4)  # every first-layer unit is negative for every input
    x, y = classification()
    history = quiet_fit(model, nn.CrossEntropyLoss(), (x, y), epochs=2)
    notes = " ".join(history.notes)
    assert "100% of the units of ReLU layer '1'" in notes and "dead" in notes
    assert "gradient of '0.weight' is vanishing" in notes


def test_unused_parameter_is_noted():
    class Extra(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 1)
            self.unused = nn.Linear(3, 1)

        def forward(self, x):
            return self.fc(x)

    x, y = regression()
    history = quiet_fit(Extra(), nn.MSELoss(), (x, y), epochs=1)
    assert any("'unused.weight' never received a gradient" in n for n in history.notes)
    assert any("'unused.bias' never received a gradient" in n for n in history.notes)
    assert not any("'fc.weight'" in n for n in history.notes)


def test_plateau_with_zero_learning_rate_is_noted():
    x, y = regression()
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), lr=0.0, epochs=12)
    assert sum("plateaued" in n for n in history.notes) == 1
    assert "for 10 epochs since epoch 1" in history.notes[0]


def test_exploding_gradient_of_one_layer_is_noted():
    class Loud(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 1)
            self.scale = nn.Parameter(gg.ones(1))

        def forward(self, x):
            return self.fc(x) + 1e6 * self.scale - 1e6

    x, y = regression()
    history = quiet_fit(Loud(), nn.MSELoss(), (x, y), lr=1e-15, epochs=1)
    assert any("gradient of 'scale' is exploding" in n for n in history.notes)


def test_learning_rate_floor_reached_early_is_noted():
    x, y = regression()
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), lr=0.01, lr_decay=0.5,
                        min_lr=1e-3, epochs=12)
    assert any("reached its floor min_lr=0.001 at epoch 5 of 12" in n for n in history.notes)
    quiet = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), epochs=12, diagnose=False,
                      lr=0.0)
    assert quiet.notes == []


def test_notes_and_verdict_are_printed_unless_quiet(capsys):
    x, y = regression()
    fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), lr=0.0, epochs=11, progress=None)
    out = capsys.readouterr().out
    assert "note: The train loss has not improved" in out
    fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), lr=0.0, epochs=2, progress=True)
    assert "epoch 2/2  train_loss" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- checkpoints
class StopAfter(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        return record["epoch"] == self.epoch


def _dropout_run(tmp_path, **kwargs):
    x, y = classification()
    model = mlp(dropout=0.3)
    history = quiet_fit(model, nn.CrossEntropyLoss(), (x, y), lr=0.05, momentum=0.9, epochs=10,
                        batch_size=16, shuffle=True, seed=3, checkpoint_dir=tmp_path, **kwargs)
    return model, history


def test_resume_is_bit_identical_with_dropout_and_shuffling(tmp_path):
    straight, full = _dropout_run(tmp_path / "a")
    _, first = _dropout_run(tmp_path / "b", callbacks=[StopAfter(5)])
    assert len(first.epochs) == 5 and first.stopped_early
    resumed, rest = _dropout_run(tmp_path / "b", resume=True)
    assert len(rest.epochs) == 10 and not rest.stopped_early
    for name, value in parameters(straight).items():
        np.testing.assert_array_equal(parameters(resumed)[name], value)
    assert [r["train_loss"] for r in rest.epochs] == [r["train_loss"] for r in full.epochs]


def test_resume_is_bit_identical_with_adam_and_a_scheduler(tmp_path):
    x, y = regression()

    def run(epochs, **kwargs):
        gg.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
        sched = lambda opt: gg.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)  # noqa
        quiet_fit(model, nn.MSELoss(), (x, y), optimizer="adam", lr=0.01, scheduler=sched,
                  lr_decay=0.95, epochs=epochs, batch_size=10, checkpoint_dir=tmp_path,
                  checkpoint_every=5, **kwargs)
        return parameters(model)

    straight = run(10)
    run(5)
    state = load_checkpoint(tmp_path / "checkpoint.safetensors")
    assert state["epoch"] == 5 and state["scheduler"]["last_epoch"] == 5
    assert set(state["optimizer"]["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    with pytest.warns(UserWarning, match="made for 5 epochs with the StepLR schedule; "
                      "resuming for 10 epochs restarts nothing: the scheduler you made "
                      "continues after epoch 5 with the state it had then"):
        resumed = run(10, resume=tmp_path / "checkpoint.safetensors")
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value)


def test_graph_resume_is_bit_identical(tmp_path):
    def run(epochs, **kwargs):
        graph = polynomial()
        quiet_fit(graph, None, polynomial_data(), lr=0.005, momentum=0.5, batch_size=10,
                  epochs=epochs, checkpoint_dir=tmp_path, **kwargs)
        return {node.name: node.value.detach().numpy().copy() for node in graph.parameters}

    straight = run(6)
    run(3)
    assert load_checkpoint(tmp_path / "checkpoint.safetensors")["epoch"] == 3
    resumed = run(6, resume=True)
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value)


def test_ctrl_c_at_an_epoch_end_writes_a_checkpoint_and_raises_training_interrupted(tmp_path):
    class CtrlC(Callback):  # a real SIGINT, as the terminal sends it
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 3:
                os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as caught:
        _dropout_run(tmp_path / "c", callbacks=[CtrlC()], checkpoint_every=100)
    path = str(tmp_path / "c" / "checkpoint.safetensors")
    assert isinstance(caught.value, KeyboardInterrupt)
    assert (caught.value.checkpoint, caught.value.epoch, caught.value.step) == (path, 3, 18)
    assert f"checkpoint of 3 epochs (step 18 in all) written to {path}" in str(caught.value)
    assert f"fit(..., resume={path!r})" in str(caught.value)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    state = load_checkpoint(path)
    assert state["epoch"] == 3 and state["step"] == 18 and state["position"] is None
    assert len(state["history"]["epochs"]) == 3
    resumed, _ = _dropout_run(tmp_path / "c", resume=path)
    straight, _ = _dropout_run(tmp_path / "d")
    for name, value in parameters(straight).items():
        np.testing.assert_array_equal(parameters(resumed)[name], value)


def test_sigkill_loses_at_most_the_work_since_the_last_checkpoint(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np, graphgrad as gg
        from graphgrad.train import fit
        rng = np.random.default_rng(0)
        x = rng.normal(size=(2000, 8)).astype(np.float32)
        y = x.sum(1, keepdims=True)
        gg.manual_seed(0)
        model = gg.nn.Sequential(gg.nn.Linear(8, 64), gg.nn.ReLU(), gg.nn.Linear(64, 1))
        fit(model, gg.nn.MSELoss(), (x, y), lr=1e-3, epochs=100000, batch_size=8,
            progress=False, checkpoint_dir={str(tmp_path)!r}, checkpoint_every=1)
    """)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    path = tmp_path / "checkpoint.safetensors"
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        assert path.exists(), "no checkpoint within 30 s"
        time.sleep(0.3)  # let it be busy writing or training when killed
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    state = load_checkpoint(path)
    done = state["epoch"]
    assert done >= 1 and len(state["history"]["epochs"]) == done
    assert not [name for name in os.listdir(tmp_path) if not name.endswith(".tmp")
                and name != "checkpoint.safetensors"]
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 1))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8)).astype(np.float32)
    history = quiet_fit(model, nn.MSELoss(), (x, x.sum(1, keepdims=True)), lr=1e-3,
                        epochs=done + 1, batch_size=8, resume=path)
    assert len(history.epochs) == done + 1 and history.verdict is None


# ---------------------------------------------------------------------------------- lr_find
def test_lr_find_restores_the_model_and_suggests_about_one_over_the_curvature():
    x, y = regression(n=256, features=4, dtype=np.float64)
    x[:, 0] *= 3.0  # an uneven spectrum, so the largest eigenvalue matters
    # MSE of a linear map: Hessian 2/n X^T X; gradient descent is stable below 2/L
    curvature = np.linalg.eigvalsh(2 / len(x) * x.T @ x).max()
    for batch_size in (None, 32):
        model = nn.Linear(4, 1, bias=False).double()
        before = parameters(model)
        optimizer = gg.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        state = gg.default_generator.get_state()
        result = lr_find(model, nn.MSELoss(), (x, y), optimizer=optimizer,
                         batch_size=batch_size)
        assert isinstance(result, LRFinderResult) and len(result.lrs) == len(result.losses)
        for name, value in parameters(model).items():
            np.testing.assert_array_equal(value, before[name])
        assert optimizer.param_groups[0]["lr"] == 0.5 and not optimizer.state
        assert gg.default_generator.get_state().equal(state)
        result = lr_find(model, nn.MSELoss(), (x, y), optimizer="sgd", batch_size=batch_size)
        assert 0.1 / curvature < result.suggestion < 10 / curvature
        assert result.lrs[-1] < 10.0  # stopped once the loss blew up


# ---------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "lbfgs"}, r"optimizer: .*sgd, adam, adamw, rmsprop, adagrad"),
    ({"scheduler": "linear"}, r"scheduler: .*step, cosine, exponential, onecycle, plateau"),
    ({"epochs": -1}, r"epochs: an int >= 0"),
    ({"metric": "f1"}, r"metric: .*accuracy"),
    ({"max_grad": 0}, r"max_grad: None or a positive number"),
    ({"max_grad_norm": -1.0}, r"max_grad_norm: None or a positive number"),
    ({"lr_decay": 1.5}, r"lr_decay: must be in \(0, 1\]"),
    ({"batch_size": 0}, r"batch_size: None \(full batch\) or a positive int"),
])
def test_invalid_arguments_name_the_argument(kwargs, match):
    x, y = regression()
    with pytest.raises(ValueError, match=match):
        quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), **kwargs)


def test_both_gradient_caps_together_are_fine_and_graphs_refuse_a_loss_fn():
    x, y = regression()
    history = quiet_fit(nn.Linear(3, 1), nn.MSELoss(), (x, y), max_grad=0.5, max_grad_norm=1.0,
                        epochs=2)
    assert len(history.epochs) == 2
    with pytest.raises(ValueError, match="loss_fn: must be None for a Graph"):
        quiet_fit(polynomial(), nn.MSELoss(), polynomial_data())
    with pytest.raises(ValueError, match="steps: an int >= 2"):
        lr_find(nn.Linear(3, 1), nn.MSELoss(), (x, y), steps=1)
