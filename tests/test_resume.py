"""Resume is exact: a run stopped by Ctrl-C (SIGINT) at any step, or killed (SIGKILL) at any
instant, then resumed, ends with the same weights and History (all but the wall-clock times) as
the run left alone, with shuffled batches and dropout drawing from both generators; and a resume
with other settings warns and does what it says (the schedule checked against torch)."""

from __future__ import annotations

import json
import os
import pickle
import random
import select
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

import graphgrad as gg
from graphgrad import nn
from graphgrad.graph.examples import polynomial, polynomial_data
from graphgrad.train import Callback, TrainingInterrupted, fit, load_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS_PER_EPOCH, EPOCHS = 8, 6

# One experiment, run by the child processes and by this process alike: a shuffling DataLoader
# with its own generator, dropout drawing from the global one, Adam, a cosine schedule and a
# decay, validation with a metric, per-step records and a callback with state.
EXPERIMENT = """
import os, signal, time
import numpy as np
import graphgrad as gg
from graphgrad import nn
from graphgrad.train import Callback, EarlyStopping, fit


class Ready(Callback):
    def __init__(self, announce):
        self.announce = announce

    def on_train_begin(self, trainer):
        if self.announce:
            print("ready", flush=True)


def experiment(out, resume=None, slow=0.0, announce=False, on_loss=None, extra=(), **changes):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    data = gg.data.TensorDataset(gg.tensor(x[:64]), gg.tensor(y[:64]))
    loader = gg.data.DataLoader(data, batch_size=8, shuffle=True,
                                generator=gg.Generator().manual_seed(7))
    gg.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2))
    cross_entropy, calls = nn.CrossEntropyLoss(), [0]

    def loss_fn(output, target):  # slowed only so that a signal can land mid-epoch
        calls[0] += 1
        if on_loss is not None:
            on_loss(calls[0])
        time.sleep(slow)
        return cross_entropy(output, target)

    settings = dict(val_data=(x[64:], y[64:]), metric="accuracy", optimizer="adam", lr=0.02,
                    scheduler="cosine", lr_decay=0.98, max_grad_norm=5.0, epochs=6)
    settings.update(changes)
    history = fit(model, loss_fn, loader, progress=False, step_history=True,
                  checkpoint_dir=out, checkpoint_every=1, resume=resume,
                  callbacks=[EarlyStopping(patience=50), Ready(announce), *extra], **settings)
    return model, history
"""

CHILD = EXPERIMENT + """
import json, sys
from graphgrad.train import TrainingInterrupted

signal.signal(signal.SIGINT, signal.default_int_handler)  # even if the parent ignores SIGINT
try:
    experiment(sys.argv[1], slow=float(sys.argv[2]), announce=True)
except TrainingInterrupted as stopped:
    print(json.dumps({"checkpoint": stopped.checkpoint, "epoch": stopped.epoch,
                      "step": stopped.step}), flush=True)
    sys.exit(3)
"""

_namespace: dict = {}
exec(compile(EXPERIMENT, "EXPERIMENT", "exec"), _namespace)
experiment = _namespace["experiment"]


def weights(model) -> dict:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def without_times(history) -> dict:
    record = history.to_dict()
    for epoch in record["epochs"]:
        epoch.pop("time")
    return record


def assert_same_run(model, history, reference) -> None:
    ref_model, ref_history = reference
    assert without_times(history) == without_times(ref_history)
    for name, value in weights(ref_model).items():
        assert np.array_equal(weights(model)[name], value), name


