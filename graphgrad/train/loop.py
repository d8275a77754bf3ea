"""``fit``: the training loop, with the seed's knobs (learning-rate decay to a floor, gradient
caps), verdicts that stop a run gone wrong, diagnostic notes, callbacks and checkpoints."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings

import numpy as np

from .. import creation, nn
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from ..optim.lr_scheduler import ReduceLROnPlateau
from . import _build, _order
from .checkpoint import (
    check_resumed,
    checkpoint_path,
    load_checkpoint,
    reconcile,
    restore,
    write_checkpoint,
)
from .diagnose import Diagnostics, Knobs, diverged, parameter_norm, verdict
from .history import History, name_of_metric
from .interrupt import DeferredInterrupt, TrainingInterrupted
from .watch import Watch, watch

# what fit's own diagnostics and verdicts already say, so its doctor does not say it twice
JUDGED_BY_FIT = {"dead_relu", "lr_too_small", "nan_from_lr", "nan_from_loss", "diverging",
                 "unused_params", "vanishing_gradients", "exploding_gradients"}


def fit(model, loss_fn, train_data, *, val_data=None, metric=None, optimizer="sgd", lr=0.01,
        momentum=0.0, weight_decay=0.0, scheduler=None, lr_decay=1.0, min_lr=0.0,
        max_grad=None, max_grad_norm=None, epochs=10, batch_size=32, shuffle=True, seed=0,
        callbacks=(), progress=None, step_history=False, checkpoint_dir=None,
        checkpoint_every=None, resume=None, diagnose=True, compile=False) -> History:  # noqa: A002
    """Train ``model`` and return its :class:`History`; see the package docstring for every
    argument. A run that diverges or turns non-finite stops with ``history.verdict`` set.

    >>> import graphgrad as gg
    >>> from graphgrad.graph.examples import polynomial, polynomial_data
    >>> bad = fit(polynomial(), None, polynomial_data(), lr=0.1, min_lr=1e-3, max_grad=1e10,
    ...           epochs=300, batch_size=None, progress=False)
    >>> bad.verdict.kind, bad.verdict.epoch
    ('diverged', 3)
    >>> good = fit(polynomial(), None, polynomial_data(), lr=0.01, lr_decay=0.999, min_lr=1e-3,
    ...            max_grad=1000, epochs=300, batch_size=None, progress=False)
    >>> good.verdict is None, good.epochs[-1]["train_loss"] < 0.01 * good.epochs[0]["train_loss"]
    (True, True)

    Ctrl-C stops the run at the next step boundary, where its state is whole, and raises
    :class:`TrainingInterrupted` (a KeyboardInterrupt) after writing a checkpoint there when
    ``checkpoint_dir`` is given; a second Ctrl-C stops at once and saves nothing new.
    ``resume`` then continues bit for bit as if the run had never stopped: the same parameters,
    History (but for the times) and random draws, from the same step of the same epoch.

    A resume continues the saved run, so the checkpoint's ``optimizer, lr, momentum,
    weight_decay, scheduler, batch_size, shuffle, lr_decay, min_lr, max_grad`` and
    ``max_grad_norm`` are used, and each argument that differs from them is named in a
    UserWarning. ``epochs`` is the new total: a scheduler named by a string is re-sized to it
    (``T_max``, ``step_size``, ``gamma``, ``total_steps`` or ``patience`` recomputed as for a
    run of that many epochs) and continues from the epoch and the learning rate it had reached,
    with a warning that says so; a scheduler you made keeps its saved state. Another kind of
    optimizer or scheduler, or other data part way through an epoch, raises ValueError.
    """
    _check_knobs(lr, lr_decay, min_lr, max_grad, max_grad_norm, epochs, batch_size,
                 checkpoint_every)
    settings = dict(optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    scheduler=scheduler, lr_decay=lr_decay, min_lr=min_lr, max_grad=max_grad,
                    max_grad_norm=max_grad_norm, batch_size=batch_size, shuffle=shuffle)
    state = path = None
    if resume:
        _build.check(resume is not True or checkpoint_dir is not None, "resume",
                     "resume=True needs checkpoint_dir")
        path = checkpoint_path(checkpoint_dir) if resume is True else os.fspath(resume)
        state = load_checkpoint(path)
        settings, changes = reconcile(state, settings,
                                      own_loader=isinstance(train_data, _build.DataLoader))
    creation.manual_seed(seed)  # dropout and anything else drawn from the global generator
    trainer = Trainer(
        model, loss_fn, train_data, val_data=val_data, metric=metric, epochs=epochs, seed=seed,
        callbacks=callbacks, progress=progress, step_history=step_history,
        checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every, diagnose=diagnose,
        compile=compile, **settings)
    if state is not None:
        for change in changes + check_resumed(trainer, state):
            warnings.warn(change, UserWarning, stacklevel=2)
        restore(trainer, state, path)
    return trainer.run()


def _check_knobs(lr, lr_decay, min_lr, max_grad, max_grad_norm, epochs, batch_size,
                 checkpoint_every) -> None:
    check = _build.check
    check(isinstance(epochs, int) and epochs >= 0, "epochs", f"an int >= 0, got {epochs!r}")
    check(lr >= 0, "lr", f"must be >= 0, got {lr}")
    check(0 < lr_decay <= 1, "lr_decay", f"must be in (0, 1], got {lr_decay}")
    check(min_lr >= 0, "min_lr", f"must be >= 0, got {min_lr}")
    for name, cap in (("max_grad", max_grad), ("max_grad_norm", max_grad_norm)):
        check(cap is None or cap > 0, name, f"None or a positive number, got {cap}")
    check(batch_size is None or (isinstance(batch_size, int) and batch_size > 0), "batch_size",
          f"None (full batch) or a positive int, got {batch_size!r}")
    check(checkpoint_every is None or (isinstance(checkpoint_every, int) and checkpoint_every > 0),
          "checkpoint_every", f"None or a positive int, got {checkpoint_every!r}")


class _Stop(Exception):
    """Raised inside an epoch when a verdict ends the run."""


class Trainer:
    """The state of one ``fit`` (what callbacks receive as ``trainer``): ``model``, ``task``,
    ``optimizer``, ``scheduler``, ``history``, ``epoch`` (the one running), ``completed`` (the
    epochs done), ``step`` (the optimizer steps done), ``generator`` (the shuffling generator),
    ``settings`` (what a checkpoint records) and the knobs."""

    def __init__(self, model, loss_fn, train_data, *, val_data, metric, optimizer, lr, momentum,
                 weight_decay, scheduler, lr_decay, min_lr, max_grad, max_grad_norm, epochs,
                 batch_size, shuffle, seed, callbacks, progress, step_history, checkpoint_dir,
                 checkpoint_every, diagnose, compile) -> None:  # noqa: A002
        self.model, self.task = model, _build.make_task(model, loss_fn, compile)
        self.generator = creation.Generator().manual_seed(seed)
        self.train_batches = _build.make_batches(self.task, train_data, batch_size, shuffle,
                                                 self.generator, "train_data")
        if isinstance(self.train_batches, _build.DataLoader) and self.train_batches.generator:
            self.generator = self.train_batches.generator  # a given loader keeps its own
        self.val_batches = None if val_data is None else _build.make_batches(
            self.task, val_data, batch_size, False, None, "val_data")
        self.metric = _build.make_metric(metric)
        _build.check(self.metric is None or isinstance(self.task, _build.ModuleTask), "metric",
                     "must be None for a Graph (its output is the loss)")
        params = list(self.task.named.values())
        self.optimizer = _build.make_optimizer(optimizer, params, lr=lr, momentum=momentum,
                                               weight_decay=weight_decay)
        self.scheduler = _build.make_scheduler(scheduler, self.optimizer, max(epochs, 1))
        self.lr_decay, self.min_lr = lr_decay, min_lr
        self.max_grad, self.max_grad_norm = max_grad, max_grad_norm
        self.epochs, self.callbacks = epochs, list(callbacks)
        self.step_history, self.quiet = step_history, progress is False
        self.show = progress is True or (progress is None and sys.stdout.isatty())
        self.checkpoint = None if checkpoint_dir is None else checkpoint_path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every or 1
        self.settings = _settings_of(optimizer, self.optimizer, scheduler, self.scheduler,
                                     self.train_batches, lr=lr, momentum=momentum,
                                     weight_decay=weight_decay, epochs=epochs,
                                     batch_size=batch_size, shuffle=shuffle, lr_decay=lr_decay,
                                     min_lr=min_lr, max_grad=max_grad,
                                     max_grad_norm=max_grad_norm)
        self.history, self.completed, self.epoch, self.step = History(
            metric_name=name_of_metric(metric)), 0, 0, 0
        self.in_epoch = None  # the running epoch's _order.Progress
        self.saved = None  # (path, epochs, steps, steps into the next epoch) of the last checkpoint
        self._interrupt = DeferredInterrupt(announce=progress is not False)
        self.first_grad_norm = self.last_grad_norm = None
        self.first_param_norm = parameter_norm(self.parameter_arrays())  # before any update
        self.relu_outputs: dict = {}
        self.diagnostics = Diagnostics(list(self.task.named), self.relu_outputs) if diagnose \
            else None
        self.knobs = Knobs(max_grad, max_grad_norm, lr_decay, min_lr, self.scheduler is not None)

    def parameter_arrays(self) -> dict:
        """Parameter name -> the NumPy array holding its values (writable, shared)."""
        return {name: p.detach().numpy() for name, p in self.task.named.items()}

    # ------------------------------------------------------------------ the run
    def run(self) -> History:
        hooks = self._watch_relus()
        doctor = self._doctor()
        try:
            with self._interrupt:
                for callback in self.callbacks:
                    callback.on_train_begin(self)
                with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported
                    self._epochs()
                for callback in self.callbacks:
                    callback.on_train_end(self)
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt as exc:  # a second Ctrl-C, or one raised by code: mid-step
            raise self._interrupted_mid_step() from exc
        finally:
            for handle in hooks:
                handle.remove()
            if doctor is not None:
                doctor.close()
        self._finish(doctor)
        return self.history

    def _epochs(self) -> None:
        for epoch in range(self.completed + 1, self.epochs + 1):
            self.epoch = epoch
            try:
                record = self._train_epoch()
            except _Stop:
                return
            self.completed = self.epoch
            stop = any([bool(cb.on_epoch_end(self, record)) for cb in self.callbacks])
            if self.checkpoint and self.epoch % self.checkpoint_every == 0:
                self._save()
            if stop:
                self.history.stopped_early = True
                return
            if epoch < self.epochs:
                self._step_boundary()

    def _train_epoch(self) -> dict:
        start = time.perf_counter()
        self.task.set_training(True)
        if self.in_epoch is None:  # else a resumed run goes on part way through the epoch
            _order.set_epoch(self.train_batches, self.epoch - 1)
            self.in_epoch = _order.Progress(_order.draw(self.train_batches),
                                            self.optimizer.param_groups[0]["lr"])
        progress = self.in_epoch
        lr, last, ratios = progress.lr, len(progress.order) - 1, {}
        batches = _order.replay(self.train_batches, progress.order, progress.position)
        for index, batch in enumerate(self._progress(batches, progress), progress.position):
            loss, count, norms = self._backward(batch)
            total_norm = math.sqrt(sum(v * v for v in norms.values()))
            self.step += 1
            if self.step_history:
                self.history.steps.append({"step": self.step, "epoch": self.epoch, "loss": loss,
                                           "lr": lr, "grad_norm": total_norm})
            if not (math.isfinite(loss) and math.isfinite(total_norm)):
                self._record(start, lr, loss, progress.sums, progress.layer_sums, ratios)
                self._stop("non_finite", loss, total_norm, lr, index + 1)
            if self.first_grad_norm is None:
                self.first_grad_norm = total_norm
            self.last_grad_norm = total_norm
            self._clip()
            if index == last:  # the update ratio is measured on the epoch's last step
                before = {k: v.copy() for k, v in self.parameter_arrays().items()}
                self.optimizer.step()
                ratios = _update_ratios(before, self.parameter_arrays())
            else:
                self.optimizer.step()
            progress.add(loss, count, total_norm, norms)
            for callback in self.callbacks:
                callback.on_step_end(self)
            if index < last:  # after the last, the epoch's end comes first
                self._step_boundary()
        self.in_epoch = None
        return self._end_epoch(start, lr, progress.sums, progress.layer_sums, ratios)

    def _backward(self, batch) -> tuple:
        self.optimizer.zero_grad()
        loss, count = self.task.loss_and_backward(batch)
        grads = {name: p.grad for name, p in self.task.named.items()}
        if self.diagnostics is not None and self.epoch == 1:
            self.diagnostics.saw_gradients(grads)
        norms = {name: float(np.linalg.norm(g.numpy().reshape(-1)))
                 for name, g in grads.items() if g is not None}
        return loss, count, norms

    def _clip(self) -> None:
        params = list(self.task.named.values())
        if self.max_grad is not None:
            clip_grad_value_(params, self.max_grad)
        if self.max_grad_norm is not None:
            clip_grad_norm_(params, self.max_grad_norm)

    def _record(self, start, lr, loss, sums, layer_sums, ratios) -> dict:
        """Append the epoch's record (``loss`` overrides the mean when a step went wrong)."""
        steps = max(sums["steps"], 1)
        train_loss = loss if loss is not None else sums["loss"] / sums["count"]
        record = {
            "epoch": self.epoch, "train_loss": train_loss, "val_loss": None, "metric": None,
            "lr": lr, "grad_norm": sums["grad_norm"] / steps,
            "layer_grad_norms": {k: v / steps for k, v in layer_sums.items()},
            "update_ratio": ratios, "time": time.perf_counter() - start,
        }
        self.history.epochs.append(record)
        return record

    def _end_epoch(self, start, lr, sums, layer_sums, ratios) -> dict:
        record = self._record(start, lr, None, sums, layer_sums, ratios)
        if self.val_batches is not None:
            record["val_loss"], record["metric"] = self.task.evaluate(self.val_batches,
                                                                      self.metric)
        elif self.metric is not None:
            _, record["metric"] = self.task.evaluate(self.train_batches, self.metric)
        record["time"] = time.perf_counter() - start
        if diverged([r["train_loss"] for r in self.history.epochs]):
            self._stop("diverged", record["train_loss"], record["grad_norm"], lr, sums["steps"])
        self._step_schedule(record)
        if self.diagnostics is not None:
            self.diagnostics.after_epoch(record, self.history, self.history.notes,
                                         self.history.monitor)
        self._report(record)
        return record

    def _step_schedule(self, record: dict) -> None:
        if isinstance(self.scheduler, ReduceLROnPlateau):
            loss = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
            self.scheduler.step(loss)
        elif self.scheduler is not None:
            self.scheduler.step()
        for group in self.optimizer.param_groups:
            group["lr"] = max(self.min_lr, group["lr"] * self.lr_decay)

    def _stop(self, kind, loss, grad_norm, lr, step) -> None:
        previous = [r["train_loss"] for r in self.history.epochs[:-1]]
        best = min(previous) if previous else None
        self.history.verdict = verdict(
            kind, epoch=self.epoch, step=step, loss=loss, best=best, grad_norm=grad_norm,
            first_grad_norm=self.first_grad_norm, last_grad_norm=self.last_grad_norm, lr=lr,
            knobs=self.knobs, param_norm=parameter_norm(self.parameter_arrays()),
            first_param_norm=self.first_param_norm)
        raise _Stop

    # ------------------------------------------------------------------ observation
    def _watch_relus(self) -> list:
        """Forward hooks keeping each nn.ReLU's latest training output (for dead units)."""
        if self.diagnostics is None or not isinstance(self.model, nn.Module):
            return []
        handles = []
        for name, module in self.task.inner.named_modules():  # a DDP model's module's names
            if isinstance(module, nn.ReLU):
                self.relu_outputs[name] = None
                handles.append(module.register_forward_hook(self._keep_output(name)))
        return handles

    def _keep_output(self, name: str):
        def hook(module, args, output):
            if module.training:
                self.relu_outputs[name] = output.detach()

        return hook

    def _progress(self, batches, progress):
        if not self.show:
            return batches
        try:
            from tqdm.auto import tqdm  # optional extra "progress"
        except ImportError:
            return batches
        return tqdm(batches, desc=f"epoch {self.epoch}/{self.epochs}", leave=False,
                    total=len(progress.order), initial=progress.position)

    def _report(self, record: dict) -> None:
        if not self.show:
            return
        parts = [f"epoch {record['epoch']}/{self.epochs}",
                 f"train_loss {record['train_loss']:.4g}"]
        if record["val_loss"] is not None:
            parts.append(f"val_loss {record['val_loss']:.4g}")
        if record["metric"] is not None:
            parts.append(f"{self.history.metric_name or 'metric'} {record['metric']:.4g}")
        parts += [f"lr {record['lr']:.3g}", f"{record['time']:.2f} s"]
        print("  ".join(parts), flush=True)

    # ------------------------------------------------------------------ checkpoints
    def _save(self) -> str | None:
        """Checkpoint the state (whole: between two steps) and remember what was saved."""
        path = write_checkpoint(self, self.checkpoint)
        if path is not None:
            position = 0 if self.in_epoch is None else self.in_epoch.position
            self.saved = (path, self.completed, self.step, position)
        return path

    def _step_boundary(self) -> None:
        """Between two steps the state is whole: stop here if Ctrl-C asked to."""
        if not self._interrupt.requested:
            return
        position = 0 if self.in_epoch is None else self.in_epoch.position
        if self.checkpoint is None:
            raise TrainingInterrupted(None, self.completed, self.step, in_epoch=position)
        already = self.saved is not None and self.saved[2] == self.step  # checkpoint_every's
        if not already and self._save() is None:
            raise self._interrupted_mid_step(
                "the epoch's order of batches is not integers, so it could not be saved")
        raise TrainingInterrupted(self.saved[0], self.completed, self.step, in_epoch=position)

    def _interrupted_mid_step(self, why: str = "stopped at once, in the middle of a step or of "
                              "an epoch's end, whose state was not saved"
                              ) -> TrainingInterrupted:
        """The interruption to raise when the state is not whole: the last checkpoint's."""
        if self.saved is not None:
            path, epochs, steps, position = self.saved
            return TrainingInterrupted(path, epochs, steps, in_epoch=position, reason=why)
        position = 0 if self.in_epoch is None else self.in_epoch.position
        reason = why if self.checkpoint is not None else None
        return TrainingInterrupted(None, self.completed, self.step, in_epoch=position,
                                   reason=reason)

    def _doctor(self) -> Watch | None:
        """The training doctor on an eagerly trained Module (a compiled step replays its ops
        out of the hooks' sight): what goes into the loss, the model's mode, the updates."""
        if self.diagnostics is None or not isinstance(self.task, _build.ModuleTask) \
                or self.task.compiled:
            return None
        return watch(self.model, self.optimizer, stop_on_nonfinite=False)

    def _finish(self, doctor: Watch | None) -> None:
        if self.diagnostics is not None:
            self.diagnostics.after_training(self.history.epochs, self.epochs, self.min_lr,
                                            self.history.notes)
        for diagnosis in doctor.diagnoses if doctor is not None else ():
            if diagnosis.kind not in JUDGED_BY_FIT:
                self.history.notes.append(diagnosis.message)
        if not self.quiet:  # the one end-of-run report: losses, best epoch, verdict and notes
            print(self.history.summary())


def _settings_of(optimizer, built_optimizer, scheduler, built_scheduler, batches,
                 **knobs) -> dict:
    """What a checkpoint records of the run's settings, for a resume to compare with its own:
    the optimizer and scheduler by name (None when given as objects) and by class, the knobs,
    and the data's size."""
    samples = batches.n if isinstance(batches, _build.GraphBatches) else len(batches.dataset)
    return {
        "optimizer": optimizer.lower() if isinstance(optimizer, str) else None,
        "optimizer_class": type(built_optimizer).__name__,
        "scheduler": scheduler.lower() if isinstance(scheduler, str) else None,
        "scheduler_class": None if built_scheduler is None else type(built_scheduler).__name__,
        **knobs, "steps_per_epoch": len(batches), "samples": samples,
    }


def _update_ratios(before: dict, after: dict) -> dict:
    """``||w_after - w_before|| / ||w_before||`` per parameter (None where ``w`` was zero)."""
    ratios = {}
    for name, old in before.items():
        size = float(np.linalg.norm(old.reshape(-1)))
        change = float(np.linalg.norm((after[name] - old).reshape(-1)))
        ratios[name] = change / size if size > 0 else None
    return ratios
