"""Checkpoints of a training run, written atomically with ``graphgrad.save`` (safetensors and
JSON, never pickle): everything that decides the rest of the run, so that a resumed run
continues bit for bit where the saved one stopped.

A checkpoint is taken at a step boundary: at the end of an epoch (every ``checkpoint_every``
epochs), or between two steps when Ctrl-C asked the run to stop. It holds the parameters, the
optimizer's and the scheduler's state, both random generators (the shuffling one and the global
one that dropout draws from), the epoch, the step, the running epoch's order of batches and how
far it got, the History, the callbacks' and the diagnostics' state, and the settings the run was
made with, which a resume compares with its own (:func:`reconcile`).
"""

from __future__ import annotations

import os

from .. import creation
from ..io import load, save
from ..optim import lr_scheduler
from ._order import Progress
from .history import History

FILENAME = "checkpoint.safetensors"
FORMAT = "graphgrad.train/2"
# what fit's named schedulers derive from ``epochs`` (see _build.make_scheduler); a resume for
# another number of epochs recomputes these and keeps the rest of the scheduler's state
_SIZED_BY_EPOCHS = {
    lr_scheduler.StepLR: ("step_size",),
    lr_scheduler.CosineAnnealingLR: ("T_max",),
    lr_scheduler.ExponentialLR: ("gamma",),
    lr_scheduler.OneCycleLR: ("total_steps", "_schedule_phases"),
    lr_scheduler.ReduceLROnPlateau: ("patience",),
}
# settings a resume takes from the checkpoint rather than from its arguments
_KEPT = ("optimizer", "lr", "momentum", "weight_decay", "scheduler", "batch_size", "shuffle",
         "lr_decay", "min_lr", "max_grad", "max_grad_norm")


def checkpoint_path(checkpoint_dir) -> str:
    """Where ``fit`` writes its checkpoint in ``checkpoint_dir``."""
    return os.path.join(os.fspath(checkpoint_dir), FILENAME)


def load_checkpoint(path) -> dict:
    """The dict a checkpoint holds: ``format, epoch, step, position, model, optimizer,
    scheduler, generator, default_generator, settings, norms, history, callbacks,
    diagnostics``.

    ``epoch`` counts the completed epochs and ``step`` the completed optimizer steps;
    ``position`` is None at the end of an epoch, else how far the next epoch had got: its
    ``order`` of batches (sample indices), the ``position`` (steps done) and the sums its record
    is made of.

    >>> import os, tempfile
    >>> import graphgrad as gg
    >>> from graphgrad.train import fit
    >>> folder = tempfile.TemporaryDirectory()
    >>> x = gg.linspace(-1, 1, 8).reshape(8, 1)
    >>> _ = fit(gg.nn.Linear(1, 1), gg.nn.MSELoss(), (x, x), epochs=2, batch_size=4,
    ...         progress=False, checkpoint_dir=folder.name)
    >>> state = load_checkpoint(os.path.join(folder.name, "checkpoint.safetensors"))
    >>> state["epoch"], state["step"], state["position"], sorted(state["model"])
    (2, 4, None, ['bias', 'weight'])
    >>> folder.cleanup()
    """
    state = load(path)
    found = state.get("format") if isinstance(state, dict) else None
    if found != FORMAT:
        older = " (written by an older graphgrad, whose Ctrl-C checkpoints could hold part of an " \
            "epoch without its position: start a new run)" if found == "graphgrad.train/1" else ""
        raise ValueError(f"{path} is not a {FORMAT} training checkpoint (format {found!r}){older}")
    return state


