"""What the lab accepts: every input has a limit, and a request past it gets a 4xx JSON answer
that names the field, the limit and what was given."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """The bounds of every input; one instance, :data:`LIMITS`, serves the app."""

    expression_chars: int = 500
    nodes: int = 300
    body_bytes: int = 256 * 1024  # any JSON request
    upload_bytes: int = 64 * 1024  # a CSV of points
    points: int = 500
    epochs: int = 5000
    epochs_per_second: float = 500.0
    steps_per_request: int = 1000
    workers: int = 4
    graph_sessions: int = 200
    train_sessions: int = 8
    thread_runs: int = 4  # thread-pool runs at the same time
    magnitude: float = 1e12  # any number typed into a form (the seed caps gradients at 1e10)
    idle_seconds: float = 600.0  # a session nobody touched for this long is closed


LIMITS = Limits()


class LabError(Exception):
    """A request the lab refuses: ``status`` (a 4xx code) and a message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def bad(message: str) -> LabError:
    return LabError(400, message)


def number(data: dict, key: str, default=None, *, low=None, high=None, positive=False) -> float:
    """``data[key]`` as a finite float within the bounds (``default`` when absent)."""
    value = data.get(key, default)
    if value is None:
        raise bad(f"{key}: a number is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise bad(f"{key}: expected a number, got {type(value).__name__}")
    try:
        value = float(value)
    except ValueError:
        raise bad(f"{key}: {value!r} is not a number") from None
    if not math.isfinite(value) or abs(value) > LIMITS.magnitude:
        raise bad(f"{key}: {value!r} is not a finite number of magnitude at most "
                  f"{LIMITS.magnitude:g}")
    if positive and value <= 0:
        raise bad(f"{key}: must be positive, got {value:g}")
    if low is not None and value < low:
        raise bad(f"{key}: must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise bad(f"{key}: must be at most {high:g}, got {value:g}")
    return value


def integer(data: dict, key: str, default: int, *, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{key}: expected a whole number, got {value!r}")
    if not low <= value <= high:
        raise bad(f"{key}: must be between {low} and {high}, got {value}")
    return value


def choice(data: dict, key: str, default: str, allowed) -> str:
    value = data.get(key, default)
    if value not in allowed:
        raise bad(f"{key}: {value!r} is not one of {', '.join(map(str, allowed))}")
    return value


def text(data: dict, key: str, *, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise bad(f"{key}: a string is required")
    if len(value) > limit:
        raise LabError(413, f"{key}: {len(value)} characters, the limit is {limit}")
    return value
