"""The training tasks the ``graphgrad`` command knows: the seeds' problems and a few classics.

A task is a model, its loss, its data and the settings it trains well with. ``graphgrad fit TASK``
takes one of ``TASKS`` by name, or a Python file that defines the same things under these names:

    model       an nn.Module, or a Graph whose first output is the loss
    loss_fn     a loss module or function(output, target) (None for a Graph)
    train_data  (features, targets), a Dataset or a DataLoader (a dict of inputs for a Graph)
    val_data    optional, same form
    metric      optional: "accuracy" or a function(output, target) -> float
    config      optional: a dict of default settings (lr, epochs, optimizer, ...)
"""

from __future__ import annotations

import difflib
import runpy
from dataclasses import dataclass, field
from pathlib import Path

from . import nn
from .creation import Generator, manual_seed, tensor
from .data import TensorDataset, random_split
from .data import datasets as builtin
from .graph import examples

TASKS = ("polynomial", "linear", "moons", "spirals", "digits")


@dataclass
class Task:
    name: str
    model: object
    loss_fn: object
    train_data: object
    val_data: object = None
    metric: object = None
    config: dict = field(default_factory=dict)


class TaskError(ValueError):
    """An unknown task name or a task file that lacks what a task needs."""


def get_task(name: str, seed: int = 0) -> Task:
    """The task called ``name`` (one of TASKS) or defined by the Python file at ``name``.

    >>> get_task("linear").config["optimizer"]
    'sgd'
    """
    if name.endswith(".py"):
        return _task_from_file(Path(name))
    builders = {"polynomial": _polynomial, "linear": _linear, "moons": _moons,
                "spirals": _spirals, "digits": _digits}
    if name not in builders:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise TaskError(f"unknown task {name!r}; {hint}choose one of {', '.join(TASKS)} or a "
                        ".py file")
    manual_seed(seed)  # the same seed, the same initial weights
    return builders[name](seed)


def _polynomial(seed: int) -> Task:
    """Seed 000 with its good settings; the bad ones are lr=0.1, lr_decay=1, max_grad=1e10."""
    data = examples.polynomial_data(seed=seed)
    return Task("polynomial", examples.polynomial(), None, data, config=dict(
        optimizer="sgd", lr=0.01, lr_decay=0.999, min_lr=1e-3, max_grad=1000.0, epochs=300,
        batch_size=None))


def _linear(seed: int) -> Task:
    """Seed 001: recover f(x) = 3x + 7 from noisy samples, starting at w = -2, b = 15."""
    model = nn.Linear(1, 1)
    model.load_state_dict({"weight": tensor([[-2.0]]), "bias": tensor([15.0])})
    return Task("linear", model, nn.MSELoss(), builtin.line(seed=seed), config=dict(
        optimizer="sgd", lr=0.1, epochs=100, batch_size=None))


def _classifier(sizes: tuple, activation=nn.Tanh) -> nn.Module:
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), activation()]
    return nn.Sequential(*layers[:-1])


def _split(dataset: TensorDataset, seed: int):
    """80% for training, 20% for validation."""
    return random_split(dataset, [0.8, 0.2], generator=Generator().manual_seed(seed))


def _moons(seed: int) -> Task:
    train, val = _split(builtin.two_moons(n=400, seed=seed), seed)
    return Task("moons", _classifier((2, 16, 16, 2)), nn.CrossEntropyLoss(), train, val,
                "accuracy", dict(optimizer="adam", lr=0.01, epochs=60, batch_size=32))


def _spirals(seed: int) -> Task:
    train, val = _split(builtin.spirals(n=600, seed=seed), seed)
    return Task("spirals", _classifier((2, 64, 64, 3), nn.ReLU), nn.CrossEntropyLoss(), train,
                val, "accuracy", dict(optimizer="adam", lr=0.01, epochs=150, batch_size=32))


def _digits(seed: int) -> Task:
    train, test = builtin.digits(seed=seed)
    (x_train, y_train), (x_test, y_test) = train.tensors, test.tensors
    mean, spread = x_train.mean(dim=0), x_train.std(dim=0) + 0.1  # some pixels are always 0
    return Task("digits", _classifier((64, 64, 10), nn.ReLU), nn.CrossEntropyLoss(),
                TensorDataset((x_train - mean) / spread, y_train),
                TensorDataset((x_test - mean) / spread, y_test), "accuracy",
                dict(optimizer="adamw", lr=3e-3, weight_decay=1e-2, scheduler="cosine",
                     epochs=40, batch_size=32))


def _task_from_file(path: Path) -> Task:
    if not path.is_file():
        raise TaskError(f"task file {path} does not exist")
    names = runpy.run_path(str(path))  # the user's own code, named on the command line
    missing = [n for n in ("model", "train_data") if n not in names]
    if missing:
        raise TaskError(f"task file {path} must define {', '.join(missing)} (and loss_fn; "
                        f"optionally val_data, metric, config)")
    loss_fn = names.get("loss_fn", names.get("loss"))
    config = names.get("config", {})
    if not isinstance(config, dict):
        raise TaskError(f"task file {path}: config must be a dict, got {type(config).__name__}")
    return Task(path.stem, names["model"], loss_fn, names["train_data"], names.get("val_data"),
                names.get("metric"), dict(config))
