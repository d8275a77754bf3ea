"""Checkpoints of a training run, written atomically with ``graphgrad.save``: everything that
decides the rest of the run (parameters, optimizer and scheduler state, both random generators,
the learning-rate knobs, the epoch, the History and callback state), so that a resumed run
continues bit for bit where the saved one stopped."""

from __future__ import annotations

import os

from .. import creation
from ..io import load, save
from .history import History

FILENAME = "checkpoint.safetensors"
FORMAT = "graphgrad.train/1"


def checkpoint_path(checkpoint_dir) -> str:
    """Where ``fit`` writes its checkpoint in ``checkpoint_dir``."""
    return os.path.join(os.fspath(checkpoint_dir), FILENAME)


def load_checkpoint(path) -> dict:
    """The dict a checkpoint holds: ``format, epoch, partial, model, optimizer, scheduler,
    generator, default_generator, knobs, history, callbacks, diagnostics``.

    ``epoch`` counts the completed epochs; ``partial`` is True when the run was interrupted in
    the middle of the next one (its parameters are then part way through it).

    >>> import os, tempfile
    >>> import graphgrad as gg
    >>> from graphgrad.train import fit
    >>> folder = tempfile.TemporaryDirectory()
    >>> x = gg.linspace(-1, 1, 8).reshape(8, 1)
    >>> _ = fit(gg.nn.Linear(1, 1), gg.nn.MSELoss(), (x, x), epochs=2, progress=False,
    ...         checkpoint_dir=folder.name)
    >>> state = load_checkpoint(os.path.join(folder.name, "checkpoint.safetensors"))
    >>> state["epoch"], sorted(state["model"])
    (2, ['bias', 'weight'])
    >>> folder.cleanup()
    """
    state = load(path)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a graphgrad.train checkpoint (format {FORMAT})")
    return state


def write_checkpoint(trainer, path: str, *, partial: bool = False) -> str:
    """Save ``trainer``'s whole state to ``path`` (atomically) and return the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    scheduler = trainer.scheduler
    save({
        "format": FORMAT,
        "epoch": trainer.completed,
        "partial": partial,
        "model": trainer.task.state(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "generator": trainer.generator.get_state(),
        "default_generator": creation.default_generator.get_state(),
        "knobs": {"lrs": [g["lr"] for g in trainer.optimizer.param_groups],
                  "lr_decay": trainer.lr_decay, "min_lr": trainer.min_lr},
        "history": trainer.history.to_dict(),
        "callbacks": [cb.state_dict() for cb in trainer.callbacks],
        "diagnostics": None if trainer.diagnostics is None else trainer.diagnostics.state_dict(),
    }, path)
    return path


def restore(trainer, state: dict) -> None:
    """Put ``state`` (from :func:`load_checkpoint`) back into ``trainer``."""
    trainer.task.load_state(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    if trainer.scheduler is not None and state["scheduler"] is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    for group, lr in zip(trainer.optimizer.param_groups, state["knobs"]["lrs"]):
        group["lr"] = lr
    trainer.generator.set_state(state["generator"])
    creation.default_generator.set_state(state["default_generator"])
    trainer.history = History.from_dict(state["history"])
    trainer.history.stopped_early = False
    for callback, saved in zip(trainer.callbacks, state["callbacks"]):
        callback.load_state_dict(saved)
    if trainer.diagnostics is not None and state["diagnostics"] is not None:
        trainer.diagnostics.load_state_dict(state["diagnostics"])
    trainer.completed = state["epoch"]
    epochs = trainer.history.epochs
    if epochs:  # what a later verdict compares against (epoch means stand in for steps)
        trainer.first_grad_norm = epochs[0]["grad_norm"]
        trainer.last_grad_norm = epochs[-1]["grad_norm"]
