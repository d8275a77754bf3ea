"""Reading a run as it goes: verdicts that stop a run gone wrong (the loss or a gradient not
finite, the loss risen far above its best) and notes on quieter trouble (a plateau, vanishing or
exploding layer gradients, dead ReLU units, parameters without gradients, a learning rate that
hits its floor early). Every judgement is written as plain sentences built from the evidence."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .history import Verdict

DIVERGE_FACTOR = 10.0  # the loss is this many times its best ...
DIVERGE_AFTER = 3  # ... at or after this epoch, and above the first epoch's loss
UNCAPPED = 1e6  # a max_grad this large never bites on a problem that is still healthy
THROWN = 1e3  # parameters whose norm grew this many times over were thrown by the step size
PLATEAU_PATIENCE = 10
TINY_RATIO = 1e-5  # median update/weight ratio below this: the steps barely move the weights
CONVERGED_LOSS = 1e-3  # a loss this small is done, however small its steps
PLATEAU_TOLERANCE = 1e-4  # relative improvement of the best loss that counts
VANISHING, EXPLODING = 1e-7, 1e3
DEAD_SHARE = 0.5


_CHECK_DATA = ("check the inputs and targets for NaN or infinity and that the loss is defined "
               "at the model's outputs")


@dataclass
class Knobs:
    """The settings a verdict's cause and remedy are read from."""

    max_grad: float | None
    max_grad_norm: float | None
    lr_decay: float
    min_lr: float
    has_scheduler: bool


def diverged(losses: list) -> bool:
    """The last loss is over ``DIVERGE_FACTOR`` times the best before it and above the first,
    from epoch ``DIVERGE_AFTER`` on.

    >>> diverged([136.8, 1928.5, 59360.7]), diverged([136.8, 75.2, 62.2])
    (True, False)
    """
    if len(losses) < DIVERGE_AFTER:
        return False
    best = min(losses[:-1])
    return losses[-1] > DIVERGE_FACTOR * best and losses[-1] > losses[0]


def parameter_norm(arrays) -> float:
    """The global L2 norm of the parameter arrays, without overflowing for huge finite values
    (inf or nan when a parameter is).

    >>> import numpy as np
    >>> parameter_norm({"w": np.array([3e300, 4e300]), "b": np.zeros(2)})
    5e+300
    """
    flat = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays.values()]
    values = np.concatenate(flat) if flat else np.zeros(0)
    if values.size == 0:
        return 0.0
    scale = float(np.max(np.abs(values)))
    if scale == 0 or not math.isfinite(scale):
        return scale
    return scale * float(np.sqrt(np.sum(np.square(values / scale))))


def verdict(kind: str, *, epoch: int, step: int, loss: float, best: float | None,
            grad_norm: float, first_grad_norm: float | None, last_grad_norm: float | None,
            lr: float, knobs: Knobs, param_norm: float | None = None,
            first_param_norm: float | None = None) -> Verdict:
    """A Verdict whose cause and remedy follow from the numbers and the knobs: a non-finite
    value that neither growth of the gradients nor parameters thrown far from where they
    started (``param_norm``, now, against ``first_param_norm``, at the start) announced is
    blamed on the data or the loss function, anything else on steps that are too large."""
    thrown = _thrown(param_norm, first_param_norm)
    if kind == "non_finite" and first_grad_norm is None:
        cause = ("the loss or its gradient was not finite at the very first step, before any "
                 "update, so the inputs, the initial parameters or the loss function itself "
                 "produce NaN or infinity (NaN in the data, log(0), a division by zero)")
        remedy = _CHECK_DATA
    elif kind == "non_finite" and last_grad_norm <= 100 * first_grad_norm and not thrown:
        cause = (f"the values turned non-finite suddenly, with the gradient norm still at "
                 f"{last_grad_norm:.3g} the step before (it started at {first_grad_norm:.3g}), "
                 "so a batch holds NaN or infinity or the loss is undefined for it (log(0), a "
                 "division by zero) rather than the steps being too large")
        remedy = _CHECK_DATA
    else:
        cause, remedy = _overshoot(grad_norm, first_grad_norm, lr, knobs)
        if thrown:
            cause += (f"; the updates threw the parameters' norm from {first_param_norm:.3g} "
                      f"to {param_norm:.3g}")
    best_text = "" if best is None else f" (best {best:.4g})"
    if kind == "diverged":
        what = f"Training diverged at epoch {epoch}: the loss rose to {loss:.3g}{best_text}"
    else:
        bad = "loss" if not math.isfinite(loss) else "gradient norm"
        what = (f"Training stopped at epoch {epoch}, step {step}: the {bad} became "
                f"{loss if bad == 'loss' else grad_norm}{best_text}")
    message = (f"{what} with gradient norm {grad_norm:.2g} at learning rate {lr:g}. "
               f"Likely cause: {cause}. Remedy: {remedy}.")
    return Verdict(kind, epoch, loss, grad_norm, lr, cause, remedy, message)