def write_checkpoint(trainer, path: str) -> str | None:
    """Save ``trainer``'s whole state to ``path`` atomically (a reader, or a run killed at any
    instant, finds the old complete file or the new one) and return the path; None, writing
    nothing, when the running epoch's order cannot be stored (a sampler yielding non-integers).
    """
    position = None
    if trainer.in_epoch is not None:
        position = trainer.in_epoch.state_dict()
        if position is None:
            return None
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scheduler = trainer.scheduler
    save({
        "format": FORMAT,
        "epoch": trainer.completed,
        "step": trainer.step,
        "position": position,
        "model": trainer.task.state(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generator": trainer.generator.get_state(),
        "default_generator": creation.default_generator.get_state(),
        "settings": trainer.settings,
        "norms": {"first_grad": trainer.first_grad_norm, "last_grad": trainer.last_grad_norm,
                  "first_param": trainer.first_param_norm},  # what verdicts compare with
        "history": trainer.history.to_dict(),
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
        "diagnostics": None if trainer.diagnostics is None else trainer.diagnostics.state_dict(),
    }, path)
    return path


def reconcile(state: dict, given: dict, *, own_loader: bool) -> tuple[dict, list]:
    """The settings a resumed ``fit`` runs with, and a warning for each one that differs.

    A resume continues the saved run: ``optimizer``, ``lr``, ``momentum``, ``weight_decay``,
    ``scheduler``, ``batch_size``, ``shuffle``, ``lr_decay``, ``min_lr``, ``max_grad`` and
    ``max_grad_norm`` are the checkpoint's (given as objects, the optimizer and scheduler are
    checked after they are built, by :func:`check_resumed`); ``epochs`` is the new total.
    ``own_loader`` is True when ``fit`` was given a DataLoader (whose batches are its own).
    """
    saved, settings, warnings = state["settings"], dict(given), []
    for key in _KEPT:
        if not _compared(key, given, saved, own_loader):
            continue
        value, old = given[key], saved[key]
        value = value.lower() if isinstance(value, str) else value
        if value != old:
            settings[key] = old
            warnings.append(
                f"resume: {key}={value!r} differs from the checkpoint's {key}={old!r}; a resumed "
                f"run continues the saved one, so it keeps {old!r} (to change {key}, start a new "
                "run, e.g. from the saved weights)")
    return settings, warnings


def _compared(key: str, given: dict, saved: dict, own_loader: bool) -> bool:
    """Whether ``key`` of fit's arguments is the checkpoint's to decide (objects are compared
    by class once built; an optimizer object keeps its own hyperparameters, a DataLoader its own
    batches)."""
    if key in ("optimizer", "scheduler"):
        made_by_fit = saved[key] is not None or saved[f"{key}_class"] is None
        return made_by_fit and (given[key] is None or isinstance(given[key], str))
    if key in ("lr", "momentum", "weight_decay"):
        return isinstance(given["optimizer"], str) and saved["optimizer"] is not None
    return not (key in ("batch_size", "shuffle") and own_loader)


def check_resumed(trainer, state: dict) -> list:
    """Refuse a resume that cannot continue the checkpoint's run (another kind of optimizer or
    scheduler, other data part way through an epoch); return warnings for the changes it can
    live with (another number of epochs, other data from the next epoch on)."""
    saved, now, done = state["settings"], trainer.settings, state["epoch"]
    for key, what in (("optimizer_class", "optimizer"), ("scheduler_class", "scheduler")):
        if saved[key] != now[key]:
            raise ValueError(
                f"resume: the checkpoint's {what} is {saved[key]}, this fit's is {now[key]}: its "
                f"state cannot carry over; resume with the same {what}, or start a new run")
    warnings = []
    data = [(saved[k], now[k]) for k in ("steps_per_epoch", "samples")]
    if any(old != new for old, new in data):
        change = (f"the data now gives {now['steps_per_epoch']} batches of {now['samples']} "
                  f"samples per epoch, the checkpoint's run {saved['steps_per_epoch']} of "
                  f"{saved['samples']}")
        if state["position"] is not None:
            raise ValueError(f"resume: {change}, and it stopped part way through epoch "
                             f"{done + 1}; resume with the same data")
        warnings.append(f"resume: {change}; epochs {done + 1} on use the new data")
    if now["epochs"] != saved["epochs"] and trainer.scheduler is not None:
        warnings.append(_schedule_warning(trainer, state))
    if now["epochs"] <= done:
        warnings.append(f"resume: the checkpoint holds {done} completed epochs, and epochs="
                        f"{now['epochs']} (the total, counting them) leaves nothing to train")
    return warnings


def _schedule_warning(trainer, state: dict) -> str:
    saved, done = state["settings"], state["epoch"]
    old, new = saved["epochs"], trainer.settings["epochs"]
    head = (f"resume: the checkpoint was made for {old} epochs with the "
            f"{_scheduler_name(saved)} schedule; resuming for {new} epochs restarts nothing: ")
    sized = _sized(trainer)
    if not sized:
        return head + (f"the scheduler you made continues after epoch {done} with the state it "
                       "had then (sized as it was for the first run)")
    values = ", ".join(f"{key}={getattr(trainer.scheduler, key)!r}" for key in sized
                       if not key.startswith("_"))
    lr = state["optimizer"]["param_groups"][0]["lr"]
    text = (f"the schedule continues after epoch {done}, at the learning rate it had reached "
            f"({lr:.4g}), with {values} recomputed for {new} epochs")
    if isinstance(trainer.scheduler, lr_scheduler.OneCycleLR):  # a closed form of the step
        text += f"; from epoch {done + 2} the rate follows the stretched cycle"
    return head + text


def _scheduler_name(settings: dict) -> str:
    return repr(settings["scheduler"]) if settings["scheduler"] else settings["scheduler_class"]


def _sized(trainer) -> tuple:
    """The scheduler attributes fit derived from ``epochs`` (none for a scheduler you made)."""
    if trainer.settings["scheduler"] is None:
        return ()
    return _SIZED_BY_EPOCHS.get(type(trainer.scheduler), ())


def restore(trainer, state: dict, path: str) -> None:
    """Put ``state`` (from :func:`load_checkpoint`, at ``path``) back into ``trainer``."""
    trainer.task.load_state(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])  # with its hyperparameters and rates
    if trainer.scheduler is not None:
        scheduler = dict(state["scheduler"])
        for key in _sized(trainer):  # as built for this run's epochs
            scheduler[key] = getattr(trainer.scheduler, key)
        trainer.scheduler.load_state_dict(scheduler)
    trainer.generator.set_state(state["generator"])
    creation.default_generator.set_state(state["default_generator"])
    trainer.history = History.from_dict(state["history"])
    trainer.history.stopped_early = False
    for callback, saved in zip(trainer.callbacks, state["callbacks"]):
        callback.load_state_dict(saved)
    if trainer.diagnostics is not None and state["diagnostics"] is not None:
        trainer.diagnostics.load_state_dict(state["diagnostics"])
    trainer.completed, trainer.step = state["epoch"], state["step"]
    norms = state["norms"]
    trainer.first_grad_norm, trainer.last_grad_norm = norms["first_grad"], norms["last_grad"]
    trainer.first_param_norm = norms["first_param"]
    position = state["position"]
    trainer.in_epoch = None if position is None else Progress.from_state(position)
    trainer.saved = (path, state["epoch"], state["step"],
                     0 if position is None else position["position"])
