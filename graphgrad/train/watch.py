"""The training doctor: ``watch(model, optimizer, loss_fn)`` listens to a loop of one's own.

Hooks gather cheap evidence as the loop runs (the loss of each step, what goes into every
functional loss and into the model, the gradients, updates and weights at
``optimizer.step()``), and ``Watch.diagnoses`` reads it as :class:`Diagnosis` objects: a stable
``kind`` and one sentence holding the number that shows the trouble and the remedy. The costly
looks are sampled: the first SAMPLE_FIRST steps, then two consecutive steps in every
SAMPLE_EVERY (consecutive, so that one update can be compared with the next), each parameter
through about 4,096 evenly spaced numbers. A loss that turns non-finite ends the run: its source
is traced (the batch, the weights, the op and layer of the forward, or the loss), the diagnosis
recorded and :class:`TrainingStopped` raised with its message.

>>> import graphgrad as gg
>>> from graphgrad.train import watch
>>> _ = gg.manual_seed(0)
>>> model = gg.nn.Linear(3, 2)
>>> opt = gg.optim.SGD(model.parameters(), lr=0.1)
>>> loss_fn = gg.nn.CrossEntropyLoss()
>>> x, y = gg.randn(16, 3), gg.randint(0, 2, (16,))
>>> with watch(model, opt, loss_fn) as w:
...     for _ in range(3):
...         loss = loss_fn(model(x).softmax(dim=1), y)
...         opt.zero_grad(); loss.backward(); opt.step()
>>> [d.kind for d in w.diagnoses]
['probabilities_as_logits']
"""

from __future__ import annotations

import math
import statistics
import threading
from dataclasses import dataclass

import numpy as np