def _thrown(param_norm: float | None, first_param_norm: float | None) -> bool:
    """The parameters left their starting scale (1 for parameters that start at zero) by a
    factor no healthy run takes: the updates, so the step size, not the data, made the values
    overflow."""
    if param_norm is None or first_param_norm is None:
        return False
    return not math.isfinite(param_norm) or param_norm > THROWN * max(first_param_norm, 1.0)


def _overshoot(grad_norm, first_grad_norm, lr, knobs: Knobs) -> tuple[str, str]:
    uncapped = knobs.max_grad_norm is None and (knobs.max_grad is None
                                                or knobs.max_grad >= UNCAPPED)
    no_decay = knobs.lr_decay >= 1 and not knobs.has_scheduler
    exploded = not math.isfinite(grad_norm) or (
        first_grad_norm and grad_norm > 100 * first_grad_norm)
    cause = f"the learning rate {lr:g} is too high for this problem, so each update overshoots"
    if exploded and first_grad_norm:
        cause += f" and the gradient norm grew from {first_grad_norm:.3g} to {grad_norm:.3g}"
    if uncapped:
        cap = "" if knobs.max_grad is None else f" (max_grad={knobs.max_grad:g} never bites)"
        cause += f"; the gradients are uncapped{cap}"
    if no_decay:
        cause += "; the learning rate never decays"
    remedies = [f"lower the learning rate (try {lr / 10:g})"]
    if uncapped:
        remedies.append("cap gradients with max_grad or max_grad_norm")
    elif knobs.max_grad is not None:
        remedies.append(f"lower the cap max_grad={knobs.max_grad:g}")
    if no_decay:
        remedies.append("decay the learning rate (lr_decay below 1 or a scheduler)")
    if len(remedies) == 1:
        return cause, remedies[0]
    return cause, ", ".join(remedies[:-1]) + ", or " + remedies[-1]


def stepped_too_little(ratio: float, first: float, last: float) -> bool:
    """Steps far too small for the weights (median update/weight ratio ``ratio``), told apart
    from a minimum reached: the ``last`` loss is neither small nor half the ``first``."""
    return ratio < TINY_RATIO and last > CONVERGED_LOSS and last > 0.5 * first


def tiny_steps(ratio: float, where: str, first: float, last: float) -> str:
    """The lr_too_small sentence, for fit's notes and for a watched loop."""
    return (f"The median update/weight ratio is {ratio:.2g} {where} (healthy: about 1e-3) and "
            f"the loss only went from {first:.4g} to {last:.4g}: the learning rate is too "
            "small, raise it (try 10-100x).")


def unused_parameter(name: str, where: str) -> str:
    """The sentence for a parameter that never got a gradient ``where`` (in the first epoch)."""
    return (f"Parameter {name!r} never received a gradient {where}: it is not used to compute "
            "the loss (or detach/no_grad cuts it off), so it is never trained.")


def vanishing(name: str, norm: float, largest: float, where: str) -> str | None:
    """The sentence for a vanishing gradient of ``name`` (norm ``norm`` while the largest of
    the other parameters' is ``largest``), or None when it is not one."""
    if norm >= VANISHING or largest <= 1e4 * VANISHING:
        return None
    return (f"The gradient of {name!r} is vanishing (norm {norm:.2g} {where}, while other "
            f"parameters reach {largest:.2g}): it and the layers before it barely learn; "
            "check for saturated or dead activations or too small an initial scale, or use "
            "normalisation or residual connections.")


def exploding(name: str, norm: float, median: float, where: str) -> str | None:
    """The sentence for an exploding gradient of ``name`` (the other parameters' median norm is
    ``median``), or None when it is not one."""
    if norm <= EXPLODING or norm <= 1e3 * median:
        return None
    return (f"The gradient of {name!r} is exploding (norm {norm:.2g} {where}, a thousand times "
            f"the other parameters' median {median:.2g}): cap it (clip_grad_norm_, or fit's "
            "max_grad_norm) or lower the learning rate.")


