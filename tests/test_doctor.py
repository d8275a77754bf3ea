"""graphgrad.train.watch and ``graphgrad doctor``: a loop of one's own with one planted fault
each, the kind named and the evidence number (worked by NumPy or torch on the same numbers) in
the message; healthy loops get nothing; hooks go away on close; the CLI's usage errors."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad import nn
from graphgrad.interop import to_torch
from graphgrad.train import TrainingStopped, watch

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
RNG = np.random.default_rng(0)
X = RNG.standard_normal((64, 4)).astype(np.float32)
Y = RNG.integers(0, 3, 64)


def blobs():
    return gg.tensor(X), gg.tensor(Y)


def mlp(*extra):
    gg.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), *extra, nn.Linear(16, 3))


def train(model, opt, loss_of, steps=30, zero=True):
    for _ in range(steps):
        if zero:
            opt.zero_grad()
        loss = loss_of()
        loss.backward()
        opt.step()


def kinds(w):
    return [d.kind for d in w.diagnoses]


def test_healthy_loop_has_no_diagnosis():
    model, (x, y) = mlp(), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y))
    assert kinds(w) == [] and w.steps == 30 and len(w.history.steps) == 30


def test_probabilities_as_logits_holds_the_row_sum():
    model, (x, y) = mlp(), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x).softmax(dim=1), y))
    (d,) = w.diagnoses
    assert d.kind == "probabilities_as_logits" and "mean row sum 1.0000" in d.message
    assert w.history.notes == [d.message]


def test_sigmoid_before_bce_with_logits():
    gg.manual_seed(0)
    model, x = nn.Linear(4, 1), gg.tensor(X)
    target = gg.tensor((X[:, :1] > 0).astype(np.float32))
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.BCEWithLogitsLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(gg.sigmoid(model(x)), target), steps=5)
    assert kinds(w) == ["sigmoid_before_bce_with_logits"]


def test_target_shape_broadcast_names_the_shapes():
    gg.manual_seed(0)
    model, x, target = nn.Linear(4, 1), gg.tensor(X), gg.tensor(X[:, 0])
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), target), steps=5)
    (d,) = w.diagnoses
    assert d.kind == "target_shape_broadcast" and "[64, 64]" in d.message
    assert list(np.broadcast_shapes((64, 1), (64,))) == [64, 64]


def test_unnormalised_inputs_hold_the_std_ratio():
    scaled = X * np.array([1, 1, 1, 5000], dtype=np.float32)
    model, x, y = mlp(), gg.tensor(scaled), gg.tensor(Y)
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=1e-6), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=3)
    std = scaled.std(axis=0)
    assert "unnormalised_inputs" in kinds(w)
    assert f"{std.max() / std.min():.3g}-fold" in w.diagnoses[0].message


def test_grads_accumulate_holds_the_first_gradient_norm():
    model, (x, y) = mlp(), blobs()
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    torch.nn.functional.cross_entropy(tmodel(torch.tensor(X)), torch.tensor(Y)).backward()
    expected = tmodel[0].weight.grad.norm().item()  # step 1's gradient, still there at step 2
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=5, zero=False)
    (d,) = w.diagnoses
    assert d.kind == "grads_accumulate" and f"norm {expected:.3g}" in d.message


def test_lr_too_small_told_apart_from_a_good_minimum():
    model, (x, y) = mlp(), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=1e-6), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y))
    assert kinds(w) == ["lr_too_small"]
    ratio = float(w.diagnoses[0].message.split("ratio is ")[1].split()[0])
    assert ratio < 1e-5
    # a loss already at its minimum, stepped as finely: a plateau, nothing wrong
    gg.manual_seed(0)
    model, target = nn.Linear(4, 1), gg.tensor(X[:, :1] * 2.0)
    with gg.no_grad():
        model.weight.copy_(gg.tensor([[2.0, 0, 0, 0]])), model.bias.zero_()
    opt, mse = gg.optim.SGD(model.parameters(), lr=1e-6), nn.MSELoss()
    with watch(model, opt, mse) as w:
        train(model, opt, lambda: mse(model(gg.tensor(X)), target))
    assert kinds(w) == []


def test_non_finite_loss_stops_with_its_source():
    gg.manual_seed(0)
    model, x = nn.Linear(4, 1), gg.tensor(X)
    opt = gg.optim.SGD(model.parameters(), lr=0.01)
    with watch(model, opt) as w, pytest.raises(TrainingStopped) as stopped:
        train(model, opt, lambda: model(x).log().mean())  # log of negative outputs: NaN
    assert stopped.value.diagnosis.kind == "nan_from_loss" and w.stopped is not None
    bad = X.copy()
    bad[3, 2] = np.nan
    model = mlp()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.01), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w, pytest.raises(TrainingStopped):
        train(model, opt, lambda: loss_fn(model(gg.tensor(bad)), gg.tensor(Y)))
    assert kinds(w) == ["nan_in_data"] and "holds 1 non-finite" in w.diagnoses[0].message


def test_a_huge_learning_rate_is_named_when_the_loss_blows_up():
    gg.manual_seed(0)
    model, x, target = nn.Linear(4, 1), gg.tensor(X * 10), gg.tensor(X[:, :1])
    opt, mse = gg.optim.SGD(model.parameters(), lr=10.0), nn.MSELoss()
    with watch(model, opt, mse) as w, pytest.raises(TrainingStopped):
        train(model, opt, lambda: mse(model(x), target), steps=200)
    assert kinds(w) == ["nan_from_lr"]


def test_modes_train_mode_eval_and_eval_mode_training():
    model, (x, y) = mlp(nn.Dropout(0.5)), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=3)
        with gg.no_grad():
            model(x)  # evaluated in train mode
    assert kinds(w) == ["train_mode_eval"] and "at 1 forwards" in w.diagnoses[0].message
    model.eval()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=3)
    assert kinds(w) == ["eval_mode_training"] and "at 3 training" in w.diagnoses[0].message


def test_frozen_and_orphaned_parameters():
    model, (x, y) = mlp(), blobs()
    first, last = list(model[0].parameters()), list(model[2].parameters())
    opt = gg.optim.SGD([{"params": first}, {"params": last, "lr": 0.0}], lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=6)
    assert kinds(w) == ["frozen_params_with_grads"]
    assert "2 parameters (51 numbers)" in w.diagnoses[0].message  # 16 * 3 + 3
    opt = gg.optim.SGD(first, lr=0.1)
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=3)
    assert kinds(w) == ["params_not_in_optimizer"] and w.diagnoses[0].message.startswith("2 ")


def test_saturated_sigmoids():
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 32), nn.Sigmoid(), nn.Linear(32, 3))
    with gg.no_grad():
        model[0].weight.mul_(40.0)
    x, y = blobs()
    pre = X @ model[0].weight.detach().numpy().T + model[0].bias.detach().numpy()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=1)
    assert kinds(w) == ["saturated_activations"]
    assert f"{np.mean(np.abs(pre) > 4):.0%}" in w.diagnoses[0].message


def test_functional_losses_are_watched_without_a_loss_fn():
    model, (x, y) = mlp(), blobs()
    opt = gg.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, opt) as w:
        train(model, opt, lambda: nn.functional.cross_entropy(model(x).softmax(dim=1), y))
    (d,) = w.diagnoses
    assert d.kind == "probabilities_as_logits" and "(F.cross_entropy)" in d.message
    assert len(w.losses) == 30 and np.isfinite(w.losses).all()


def test_probabilities_fed_where_log_probabilities_belong():
    model, (x, y) = mlp(), blobs()
    opt, nll = gg.optim.SGD(model.parameters(), lr=0.1), nn.NLLLoss()
    with watch(model, opt, nll) as w:
        train(model, opt, lambda: nll(model(x).softmax(dim=1), y), steps=3)
    assert kinds(w) == ["probabilities_as_log_probabilities"]
    with watch(model, opt, nll) as w:
        train(model, opt, lambda: nll(model(x).log_softmax(dim=1), y), steps=3)
    assert kinds(w) == []


def test_log_probabilities_as_a_kl_target_stop_the_run():
    logits = RNG.standard_normal((8, 5)).astype(np.float32)
    teacher = torch.log_softmax(torch.tensor(logits), dim=1)
    assert torch.isnan(torch.nn.functional.kl_div(  # what torch itself makes of this target
        torch.log_softmax(torch.zeros(8, 5), dim=1), teacher, reduction="batchmean"))
    model = nn.Linear(4, 5)
    opt, kl = gg.optim.SGD(model.parameters(), lr=0.1), nn.KLDivLoss(reduction="batchmean")
    target = gg.tensor(teacher.numpy())
    with watch(model, opt, kl) as w, pytest.raises(TrainingStopped) as stopped:
        train(model, opt, lambda: kl(model(gg.tensor(X[:8])).log_softmax(dim=1), target))
    assert stopped.value.diagnosis.kind == "log_probabilities_as_probabilities"
    assert f"[{teacher.min().item():.3g}, {teacher.max().item():.3g}]" in w.diagnoses[0].message


class SqrtFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x):
        return self.linear(x).sqrt()  # NaN wherever the linear output is negative


def test_a_nan_made_inside_the_model_names_the_op_and_the_layer():
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), SqrtFeatures(), nn.Linear(3, 1))
    first, inner = model[0], model[1].linear
    hidden = X @ first.weight.detach().numpy().T + first.bias.detach().numpy()
    pre = hidden @ inner.weight.detach().numpy().T + inner.bias.detach().numpy()
    opt, mse = gg.optim.SGD(model.parameters(), lr=0.01), nn.MSELoss()
    with watch(model, opt, mse) as w, pytest.raises(TrainingStopped):
        train(model, opt, lambda: mse(model(gg.tensor(X)), gg.tensor(X[:, :1])))
    (d,) = w.diagnoses
    assert d.kind == "nan_in_layer" and "at step 1" in d.message
    assert f"op sqrt in layer '1' (SqrtFeatures) made {np.sum(pre < 0)} of {pre.size}" \
        in d.message


def test_oscillation_a_swing_that_does_not_shrink():
    # f(w) = w^2 and SGD with lr=1: each update -2w sends w to -w, a cosine of exactly -1
    for lr, swings in ((1.0, True), (0.9, False)):  # 0.9: w -> -0.8w, swings that shrink
        weight = gg.nn.Parameter(gg.tensor([3.0, -1.0], dtype=gg.float64))
        opt = gg.optim.SGD([weight], lr=lr)
        with watch(optimizer=opt) as w:
            train(None, opt, lambda weight=weight: (weight * weight).sum(), steps=100)
        assert kinds(w) == (["oscillation"] if swings else []), lr
        if swings:
            assert "median cosine -1.00" in w.diagnoses[0].message


def test_a_saturated_output_sigmoid_is_no_vanishing_gradient():
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    with gg.no_grad():
        model[0].weight.mul_(40.0)  # confident from the start: |logit| > 4 almost everywhere
    target = gg.tensor((X[:, :1] > 0).astype(np.float32))
    opt, bce = gg.optim.SGD(model.parameters(), lr=0.1), nn.BCELoss()
    with watch(model, opt, bce) as w:
        train(model, opt, lambda: bce(model(gg.tensor(X)), target), steps=5)
    assert kinds(w) == []


def test_close_removes_every_hook():
    model, (x, y) = mlp(nn.Sigmoid()), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    backward, cross_entropy = gg.Tensor.backward, nn.functional.cross_entropy
    w = watch(model, opt, loss_fn)
    assert gg.Tensor.backward is not backward and "step" in vars(opt)
    assert nn.functional.cross_entropy is not cross_entropy
    w.close()
    assert gg.Tensor.backward is backward and "step" not in vars(opt)
    assert nn.functional.cross_entropy is cross_entropy
    assert not loss_fn._forward_hooks and not model._forward_pre_hooks
    assert all(not m._forward_hooks for m in model.modules())
    train(model, opt, lambda: loss_fn(model(x), y), steps=2)
    assert w.steps == 0


def run_doctor(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "graphgrad", "doctor", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_doctor_cli_usage_and_exit_codes(tmp_path):
    assert run_doctor("--help").returncode == 0
    missing = run_doctor(str(tmp_path / "nope.py"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert run_doctor(str(tmp_path)).returncode == 2
    assert run_doctor().returncode == 2
    script = tmp_path / "blowup.py"
    script.write_text(textwrap.dedent("""
        import sys
        import torch
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.ones(8, 2)
        for step in range(50):
            opt.zero_grad()
            loss = model(x).sum() * float("nan") if step == 3 else model(x).pow(2).mean()
            loss.backward()
            opt.step()
        sys.exit(3)
    """))
    stopped = run_doctor("--json", str(script))
    assert stopped.returncode == 1, stopped.stderr
    assert '"kind": "nan_from_loss"' in stopped.stdout.splitlines()[-1]
    assert "at step 4" in stopped.stdout
    healthy = script.read_text().replace('model(x).sum() * float("nan") if step == 3 else ', "")
    script.write_text(healthy)
    fine = run_doctor(str(script))
    assert fine.returncode == 3 and "nothing wrong seen in 50 optimizer steps" in fine.stdout


def test_fit_notes_a_learning_rate_too_small_but_not_a_reached_minimum():
    gg.manual_seed(0)
    x, target = gg.tensor(X), gg.tensor(X[:, :1] * 2.0 + 1.0)
    tiny = gg.train.fit(nn.Linear(4, 1), nn.MSELoss(), (x, target), lr=1e-7, epochs=4,
                        batch_size=None, progress=False)
    (note,) = [n for n in tiny.notes if "update/weight ratio" in n]
    ratio = float(note.split("ratio is ")[1].split()[0])
    assert ratio < 1e-5 and "raise it" in note
    model = nn.Linear(4, 1)
    with gg.no_grad():
        model.weight.copy_(gg.tensor([[2.0, 0, 0, 0]])), model.bias.fill_(1.0)
    done = gg.train.fit(model, nn.MSELoss(), (x, target), lr=1e-7, epochs=4, batch_size=None,
                        progress=False)
    assert not [n for n in done.notes if "update/weight ratio" in n]


def test_fit_runs_the_doctor_and_keeps_its_findings_in_the_history():
    from graphgrad.train import fit

    model, (x, y) = nn.Sequential(mlp(), nn.Softmax(dim=1)), blobs()
    history = fit(model, nn.CrossEntropyLoss(), (x, y), lr=0.1, epochs=3, progress=False)
    assert [n for n in history.notes if "CrossEntropyLoss (F.cross_entropy)" in n]
    gg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), SqrtFeatures(), nn.Linear(3, 1))
    history = fit(model, nn.MSELoss(), (gg.tensor(X), gg.tensor(X[:, :1])), epochs=2,
                  progress=False)
    assert history.verdict is not None and history.verdict.kind == "non_finite"
    assert [n for n in history.notes if "op sqrt in layer '1' (SqrtFeatures)" in n]


def test_unused_parameters_are_named():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.forgotten = nn.Linear(4, 3), nn.Linear(4, 3)

        def forward(self, x):
            return self.used(x)

    gg.manual_seed(0)
    model, (x, y) = TwoBranches(), blobs()
    opt, loss_fn = gg.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()
    with watch(model, opt, loss_fn) as w:
        train(model, opt, lambda: loss_fn(model(x), y), steps=5)
    assert kinds(w) == ["unused_params"] and "'forgotten.weight'" in w.diagnoses[0].message


def test_a_finite_divergence_holds_torchs_losses():
    gg.manual_seed(0)
    model = nn.Linear(4, 1)
    tmodel = torch.nn.Linear(4, 1)
    tmodel.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    target = X @ np.array([1.0, -1.0, 0.5, 2.0], dtype=np.float32)
    opt, mse = gg.optim.SGD(model.parameters(), lr=1.1), nn.MSELoss()
    with watch(model, opt, mse) as w:
        train(model, opt, lambda: mse(model(gg.tensor(X)).squeeze(1), gg.tensor(target)),
              steps=25)
    topt, losses = torch.optim.SGD(tmodel.parameters(), lr=1.1), []
    for _ in range(25):
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(tmodel(torch.tensor(X)).squeeze(1),
                                            torch.tensor(target))
        loss.backward()
        topt.step()
        losses.append(loss.item())
    assert kinds(w) == ["diverging"]
    message = w.diagnoses[0].message
    assert f"from {losses[0]:.4g} at step 1 to {losses[-1]:.4g} by step 25" in message


def test_vanishing_gradients_hold_the_first_layers_norm():
    gg.manual_seed(0)
    layers = [nn.Linear(4, 16), nn.Tanh()]
    for _ in range(10):
        layers += [nn.Linear(16, 16), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(16, 1))
    with gg.no_grad():
        for p in model.parameters():
            p.mul_(0.15)  # far below the default scale: each layer shrinks the gradient
    twin = to_torch(model)
    target = np.tanh(X[:, :1]).astype(np.float32)
    torch.nn.functional.mse_loss(twin(torch.tensor(X)), torch.tensor(target)).backward()
    first = twin[0].weight.grad.norm().item()
    opt, mse = gg.optim.SGD(model.parameters(), lr=1e-3), nn.MSELoss()
    with watch(model, opt, mse) as w:
        train(model, opt, lambda: mse(model(gg.tensor(X)), gg.tensor(target)), steps=6)
    assert kinds(w) == ["vanishing_gradients"]
    assert f"'0.weight' is vanishing (norm {first:.2g}" in w.diagnoses[0].message


def test_exploding_gradients_hold_the_gradient_to_weight_ratio():
    gg.manual_seed(0)
    model = nn.Linear(4, 1)
    twin = to_torch(model)
    (1e5 * twin(torch.tensor(X))).mean().backward()
    ratio = math.sqrt(sum(p.grad.norm() ** 2 for p in twin.parameters())
                      / sum(p.detach().norm() ** 2 for p in twin.parameters()))
    opt = gg.optim.SGD(model.parameters(), lr=1e-9)  # steps of 1e-4 of the weights
    with watch(model, opt) as w:
        train(model, opt, lambda: (1e5 * model(gg.tensor(X))).mean(), steps=12)
    assert kinds(w) == ["exploding_gradients"]
    assert f"The gradients are {ratio:.3g} times the weights" in w.diagnoses[0].message