from ..autograd import is_grad_enabled
from ..nn import functional
from ..nn.modules import loss as losses
from ..nn.modules.activation import Dropout, ReLU, Sigmoid, Tanh
from ..nn.modules.module import (
    Module,
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from ..nn.modules.normalization import BatchNorm1d
from ..optim.optimizer import Optimizer, register_optimizer_created_hook
from ..tensor import Tensor
from .diagnose import TINY_RATIO, diverged, stepped_too_little, tiny_steps
from .gradient_flow import GradientFlow
from .gradient_flow import norm as _norm
from .gradient_flow import spaced as _spaced
from .history import History
from .loss_checks import check_loss_call
from .nonfinite import first_nonfinite

SATURATED_AT, SATURATED_SHARE = 4.0, 0.1  # |input| of sigmoid/tanh beyond this; share of them
DEAD_SHARE = 0.5  # share of ReLU units that are zero on the whole batch
STD_RATIO = 100.0  # largest over smallest feature std in the first batch
SPIKE = 3.0  # a loss at steps 2-10 this many times step 1's
THROWN = 100.0  # weights whose norm grew this many times over were thrown by the step size
ZIGZAG = -0.5  # median cosine of consecutive updates below this: each step undoes the last
BLOWUPS = {"nan_from_lr", "loss_spike_early", "diverging"}  # steps too large
# A finding another one explains is left out: steps too large kill and saturate units, swing the
# weights and throw the gradients about; dead or saturated units are why gradients vanish.
EXPLAINED_BY = {
    **{effect: BLOWUPS for effect in ("dead_relu", "saturated_activations", "oscillation")},
    "exploding_gradients": BLOWUPS | {"unnormalised_inputs"},  # huge inputs, huge gradients
    "vanishing_gradients": BLOWUPS | {"dead_relu", "saturated_activations"},
    "lr_too_small": {"vanishing_gradients"},  # tiny gradients make tiny steps at any rate
}
SAMPLE_FIRST = 10  # steps whose inputs, activations and updates are all looked at
SAMPLE_EVERY = 25  # after those, two consecutive steps are looked at this often
LOSSES = ("binary_cross_entropy", "binary_cross_entropy_with_logits", "cosine_embedding_loss",
          "cross_entropy", "gaussian_nll_loss", "hinge_embedding_loss", "huber_loss", "kl_div",
          "l1_loss", "margin_ranking_loss", "mse_loss", "multi_margin_loss",
          "multilabel_soft_margin_loss", "nll_loss", "poisson_nll_loss", "smooth_l1_loss",
          "soft_margin_loss", "triplet_margin_loss")


@dataclass(frozen=True)
class Diagnosis:
    """One finding: ``kind`` (a stable name) and ``message`` (the evidence and the remedy)."""

    kind: str
    message: str


class TrainingStopped(RuntimeError):
    """A watched run met a problem it cannot go on from (a non-finite loss or update)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__(diagnosis.message)
        self.diagnosis = diagnosis


def _array(value) -> np.ndarray | None:
    return np.asarray(value._data) if isinstance(value, Tensor) else None


class Watch:
    """The evidence of a watched loop and the diagnoses read from it; ``close()`` (or leaving
    the ``with`` block) removes every hook it installed."""

    def __init__(self, stop_on_nonfinite: bool = True) -> None:
        self.stop_on_nonfinite = stop_on_nonfinite
        self._found: dict[str, Diagnosis] = {}
        self._handles: list = []
        self._optimizers: list[Optimizer] = []
        self._models: list[Module] = []
        self._trained: list[Module] = []  # the models called while gradients were recorded
        self._flow = GradientFlow()
        self.steps = 0
        self.losses: list[float] = []  # one per step: the last training loss seen before it
        self._pending_loss: float | None = None
        self._ratios: list[float] = []  # per sampled step: median update/weight ratio
        self._turns: list[tuple[float, float]] = []  # consecutive sampled steps: cosine, size
        self._last_update: tuple[int, dict] | None = None  # (step, id -> spaced update)
        self._first_weight_norm: float | None = None
        self._weight_norm: float | None = None
        self._stepped = False  # a step since the last backward
        self._accumulated: list[tuple[int, float]] = []  # (step, grad norm before backward)
        self._eval_steps = 0
        self._train_mode_evals = 0
        self._sampled = 0  # steps whose updates were measured
        self._unchanged: dict[int, list] = {}  # id -> [parameter, steps with a grad, unmoved]
        self._saturation: list[tuple[int, float]] = []  # (id of a sigmoid/tanh, share)
        self._last_activation: tuple | None = None  # (output, id of its module)
        self._output_activations: set[int] = set()  # whose output is the model's output
        self._dead: list[float] = []
        self._first_input = True
        self._last_call: tuple | None = None  # (model, args) of the last training forward
        self._replaying = False  # while the last forward runs again to find a NaN's source
        self._closed = False
        self.stopped: Diagnosis | None = None  # the run-ending finding, once met
        _PATCHES.watches.append(self)
        _PATCHES.install()

    # ------------------------------------------------------------------ attaching
    def attach_model(self, model: Module) -> None:
        if any(model is m for m in self._models):
            return
        self._models.append(model)

    def attach_optimizer(self, optimizer: Optimizer) -> None:
        if any(optimizer is o for o in self._optimizers):
            return
        self._optimizers.append(optimizer)
        step = optimizer.step

        def watched_step(*args, **kwargs):
            before = self._before_step(optimizer)
            result = step(*args, **kwargs)
            self._after_step(optimizer, before)
            return result

        optimizer.step = watched_step
        self._handles.append(_InstanceAttribute(optimizer, "step"))

    def _hook_local(self, model, loss_fn) -> None:
        """Per-module hooks for ``watch(model, optimizer, loss_fn)``."""
        if model is not None:
            self.attach_model(model)
            self._handles += [
                model.register_forward_pre_hook(lambda module, args:
                                                self._on_model_input(module, args)),
                model.register_forward_hook(lambda module, args, output:
                                            self._on_model_output(output))]
            for sub in model.modules():
                if isinstance(sub, (Sigmoid, Tanh, ReLU)):
                    self._handles.append(sub.register_forward_hook(self._on_activation))
        if isinstance(loss_fn, Module) and not isinstance(loss_fn, losses._Loss):
            self._handles.append(loss_fn.register_forward_hook(  # a loss of one's own
                lambda module, args, output: self._on_loss_value(output)))

    def _hook_global(self) -> None:
        """Hooks on every module call and every new optimizer, for ``graphgrad doctor``."""
        depth = [0]

        def pre(module, args):
            if depth[0] == 0 and not isinstance(module, losses._Loss) and not self._replaying:
                self.attach_model(module)
                self._on_model_input(module, args)
            depth[0] += 1

        def post(module, args, output):
            depth[0] = max(0, depth[0] - 1)
            if isinstance(module, (Sigmoid, Tanh, ReLU)):
                self._on_activation(module, args, output)
            if depth[0] == 0 and not isinstance(module, losses._Loss):
                self._on_model_output(output)

        self._handles += [register_module_forward_pre_hook(pre),
                          register_module_forward_hook(post),
                          register_optimizer_created_hook(self.attach_optimizer)]

    # ------------------------------------------------------------------ evidence
    def _note(self, kind: str, message: str) -> None:
        if kind not in self._found:
            self._found[kind] = Diagnosis(kind, message)

    def _stop(self, kind: str, message: str):
        self._note(kind, message)
        if self.stopped is None:
            self.stopped = self._found[kind]
        if self.stop_on_nonfinite:
            raise TrainingStopped(self.stopped)

    def _sampling(self) -> bool:
        return self.steps < SAMPLE_FIRST or self.steps % SAMPLE_EVERY < 2

    def _on_model_input(self, module, args) -> None:
        if self._replaying:
            return
        if is_grad_enabled():
            self._last_call = (module, args)
            if not any(module is m for m in self._trained):
                self._trained.append(module)
        if self._optimizers and module.training is not is_grad_enabled() and any(
                isinstance(m, (Dropout, BatchNorm1d)) for m in module.modules()):
            if module.training:  # a forward under no_grad in train mode: an evaluation
                self._train_mode_evals += 1
            else:
                self._eval_steps += 1
        data = _array(args[0]) if args else None  # scanned for NaN only once the loss is one
        if data is None or not np.issubdtype(data.dtype, np.floating):
            return
        if self._first_input and data.ndim == 2 and data.shape[0] > 1:
            self._first_input = False
            self._check_scales(data)

    def _check_scales(self, data: np.ndarray) -> None:
        std = data.std(axis=0)
        std = std[np.isfinite(std) & (std > 0)]
        if std.size > 1 and std.max() / std.min() > STD_RATIO:
            self._note("unnormalised_inputs", "the input features' standard deviations "
                       f"differ {std.max() / std.min():.3g}-fold in the first batch "
                       f"({std.min():.3g} to {std.max():.3g}): standardise each feature "
                       "(subtract its mean, divide by its std) before training")

    def _on_loss_call(self, name: str, args: tuple, kwargs: dict, output) -> None:
        """A functional loss (or a loss layer, through it) was computed while training."""
        if not is_grad_enabled() or self._replaying:  # an evaluation's loss
            return
        fault = check_loss_call(name, args, kwargs) if self._sampling() else None
        if fault is not None:
            self._note(*fault)
        self._on_loss_value(output, fault[0] if fault else None)

    def _on_loss_value(self, output, cause: str | None = None) -> None:
        value = _array(output)
        if value is None or value.size != 1:
            return
        loss = float(value.reshape(-1)[0])
        self._pending_loss = loss
        if not math.isfinite(loss):
            kind, message = ((cause, self._found[cause].message) if cause
                             else self._nonfinite_source(loss))
            self._stop(kind, message)

    def _nonfinite_source(self, value: float) -> tuple[str, str]:
        """Why the loss is ``value`` (NaN or inf): the data, the steps, a layer or the loss."""
        step = self.steps + 1
        inputs = [_array(a) for a in (self._last_call or (None, ()))[1]]
        bad = sum(int(a.size - np.isfinite(a).sum()) for a in inputs
                  if a is not None and np.issubdtype(a.dtype, np.inexact))
        if bad:
            return ("nan_in_data", f"the loss is {value} at step {step}, whose input batch "
                    f"holds {bad} non-finite values (NaN or inf): clean or impute the data "
                    "before training")
        finite = [loss for loss in self.losses if math.isfinite(loss)]
        grown = (self._weight_norm or 0) / max(self._first_weight_norm or 0, 1e-30)
        if grown > THROWN or (len(finite) > 1 and finite[-1] > THROWN * finite[0]):
            return ("nan_from_lr", f"the loss is {value} at step {step} after the weights' "
                    f"norm grew {grown:.3g}-fold and the loss from {finite[0]:.4g} to "
                    f"{finite[-1]:.4g}: the steps are too large, lower the learning rate "
                    "(or clip the gradient norm)")
        broken = next((name for name, p in self._named_params() if not np.isfinite(p._data).all()),
                      None)
        if broken is not None:
            return ("nan_from_lr", f"the loss is {value} at step {step}: an update made "
                    f"parameter {broken} non-finite: lower the learning rate or clip the "
                    "gradient norm")
        source = self._replay_for_nonfinite()
        if source is not None:
            return ("nan_in_layer", f"the loss is {value} at step {step}, from the model's "
                    f"forward: {source.describe()}")
        return ("nan_from_loss", f"the loss is {value} at step {step} while the inputs, "
                "weights and model outputs are finite: the loss function is undefined at "
                "these outputs (a log of 0, a division by 0); add an epsilon or use a stable "
                "form (e.g. BCEWithLogitsLoss, log_softmax)")

    def _replay_for_nonfinite(self):
        if self._last_call is None:
            return None
        self._replaying = True
        try:
            return first_nonfinite(*self._last_call)
        finally:
            self._replaying = False

    def _named_params(self):
        for model in self._models:
            yield from model.named_parameters()

    def _on_activation(self, module, args, output) -> None:
        if not self._sampling() or not args or self._replaying:
            return
        if isinstance(module, ReLU):
            out = _array(output)
            if out is not None and out.ndim == 2 and out.shape[0] > 1:
                self._dead.append(float(np.mean(np.all(out <= 0, axis=0))))
            return
        data = _array(args[0])
        if data is not None and data.size:
            self._saturation.append((id(module), float(np.mean(np.abs(data) > SATURATED_AT))))
            self._last_activation = (output, id(module))

    def _on_model_output(self, output) -> None:
        """A sigmoid that makes the model's output (a classifier's probabilities) saturates as
        the model grows confident: that is no vanishing gradient inside the model."""
        if self._last_activation is not None and output is self._last_activation[0]:
            self._output_activations.add(self._last_activation[1])
        self._last_activation = None

    def _on_backward(self, tensor: Tensor) -> None:
        if self._pending_loss is None:  # no loss function seen: what backward starts from
            self._on_loss_value(tensor)
        if not self._stepped:
            return
        self._stepped = False
        for p in self._params():
            if p.grad is not None:
                grad = p.grad._data
                if np.any(grad != 0):
                    self._accumulated.append((self.steps, _norm(grad)))
                break  # one parameter is evidence enough, and cheap

    def _params(self):
        for optimizer in self._optimizers:
            for group in optimizer.param_groups:
                yield from group["params"]

    def _before_step(self, optimizer: Optimizer):
        if not self._sampling():
            return None
        held = {id(p) for p in self._params()}
        for model in self._models:
            orphans = [name for name, p in model.named_parameters()
                       if id(p) not in held and p.grad is not None]
            if orphans:
                self._note("params_not_in_optimizer", f"{len(orphans)} parameters of "
                           f"{type(model).__name__} get gradients but no optimizer holds them "
                           f"(first: {orphans[0]}): pass model.parameters() to the optimizer "
                           "(or add_param_group them)")
        self._flow.record(self._trained_params())
        return [(p, _spaced(p._data).copy()) for g in optimizer.param_groups
                for p in g["params"] if p.grad is not None]

    def _trained_params(self):
        """(name, parameter) of the trained models, by the model's class when there are
        several (a GAN's generator and discriminator)."""
        several = len(self._trained) > 1
        for model in self._trained:
            prefix = f"{type(model).__name__}." if several else ""
            for name, p in model.named_parameters():
                yield prefix + name, p

    def _after_step(self, optimizer: Optimizer, before) -> None:
        self.steps += 1
        self._stepped = True
        self.losses.append(math.nan if self._pending_loss is None else self._pending_loss)
        self._pending_loss = None
        if before is None:
            return
        ratios, weights, updates = [], 0.0, {}
        self._sampled += 1
        for p, old in before:
            new = _spaced(p._data)
            if not np.isfinite(new).all():
                self._stop("nan_from_lr", f"step {self.steps} made a parameter non-finite "
                           f"(its gradient norm {_norm(p.grad._data):.3g}): lower the learning "
                           "rate or clip the gradient norm")
            update = new - old
            weight, moved = _norm(old), _norm(update)
            weights += _norm(new) ** 2  # after the step: a zero start is no scale to grow from
            updates[id(p)] = update
            if weight > 0:
                ratios.append(moved / weight)
            if moved == 0 and np.any(_spaced(p.grad._data) != 0):
                self._unchanged.setdefault(id(p), [p, 0])[1] += 1
        self._weight_norm = math.sqrt(weights)
        if self._first_weight_norm is None:
            self._first_weight_norm = self._weight_norm
        if ratios:
            self._ratios.append(statistics.median(ratios))
        self._note_turn(updates)

    def _note_turn(self, updates: dict) -> None:
        """The cosine between this step's update and the previous step's, when both were
        measured (near -1 when each step undoes the last), and this update's size."""
        if self._last_update is not None and self._last_update[0] == self.steps - 1:
            previous = self._last_update[1]
            dot = sum(float(u @ previous[k]) for k, u in updates.items() if k in previous)
            size = math.sqrt(sum(float(u @ u) for u in updates.values()))
            before = math.sqrt(sum(float(u @ u) for u in previous.values()))
            if size * before > 0:
                self._turns.append((dot / (size * before), size))
        self._last_update = (self.steps, updates)

    def _swinging(self) -> float | None:
        """The median cosine of consecutive updates, when they point against each other
        (below ZIGZAG) and their size holds up (the last third of the measured pairs at
        least half the middle third's: the first holds the approach from the start): swings
        that a decay, or convergence, would have shrunk."""
        if len(self._turns) < 6:
            return None
        cosines, sizes = zip(*self._turns)
        third = len(sizes) // 3
        median = float(np.median(cosines))
        holds = np.median(sizes[-third:]) >= 0.5 * np.median(sizes[third:-third])
        return median if median < ZIGZAG and holds else None

    # ------------------------------------------------------------------ reading
    @property
    def diagnoses(self) -> list[Diagnosis]:
        """What the evidence so far shows, the run-time findings first."""
        found = dict(self._found)
        for kind, message in self._end_of_run():
            found.setdefault(kind, Diagnosis(kind, message))
        return [d for kind, d in found.items() if not EXPLAINED_BY.get(kind, set()) & found.keys()]

    def _end_of_run(self):
        if len(self._accumulated) >= 2:
            step, norm = self._accumulated[0]
            yield ("grads_accumulate", f"the gradients were already non-zero (norm {norm:.3g})"
                   f" before backward after step {step}, at {len(self._accumulated)} steps: "
                   "nothing zeroes them, so they add up; call optimizer.zero_grad() each step")
        if self._eval_steps:
            yield ("eval_mode_training", f"the model was in eval mode at {self._eval_steps} "
                   "training forwards while it has Dropout/BatchNorm: call model.train() "
                   "before the training loop (and model.eval() only to evaluate)")
        if self._train_mode_evals:
            yield ("train_mode_eval", f"the model was in train mode at {self._train_mode_evals}"
                   " forwards under no_grad (evaluations) while it has Dropout/BatchNorm, so "
                   "they dropped units and used batch statistics: call model.eval() before "
                   "evaluating (and model.train() after)")
        stuck = [p for p, count in self._unchanged.values() if count == self._sampled]
        if stuck and self._sampled >= 5 and float(np.median(self._ratios)) >= TINY_RATIO:
            size = sum(p.numel() for p in stuck)
            yield ("frozen_params_with_grads", f"{len(stuck)} parameters ({size} numbers) "
                   f"got non-zero gradients at all {self._sampled} measured steps but never "
                   "changed while the others moved: check their group's lr (0?) and the "
                   "optimizer's param_groups, or set requires_grad=False if they are meant "
                   "to stay frozen")
        finite = [loss for loss in self.losses if math.isfinite(loss)]
        if len(self._ratios) >= 5 and finite:
            median = float(np.median(self._ratios))
            if stepped_too_little(median, finite[0], finite[-1]):
                yield ("lr_too_small", tiny_steps(
                    median, f"over {len(self._ratios)} sampled steps", finite[0], finite[-1]))
        swing = self._swinging()
        if swing is not None:
            yield ("oscillation", f"consecutive updates point against each other (median "
                   f"cosine {swing:.2f} over {len(self._turns)} measured pairs) and the swings "
                   "do not shrink: the steps overshoot the minimum and swing back; lower the "
                   "learning rate or decay it (e.g. StepLR, CosineAnnealingLR)")
        hidden = [share for module, share in self._saturation
                  if module not in self._output_activations]
        if hidden and float(np.median(hidden)) > SATURATED_SHARE:
            share = float(np.median(hidden))
            yield ("saturated_activations", f"{share:.0%} of the sigmoid/tanh inputs have "
                   f"|x| > {SATURATED_AT:g}, where their gradient vanishes: normalise the "
                   "inputs, shrink the initial weights or add normalisation layers")
        if self._dead and self._dead[-1] > DEAD_SHARE:
            yield ("dead_relu", f"{self._dead[-1]:.0%} of the ReLU units output 0 for the "
                   "whole batch: lower the learning rate, check the initialisation or use "
                   "LeakyReLU")
        yield from self._flow.findings()
        if self.stopped is None and len(finite) >= 3 and diverged(finite):
            best = min(finite[:-1])
            yield ("diverging", f"the loss rose from {finite[0]:.4g} at step 1 to "
                   f"{finite[-1]:.4g} by step {self.steps}, {finite[-1] / best:.3g}x its best "
                   f"{best:.4g}: each step overshoots; lower the learning rate (or clip the "
                   "gradient norm)")
        if len(self.losses) >= 3 and math.isfinite(self.losses[0]) and self.losses[0] > 0:
            early = [loss for loss in self.losses[1:10] if math.isfinite(loss)]
            if early and max(early) > SPIKE * self.losses[0] \
                    and finite[-1] <= self.losses[0]:
                yield ("loss_spike_early", f"the loss rose to {max(early):.4g} in the first "
                       f"10 steps, {max(early) / self.losses[0]:.3g}x step 1's "
                       f"{self.losses[0]:.4g}, before recovering: warm the learning rate up "
                       "or lower it")

    @property
    def history(self) -> History:
        """The run as a :class:`History`: one step record per optimizer step (its loss) and
        one note per diagnosis, as ``fit`` leaves them."""
        steps = [{"step": i + 1, "loss": loss} for i, loss in enumerate(self.losses)]
        return History(steps=steps, notes=[d.message for d in self.diagnoses])

    def report(self) -> list[str]:
        """One line per diagnosis."""
        return [f"{d.kind}: {d.message}" for d in self.diagnoses]

    def close(self) -> None:
        """Remove every hook; the evidence and diagnoses stay."""
        if self._closed:
            return
        self._closed = True
        for handle in reversed(self._handles):
            handle.remove()
        self._handles.clear()
        _PATCHES.watches.remove(self)
        _PATCHES.uninstall()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _InstanceAttribute:
    """A handle that deletes an attribute set on an instance (a wrapped ``optimizer.step``)."""

    def __init__(self, owner, name: str) -> None:
        self.owner, self.name = owner, name

    def remove(self) -> None:
        self.owner.__dict__.pop(self.name, None)


class _Patches:
    """While any watch is open, ``Tensor.backward`` and the functional losses (which the loss
    layers call too) tell the open watches of each call; the last watch closed restores them."""

    def __init__(self) -> None:
        self.watches: list[Watch] = []
        self.originals: dict = {}  # (owner, name) -> the function replaced
        # .depth: the functional losses running on this thread; one computed inside another
        # (a loss built on a second) is part of the outer one, not a loss of its own
        self.inside = threading.local()

    def install(self) -> None:
        if self.originals:
            return
        self._replace(Tensor, "backward", self._backward)
        for name in LOSSES:
            self._replace(functional, name, lambda original, name=name: self._loss(name, original))

    def _replace(self, owner, name: str, wrap) -> None:
        original = getattr(owner, name)
        self.originals[owner, name] = original
        wrapped = wrap(original)
        wrapped.__doc__, wrapped.__name__ = original.__doc__, original.__name__
        setattr(owner, name, wrapped)

    def _backward(self, original):
        watches = self.watches

        def backward(tensor, *args, **kwargs):
            for w in list(watches):
                w._on_backward(tensor)
            return original(tensor, *args, **kwargs)

        return backward

    def _loss(self, name: str, original):
        inside = self.inside

        def loss(*args, **kwargs):
            depth = getattr(inside, "depth", 0)
            inside.depth = depth + 1
            try:
                output = original(*args, **kwargs)
            finally:
                inside.depth = depth
            if depth == 0:
                for w in list(self.watches):
                    w._on_loss_call(name, args, kwargs, output)
            return output

        return loss

    def uninstall(self) -> None:
        if not self.watches:
            for (owner, name), original in self.originals.items():
                setattr(owner, name, original)
            self.originals.clear()


_PATCHES = _Patches()


def watch(model: Module | None = None, optimizer: Optimizer | None = None,
          loss_fn: Module | None = None, *, stop_on_nonfinite: bool = True) -> Watch:
    """Watch a training loop of one's own: hooks on ``model`` (its inputs, outputs, training
    flag and activations) and ``optimizer`` (each step's gradients, updates and weights). Every
    ``nn.functional`` loss (and so every loss layer) is watched while the watch is open; a
    ``loss_fn`` of one's own (a Module that is no loss layer) is hooked for its value. Without
    any, the tensor ``backward()`` is called on is the loss. A non-finite loss or update
    raises :class:`TrainingStopped` unless ``stop_on_nonfinite=False`` (a loop that stops
    itself, like ``fit``): then it is only recorded."""
    w = Watch(stop_on_nonfinite)
    w._hook_local(model, loss_fn)
    if optimizer is not None:
        w.attach_optimizer(optimizer)
    return w


def watch_everything() -> Watch:
    """A watch on every optimizer built from now on and every top-level module called (what
    ``graphgrad doctor`` installs)."""
    w = Watch()
    w._hook_global()
    return w
