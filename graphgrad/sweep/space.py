"""The search space of a sweep: what each trial may set, from Python or from a TOML file.

A space maps names to parameters: :class:`Float` (linear or log), :class:`Int` (with a step),
:class:`Categorical` and fixed values (anything else, given as is to every trial). In TOML::

    lr = {low = 1e-4, high = 1.0, log = true}      # a float drawn on a log scale
    lr_decay = {low = 0.99, high = 1.0}            # a float, linear
    batch_size = {low = 16, high = 128, step = 16} # an int (both bounds are ints)
    optimizer = {choices = ["sgd", "adam"]}        # one of these
    epochs = 300                                   # fixed

Every problem is a :class:`SpaceError` that names the source, the key and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

# The settings of train.fit that a task's space may sweep (the rest are the sweep's business).
FIT_SETTINGS = {"lr": float, "lr_decay": float, "min_lr": float, "max_grad": float,
                "max_grad_norm": float, "momentum": float, "weight_decay": float,
                "epochs": int, "batch_size": int, "optimizer": str, "scheduler": str}
RANGE_KEYS = ("low", "high", "log", "step")


class SpaceError(ValueError):
    """A search space that cannot be swept; the message names the source and the key."""


@dataclass(frozen=True)
class Float:
    """A float in ``[low, high]``, drawn on a log scale when ``log``, in steps of ``step``.

    >>> Float(1e-4, 1.0, log=True).to_dict()
    {'low': 0.0001, 'high': 1.0, 'log': True}
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def suggest(self, trial, name: str):
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def grid(self) -> list:
        count = int(round((self.high - self.low) / self.step)) + 1
        return [self.low + i * self.step for i in range(count)]

    def to_dict(self) -> dict:
        data = {"low": self.low, "high": self.high, "log": self.log}
        return data if self.step is None else {**data, "step": self.step}


@dataclass(frozen=True)
class Int:
    """An int in ``[low, high]`` in steps of ``step`` (or on a log scale).

    >>> Int(16, 64, step=16).grid()
    [16, 32, 48, 64]
    """

    low: int
    high: int
    log: bool = False
    step: int = 1

    def suggest(self, trial, name: str):
        return trial.suggest_int(name, self.low, self.high, log=self.log, step=self.step)

    def grid(self) -> list:
        return list(range(self.low, self.high + 1, self.step))

    def to_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass(frozen=True)
class Categorical:
    """One of ``choices`` (numbers, strings or booleans).

    >>> Categorical(("sgd", "adam")).grid()
    ['sgd', 'adam']
    """

    choices: tuple

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, list(self.choices))

    def grid(self) -> list:
        return list(self.choices)

    def to_dict(self) -> dict:
        return {"choices": list(self.choices)}


class Space:
    """Named parameters plus fixed values; ``suggest(trial)`` gives one trial's settings.

    >>> space = Space({"lr": Float(1e-3, 0.3, log=True), "epochs": 100})
    >>> space.swept, space.fixed
    (['lr'], {'epochs': 100})
    >>> Space.from_dict(space.to_dict()).to_dict() == space.to_dict()
    True
    """

    def __init__(self, params: dict, source: str = "the space") -> None:
        self.params = {name: _coerce(name, value, source) for name, value in params.items()}
        self.source = source

    @property
    def swept(self) -> list:
        return [n for n, p in self.params.items() if isinstance(p, (Float, Int, Categorical))]

    @property
    def fixed(self) -> dict:
        return {n: p for n, p in self.params.items() if n not in self.swept}

    def suggest(self, trial) -> dict:
        """Draw every swept parameter from ``trial`` (an Optuna trial); add the fixed ones."""
        drawn = {name: self.params[name].suggest(trial, name) for name in self.swept}
        return {**self.fixed, **drawn}

    def grid(self) -> dict:
        """Every swept parameter's finite list of values, for a grid search."""
        for name in self.swept:
            param = self.params[name]
            if isinstance(param, Float) and param.step is None:
                raise SpaceError(f"{self.source}: key {name!r}: a grid search needs a step or "
                                 f"choices for every float, e.g. {{low = {param.low:g}, "
                                 f"high = {param.high:g}, step = ...}}")
        return {name: self.params[name].grid() for name in self.swept}

    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.grid().values())

    def check_keys(self, allowed) -> None:
        """Refuse any name outside ``allowed`` (a dict of name -> type), and wrong types."""
        for name, param in self.params.items():
            if name not in allowed:
                raise SpaceError(f"{self.source}: unknown key {name!r}; allowed: "
                                 f"{', '.join(sorted(allowed))}")
            kind = allowed[name]
            values = param.grid() if isinstance(param, Categorical) else (
                [param] if name in self.fixed else [param.low, param.high])
            if kind is int and isinstance(param, Float):
                raise SpaceError(f"{self.source}: key {name!r} is a whole number: give int "
                                 f"bounds, e.g. {{low = 10, high = 100}}")
            for value in values:
                if not _is(value, kind):
                    raise SpaceError(f"{self.source}: key {name!r} must be a {kind.__name__}, "
                                     f"got {value!r}")

    def to_dict(self) -> dict:
        """Plain data (what the study keeps, so the report and a resume can read it)."""
        return {name: (p.to_dict() if name in self.swept else {"value": p})
                for name, p in self.params.items()}

    @classmethod
    def from_dict(cls, data: dict, source: str = "the space") -> Space:
        """The inverse of :meth:`to_dict`; also reads the TOML form (bare fixed values)."""
        return cls(dict(data), source)


