"""``fit``: the training loop, with the seed's knobs (learning-rate decay to a floor, gradient
caps), verdicts that stop a run gone wrong, diagnostic notes, callbacks and checkpoints."""

from __future__ import annotations

import math
import os
import sys
import time

import numpy as np

from .. import creation, nn
from ..nn.utils import clip_grad_norm_, clip_grad_value_
from ..optim.lr_scheduler import ReduceLROnPlateau
from . import _build
from .checkpoint import checkpoint_path, load_checkpoint, restore, write_checkpoint
from .diagnose import Diagnostics, Knobs, diverged, verdict
from .history import History


def fit(model, loss_fn, train_data, *, val_data=None, metric=None, optimizer="sgd", lr=0.01,
        momentum=0.0, weight_decay=0.0, scheduler=None, lr_decay=1.0, min_lr=0.0,
        max_grad=None, max_grad_norm=None, epochs=10, batch_size=32, shuffle=True, seed=0,
        callbacks=(), progress=None, step_history=False, checkpoint_dir=None,
        checkpoint_every=None, resume=None, diagnose=True) -> History:
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
    """
    _check_knobs(lr, lr_decay, min_lr, max_grad, max_grad_norm, epochs, batch_size,
                 checkpoint_every)
    creation.manual_seed(seed)  # dropout and anything else drawn from the global generator
    trainer = Trainer(
        model, loss_fn, train_data, val_data=val_data, metric=metric, optimizer=optimizer,
        lr=lr, momentum=momentum, weight_decay=weight_decay, scheduler=scheduler,
        lr_decay=lr_decay, min_lr=min_lr, max_grad=max_grad, max_grad_norm=max_grad_norm,
        epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, callbacks=callbacks,
        progress=progress, step_history=step_history, checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every, diagnose=diagnose)
    if resume:
        path = checkpoint_path(checkpoint_dir) if resume is True else os.fspath(resume)
        _build.check(resume is not True or checkpoint_dir is not None, "resume",
                     "resume=True needs checkpoint_dir")
        restore(trainer, load_checkpoint(path))
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
    epochs done), ``generator`` (the shuffling generator) and the knobs."""

    def __init__(self, model, loss_fn, train_data, *, val_data, metric, optimizer, lr, momentum,
                 weight_decay, scheduler, lr_decay, min_lr, max_grad, max_grad_norm, epochs,
                 batch_size, shuffle, seed, callbacks, progress, step_history, checkpoint_dir,
                 checkpoint_every, diagnose) -> None:
        self.model, self.task = model, _build.make_task(model, loss_fn)
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
        self.history, self.completed, self.epoch, self.step = History(), 0, 0, 0
        self.first_grad_norm = self.last_grad_norm = None
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
        try:
            for callback in self.callbacks:
                callback.on_train_begin(self)
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported instead
                self._epochs()
            for callback in self.callbacks:
                callback.on_train_end(self)
        except KeyboardInterrupt:
            self._interrupted()
            raise
        finally:
            for handle in hooks:
                handle.remove()
        self._finish()
        return self.history

    def _epochs(self) -> None:
        self.step = self.completed * len(self.train_batches)  # a resumed run counts on
        for epoch in range(self.completed + 1, self.epochs + 1):
            self.epoch = epoch
            try:
                record = self._train_epoch()
            except _Stop:
                return
            self.completed = self.epoch
            stop = any([bool(cb.on_epoch_end(self, record)) for cb in self.callbacks])
            if self.checkpoint and self.epoch % self.checkpoint_every == 0:
                write_checkpoint(self, self.checkpoint)
            if stop:
                self.history.stopped_early = True
                return

    def _train_epoch(self) -> dict:
        start = time.perf_counter()
        self.task.set_training(True)
        lr = self.optimizer.param_groups[0]["lr"]
        sums = {"loss": 0.0, "count": 0, "grad_norm": 0.0, "steps": 0}
        layer_sums: dict = {}
        ratios: dict = {}
        batches = self._progress(self.train_batches)
        last = len(self.train_batches) - 1
        for index, batch in enumerate(batches):
            loss, count, norms = self._backward(batch)
            total_norm = math.sqrt(sum(v * v for v in norms.values()))
            self.step += 1
            if self.step_history:
                self.history.steps.append({"step": self.step, "epoch": self.epoch, "loss": loss,
                                           "lr": lr, "grad_norm": total_norm})
            if not (math.isfinite(loss) and math.isfinite(total_norm)):
                self._record(start, lr, loss, sums, layer_sums, ratios)
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
            sums["loss"] += loss * count
            sums["count"] += count
            sums["grad_norm"] += total_norm
            sums["steps"] += 1
            for name, value in norms.items():
                layer_sums[name] = layer_sums.get(name, 0.0) + value
        return self._end_epoch(start, lr, sums, layer_sums, ratios)

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
            knobs=self.knobs)
        raise _Stop

    # ------------------------------------------------------------------ observation
    def _watch_relus(self) -> list:
        """Forward hooks keeping each nn.ReLU's latest training output (for dead units)."""
        if self.diagnostics is None or not isinstance(self.model, nn.Module):
            return []
        handles = []
        for name, module in self.model.named_modules():
            if isinstance(module, nn.ReLU):
                self.relu_outputs[name] = None
                handles.append(module.register_forward_hook(self._keep_output(name)))
        return handles

    def _keep_output(self, name: str):
        def hook(module, args, output):
            if module.training:
                self.relu_outputs[name] = output.detach()

        return hook

    def _progress(self, batches):
        if not self.show:
            return batches
        try:
            from tqdm.auto import tqdm  # optional extra "progress"
        except ImportError:
            return batches
        return tqdm(batches, desc=f"epoch {self.epoch}/{self.epochs}", leave=False)

    def _report(self, record: dict) -> None:
        if not self.show:
            return
        parts = [f"epoch {record['epoch']}/{self.epochs}",
                 f"train_loss {record['train_loss']:.4g}"]
        if record["val_loss"] is not None:
            parts.append(f"val_loss {record['val_loss']:.4g}")
        if record["metric"] is not None:
            parts.append(f"metric {record['metric']:.4g}")
        parts += [f"lr {record['lr']:.3g}", f"{record['time']:.2f} s"]
        print("  ".join(parts), flush=True)

    def _interrupted(self) -> None:
        if self.checkpoint is None:
            print("Interrupted; no checkpoint_dir was given, so nothing was saved.", flush=True)
            return
        partial = self.completed < self.epoch
        write_checkpoint(self, self.checkpoint, partial=partial)
        print(f"Interrupted: checkpoint of {self.completed} completed epochs written to "
              f"{self.checkpoint}; continue with fit(..., resume={self.checkpoint!r}).",
              flush=True)

    def _finish(self) -> None:
        if self.diagnostics is not None:
            self.diagnostics.after_training(self.history.epochs, self.epochs, self.min_lr,
                                            self.history.notes)
        if self.quiet:
            return
        if self.history.verdict is not None:
            print(self.history.verdict.message)
        for note in self.history.notes:
            print(f"note: {note}")


def _update_ratios(before: dict, after: dict) -> dict:
    """``||w_after - w_before|| / ||w_before||`` per parameter (None where ``w`` was zero)."""
    ratios = {}
    for name, old in before.items():
        size = float(np.linalg.norm(old.reshape(-1)))
        change = float(np.linalg.norm((after[name] - old).reshape(-1)))
        ratios[name] = change / size if size > 0 else None
    return ratios
