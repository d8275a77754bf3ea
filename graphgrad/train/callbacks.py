"""Hooks into ``fit``: ``Callback`` (the base class) and ``EarlyStopping``.

A callback sees the running ``Trainer`` (``trainer.model``, ``trainer.optimizer``,
``trainer.history``, ``trainer.epoch`` ...) and each epoch's record. Callbacks with state
return it from ``state_dict`` so that checkpoints and resumed runs keep it.
"""

from __future__ import annotations

import math

import numpy as np

from ..creation import from_numpy


class Callback:
    """Override any of the hooks; ``on_epoch_end`` returning True stops training.

    >>> class Print(Callback):
    ...     def on_epoch_end(self, trainer, record):
    ...         print(record["epoch"], round(record["train_loss"], 3))
    >>> import graphgrad as gg
    >>> from graphgrad.train import fit
    >>> model = gg.nn.Linear(1, 1)
    >>> x = gg.linspace(-1, 1, 8).reshape(8, 1)
    >>> _ = fit(model, gg.nn.MSELoss(), (x, 2 * x), epochs=2, callbacks=[Print()],
    ...         progress=False, diagnose=False)  # doctest: +ELLIPSIS
    1 ...
    2 ...
    """

    def on_train_begin(self, trainer) -> None:
        """Called once before the first epoch (after a resume has restored the state)."""

    def on_step_end(self, trainer) -> None:
        """Called after each optimizer step (``trainer.step`` counts them)."""

    def on_epoch_end(self, trainer, record: dict) -> bool | None:
        """Called after each epoch with its record; return True to stop training."""

    def on_train_end(self, trainer) -> None:
        """Called once when training ends, however it ends (except by an exception)."""

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback (nothing by default)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`'s output."""


class EarlyStopping(Callback):
    """Stop once ``monitor`` (a key of the epoch record) has not improved by more than
    ``min_delta`` for ``patience`` epochs; ``restore_best`` then puts back the parameters of
    the best epoch. ``monitor="val_loss"`` falls back to ``train_loss`` without validation data.

    >>> import graphgrad as gg
    >>> from graphgrad.train import fit
    >>> model = gg.nn.Linear(1, 1)
    >>> x = gg.linspace(-1, 1, 8).reshape(8, 1)
    >>> h = fit(model, gg.nn.MSELoss(), (x, x), lr=0.0, epochs=50, progress=False,
    ...         callbacks=[EarlyStopping(patience=3)], diagnose=False)
    >>> len(h.epochs), h.stopped_early
    (4, True)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 restore_best: bool = False) -> None:
        if patience < 0 or min_delta < 0:
            raise ValueError(f"EarlyStopping: patience ({patience}) and min_delta ({min_delta}) "
                             "must be >= 0")
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.best, self.best_epoch, self.wait = math.inf, None, 0
        self.best_state: dict | None = None

    def _value(self, record: dict):
        value = record.get(self.monitor)
        if value is None and self.monitor == "val_loss":
            value = record.get("train_loss")
        if value is None:
            raise KeyError(f"EarlyStopping: the epoch record has no {self.monitor!r}; "
                           f"it has {', '.join(record)}")
        return value

    def on_epoch_end(self, trainer, record: dict) -> bool:
        value = self._value(record)
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            if self.restore_best:
                self.best_state = {k: v.copy() for k, v in trainer.parameter_arrays().items()}
            return False
        self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, trainer) -> None:
        if self.restore_best and self.best_state is not None:
            for name, array in trainer.parameter_arrays().items():
                array[...] = self.best_state[name]

    def state_dict(self) -> dict:
        # as tensors, which gg.save can store
        best_state = None if self.best_state is None else {
            k: from_numpy(np.array(v)) for k, v in self.best_state.items()}
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_state": best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        saved = state["best_state"]
        self.best_state = None if saved is None else {k: v.numpy() for k, v in saved.items()}