def resume_quietly(out) -> tuple:
    """Resume with the same settings: no warning may be given."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return experiment(str(out), resume=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    model, history = experiment(str(tmp_path_factory.mktemp("straight")))
    assert len(history.epochs) == EPOCHS and history.verdict is None
    assert len(history.steps) == EPOCHS * STEPS_PER_EPOCH
    return model, history


class CtrlCAt(Callback):
    """Sends this process a real SIGINT when the run has made ``step`` optimizer steps."""

    def __init__(self, step):
        self.at = step

    def on_step_end(self, trainer):
        if trainer.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)


# ------------------------------------------------------------------ Ctrl-C, in this process
@pytest.mark.parametrize("step", [3, 8, 21, 40])
def test_ctrl_c_at_a_step_checkpoints_that_step_and_the_resume_is_exact(tmp_path, reference,
                                                                         step):
    with pytest.raises(TrainingInterrupted) as caught:
        experiment(str(tmp_path), extra=[CtrlCAt(step)])
    stopped = caught.value
    path = str(tmp_path / "checkpoint.safetensors")
    done, into = divmod(step, STEPS_PER_EPOCH)  # the step that was running is finished first
    assert (stopped.checkpoint, stopped.epoch, stopped.step) == (path, done, step)
    state = load_checkpoint(path)
    assert (state["epoch"], state["step"]) == (done, step)
    assert len(state["history"]["epochs"]) == done and len(state["history"]["steps"]) == step
    if into:
        assert state["position"]["position"] == into
        assert f"{done} epochs and {into} steps of epoch {done + 1}" in str(stopped)
    else:  # stopped after an epoch's last step: the epoch is finished before the checkpoint
        assert state["position"] is None
    assert f"fit(..., resume={path!r})" in str(stopped)
    assert_same_run(*resume_quietly(tmp_path), reference)


def test_a_graph_stopped_mid_epoch_resumes_exactly(tmp_path):
    def run(callbacks=(), **kwargs):
        graph = polynomial()
        history = fit(graph, None, polynomial_data(), lr=0.005, momentum=0.5, batch_size=10,
                      epochs=4, step_history=True, progress=False, checkpoint_dir=tmp_path,
                      callbacks=callbacks, **kwargs)
        return {n.name: n.value.detach().numpy().copy() for n in graph.parameters}, history

    straight, full = run()
    steps = len(full.steps) // 4
    with pytest.raises(TrainingInterrupted) as caught:
        run([CtrlCAt(steps + 3)])
    assert (caught.value.epoch, caught.value.step) == (1, steps + 3)
    resumed, rest = run([CtrlCAt(0)], resume=True)
    assert without_times(rest) == without_times(full)
    for name, value in straight.items():
        assert np.array_equal(resumed[name], value)


def test_ctrl_c_mid_step_keeps_the_last_checkpoint_and_says_so(tmp_path, reference):
    def second_ctrl_c(calls):  # what a second Ctrl-C does: KeyboardInterrupt inside a step
        if calls == 20:  # the third training step of epoch 3 (each epoch ends with validation)
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as caught:
        experiment(str(tmp_path), on_loss=second_ctrl_c)
    stopped = caught.value
    path = str(tmp_path / "checkpoint.safetensors")
    assert (stopped.checkpoint, stopped.epoch, stopped.step) == (path, 2, 16)
    assert isinstance(stopped.__cause__, KeyboardInterrupt)
    assert str(stopped) == (
        "Training interrupted (stopped at once, in the middle of a step or of an epoch's end, "
        f"whose state was not saved); the last checkpoint, of 2 epochs (step 16 in all), is "
        f"{path}: continue with fit(..., resume={path!r}) and the same settings.")
    assert pickle.loads(pickle.dumps(stopped)).__dict__ == stopped.__dict__  # across processes
    assert load_checkpoint(path)["step"] == 16
    assert_same_run(*resume_quietly(tmp_path), reference)
    # without a checkpoint_dir nothing is saved, and the message says how to have it saved
    x = np.zeros((16, 3), np.float32)
    with pytest.raises(TrainingInterrupted) as caught:
        fit(nn.Linear(3, 1), lambda out, y: (os.kill(os.getpid(), signal.SIGINT), out.sum())[1],
            (x, x[:, :1]), batch_size=4, epochs=3, progress=False)
    assert caught.value.checkpoint is None and (caught.value.epoch, caught.value.step) == (0, 1)
    assert "nothing was saved: pass checkpoint_dir=" in str(caught.value)


def test_a_sampler_of_keys_cannot_be_saved_mid_epoch_and_the_message_says_why(tmp_path):
    class Rows(gg.data.Dataset):  # indexed by strings
        def __len__(self):
            return 8

        def __getitem__(self, key):
            return gg.tensor([float(len(key))]), gg.tensor([1.0])

    class Keys(gg.data.Sampler):
        def __iter__(self):
            return iter(["a" * (i + 1) for i in range(8)])

        def __len__(self):
            return 8

    loader = gg.data.DataLoader(Rows(), batch_size=2, sampler=Keys())
    with pytest.raises(TrainingInterrupted) as caught:
        fit(nn.Linear(1, 1), nn.MSELoss(), loader, epochs=2, progress=False,
            checkpoint_dir=tmp_path, callbacks=[CtrlCAt(3)])
    assert caught.value.checkpoint is None and caught.value.step == 3
    assert "the epoch's order of batches is not integers" in str(caught.value)
    assert not os.path.exists(tmp_path / "checkpoint.safetensors")


# ------------------------------------------------------------------ real signals, a child process
def _child(out, slow):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(slow)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, killed in finally


def _wait_ready(child, seconds=30.0) -> None:
    ready, _, _ = select.select([child.stdout], [], [], seconds)
    assert ready and child.stdout.readline().strip() == "ready", "the child did not start"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_a_run_interrupted_at_random_instants_resumes_exactly(tmp_path, reference, sig):
    rng = random.Random(8 + sig)
    slow = 0.01  # 48 steps: at least 0.48 s of training, so every signal lands in the run
    interrupted = 0
    for attempt in range(3):
        out = tmp_path / f"run{attempt}"
        child = _child(out, slow)
        try:
            _wait_ready(child)
            time.sleep(rng.uniform(0.03, 0.17) + 0.14 * attempt)  # early, middle and late
            child.send_signal(sig)
            stdout, stderr = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(timeout=10)
        path = out / "checkpoint.safetensors"
        if sig == signal.SIGINT:
            assert child.returncode == 3, stderr
            stopped = json.loads(stdout.splitlines()[-1])
            state = load_checkpoint(path)
            assert stopped == {"checkpoint": str(path), "epoch": state["epoch"],
                               "step": state["step"]}
        else:
            assert child.returncode == -signal.SIGKILL, stderr
        # a killed write leaves at most a temporary file beside the checkpoint
        left = os.listdir(out) if out.exists() else []
        assert all(n == "checkpoint.safetensors" or n.endswith(".tmp") for n in left), left
        if path.exists():
            interrupted += load_checkpoint(path)["step"] < EPOCHS * STEPS_PER_EPOCH
            model, history = resume_quietly(out)
        else:  # killed before the first epoch ended: start again
            model, history = experiment(str(out))
        assert_same_run(model, history, reference)
    assert interrupted >= 2  # most attempts stopped part way, not before or after the run


# ------------------------------------------------------------------ resuming with other settings
def test_more_epochs_with_a_cosine_schedule_continues_it_as_torch_would(tmp_path):
    _, first = experiment(str(tmp_path), epochs=4)
    with pytest.warns(UserWarning) as caught:
        _, resumed = experiment(str(tmp_path), resume=True, epochs=7)
    (message,) = [str(w.message) for w in caught]
    assert message == ("resume: the checkpoint was made for 4 epochs with the 'cosine' "
                       "schedule; resuming for 7 epochs restarts nothing: the schedule continues "
                       "after epoch 4, at the learning rate it had reached "
                       f"({resumed.epochs[4]['lr']:.4g}), with T_max=7 recomputed for 7 epochs")
    assert resumed.epochs[:4] == first.epochs and len(resumed.epochs) == 7
    # torch: the same cosine schedule and decay, T_max changed to 7 after epoch 4
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.02)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    lrs = []
    for epoch in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        opt.param_groups[0]["lr"] *= 0.98
        if epoch == 3:
            sched.T_max = 7
    np.testing.assert_allclose([r["lr"] for r in resumed.epochs], lrs, rtol=1e-12)


def test_settings_the_checkpoint_decides_warn_and_keep_the_checkpoints(tmp_path, reference):
    with pytest.raises(TrainingInterrupted):
        experiment(str(tmp_path), extra=[CtrlCAt(12)])
    with pytest.warns(UserWarning) as caught:
        model, history = experiment(str(tmp_path), resume=True, lr=0.5, lr_decay=1.0)
    messages = [str(w.message) for w in caught]
    assert messages == [
        "resume: lr=0.5 differs from the checkpoint's lr=0.02; a resumed run continues the "
        "saved one, so it keeps 0.02 (to change lr, start a new run, e.g. from the saved "
        "weights)",
        "resume: lr_decay=1.0 differs from the checkpoint's lr_decay=0.98; a resumed run "
        "continues the saved one, so it keeps 0.98 (to change lr_decay, start a new run, e.g. "
        "from the saved weights)"]
    assert_same_run(model, history, reference)  # it did what it said: the saved run went on


def test_a_resume_that_cannot_continue_the_run_is_refused(tmp_path):
    with pytest.raises(TrainingInterrupted):
        experiment(str(tmp_path), extra=[CtrlCAt(12)])
    with pytest.raises(ValueError, match="the checkpoint's scheduler is CosineAnnealingLR, this "
                       "fit's is StepLR: its state cannot carry over"):
        experiment(str(tmp_path), resume=True,
                   scheduler=lambda o: gg.optim.lr_scheduler.StepLR(o, 2))
    with pytest.raises(ValueError, match="resume=True needs checkpoint_dir"):
        fit(nn.Linear(1, 1), nn.MSELoss(), (np.zeros((2, 1)), np.zeros((2, 1))), resume=True)