class Diagnostics:
    """Collects notes over a run; each kind of trouble is noted once per parameter or layer."""

    def __init__(self, names: list, relus: dict) -> None:
        self.names = names
        self.relus = relus  # layer name -> the last training output of that nn.ReLU
        self.noted: set = set()
        self.with_grad: set = set()

    def state_dict(self) -> dict:
        return {"noted": sorted(self.noted), "with_grad": sorted(self.with_grad)}

    def load_state_dict(self, state: dict) -> None:
        self.noted = set(state["noted"])
        self.with_grad = set(state["with_grad"])  # a checkpoint may be taken inside epoch 1

    def _note(self, notes: list, key: str, sentence: str) -> None:
        if key not in self.noted:
            self.noted.add(key)
            notes.append(sentence)

    def saw_gradients(self, grads: dict) -> None:
        """Called after each backward of the first epoch with name -> gradient or None."""
        self.with_grad.update(name for name, g in grads.items() if g is not None)

    def after_epoch(self, record: dict, history, notes: list, monitor: str) -> None:
        if record["epoch"] == 1:
            self._unused(notes)
        self._plateau(history.epochs, notes, monitor)
        self._layers(record, notes)
        self._dead_relus(record["epoch"], notes)
        self._tiny_steps(history.epochs, notes)

    def _tiny_steps(self, epochs: list, notes: list) -> None:
        """Steps far too small for the weights, told apart from a minimum reached: the loss is
        neither small nor halved since the first epoch."""
        ratios = [v for v in (epochs[-1].get("update_ratio") or {}).values()
                  if v is not None and math.isfinite(v)]
        if len(epochs) < 3 or not ratios:
            return
        first, last = epochs[0]["train_loss"], epochs[-1]["train_loss"]
        median = float(np.median(ratios))
        if median > 0 and stepped_too_little(median, first, last):  # lr 0: the plateau note
            self._note(notes, "lr_too_small", tiny_steps(
                median, f"at epoch {epochs[-1]['epoch']}", first, last))

    def _unused(self, notes: list) -> None:
        for name in self.names:
            if name not in self.with_grad:
                self._note(notes, f"unused {name}", unused_parameter(name, "in the first epoch"))

    def _plateau(self, epochs: list, notes: list, monitor: str) -> None:
        losses = [r[monitor] for r in epochs]
        best, since = math.inf, 0
        for i, loss in enumerate(losses):
            if loss < best * (1 - PLATEAU_TOLERANCE) or best == math.inf:
                best, since = loss, i
        if len(losses) - 1 - since >= PLATEAU_PATIENCE:
            start = epochs[since]["epoch"]
            self._note(notes, f"plateau {start}", (
                f"The {monitor.replace('_', ' ')} has not improved by more than "
                f"{PLATEAU_TOLERANCE:.0e} (relative) for {PLATEAU_PATIENCE} epochs since epoch "
                f"{start} (best {best:.4g}): training has plateaued, so the learning rate may be "
                "too low, or the model has converged and training can stop."))

    def _layers(self, record: dict, notes: list) -> None:
        norms = {k: v for k, v in record["layer_grad_norms"].items() if math.isfinite(v)}
        if len(norms) < 2:
            return
        where = f"at epoch {record['epoch']}"
        for name, norm in norms.items():
            others = [v for k, v in norms.items() if k != name]
            sentence = vanishing(name, norm, max(others), where)
            if sentence is not None:
                self._note(notes, f"vanishing {name}", sentence)
                continue
            sentence = exploding(name, norm, float(np.median(others)), where)
            if sentence is not None:
                self._note(notes, f"exploding {name}", sentence)

    def _dead_relus(self, epoch: int, notes: list) -> None:
        for layer, output in self.relus.items():
            if output is None:
                continue
            values = output.numpy().reshape(len(output), -1)
            share = float(np.mean(np.all(values <= 0, axis=0)))
            if share > DEAD_SHARE:
                self._note(notes, f"dead {layer}", (
                    f"{share:.0%} of the units of ReLU layer {layer!r} output zero for every "
                    f"sample of epoch {epoch}'s last batch: they are dead and pass no gradient; "
                    "lower the learning rate, start with smaller or positive biases, or use "
                    "LeakyReLU."))

    def after_training(self, epochs: list, total: int, min_lr: float, notes: list) -> None:
        """Note a learning rate that reached its floor before half the planned epochs."""
        if min_lr <= 0 or not epochs:
            return
        floor = [r["epoch"] for r in epochs if r["lr"] <= min_lr * (1 + 1e-9)]
        if floor and floor[0] <= total / 2 and len(floor) > 1:
            self._note(notes, "floor", (
                f"The learning rate reached its floor min_lr={min_lr:g} at epoch {floor[0]} of "
                f"{total} and stayed there: the decay is too fast for this run, so use "
                "lr_decay closer to 1 (or a lower min_lr) if the loss was still falling."))