def load_space(path, allowed: dict | None = None) -> Space:
    """Read a space from a TOML file; ``allowed`` (name -> type) restricts its keys.

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "space.toml")
    >>> _ = open(path, "w").write("lr = {low = 1e-4, high = 1.0, log = true}\\n")
    >>> load_space(path).params["lr"]
    Float(low=0.0001, high=1.0, log=True, step=None)
    """
    path = Path(path)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise SpaceError(f"{path}: reading TOML needs Python 3.11+ or 'pip install tomli'") \
                from None
    if not path.is_file():
        raise SpaceError(f"space file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpaceError(f"{path}: not valid TOML: {exc}") from None
    if not raw:
        raise SpaceError(f"{path}: the space is empty; give e.g. lr = {{low = 1e-4, high = 1.0, "
                         f"log = true}}")
    space = Space(raw, str(path))
    if allowed is not None:
        space.check_keys(allowed)
    return space


def _coerce(name: str, value, source: str):
    """A parameter object from its TOML/dict form; fixed values stay as they are."""
    where = f"{source}: key {name!r}"
    if isinstance(value, (Float, Int, Categorical)):
        return value
    if not isinstance(value, dict):
        return value
    keys = set(value)
    if keys == {"value"}:
        return value["value"]
    if "choices" in keys:
        if keys != {"choices"}:
            others = ", ".join(sorted(keys - {"choices"}))
            raise SpaceError(f"{where}: choices cannot be mixed with {others}; allowed: either "
                             "choices or low, high, log, step")
        choices = value["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: choices must be a non-empty list, got {choices!r}")
        if not all(isinstance(c, (int, float, str, bool)) for c in choices):
            raise SpaceError(f"{where}: choices must be numbers, strings or booleans")
        return Categorical(tuple(choices))
    unknown = keys - set(RANGE_KEYS)
    if unknown:
        raise SpaceError(f"{where}: unknown field {sorted(unknown)[0]!r}; allowed: "
                         f"{', '.join(RANGE_KEYS)}, or choices, or value")
    if not {"low", "high"} <= keys:
        raise SpaceError(f"{where}: a range needs both low and high, e.g. "
                         f"{{low = 1e-4, high = 1.0, log = true}}")
    return _range(where, value["low"], value["high"], value.get("log", False), value.get("step"))


def _range(where: str, low, high, log, step):
    for field, number in (("low", low), ("high", high), ("step", step)):
        if number is not None and not _is(number, float):
            raise SpaceError(f"{where}: {field} must be a number, got {number!r}")
        if number is not None and not math.isfinite(number):
            raise SpaceError(f"{where}: {field} must be finite, got {number!r}")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, got {log!r}")
    if low > high:
        raise SpaceError(f"{where}: low ({low:g}) > high ({high:g}); allowed: low <= high")
    if log and low <= 0:
        raise SpaceError(f"{where}: log = true needs low > 0, got low = {low:g}")
    if step is not None and step <= 0:
        raise SpaceError(f"{where}: step must be > 0, got {step:g}")
    if log and step is not None:
        raise SpaceError(f"{where}: give log or step, not both")
    whole = all(isinstance(v, int) for v in (low, high) + ((step,) if step is not None else ()))
    if whole:
        return Int(low, high, log=log, step=step or 1)
    return Float(float(low), float(high), log=log, step=None if step is None else float(step))


def _is(value, kind) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


# The seed-000 trap in one sweep: a high rate diverges unless the gradients are capped hard.
DEMO_SPACES = {
    "polynomial": {
        "lr": Float(1e-3, 0.3, log=True),
        "max_grad": Float(1.0, 1e10, log=True),
        "lr_decay": Float(0.99, 1.0),
        "min_lr": 1e-3,
        "epochs": 300,
    },
}
