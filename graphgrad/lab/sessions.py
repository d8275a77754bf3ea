"""Sessions the lab keeps between requests (a graph being stepped, a training run), bounded in
number and closed after :attr:`Limits.idle_seconds` without a request."""

from __future__ import annotations

import math
import secrets
import threading
import time

import numpy as np

from .limits import LIMITS, LabError


class Session:
    """Base of what a :class:`Sessions` holds: a lock for its requests and a last-seen time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_seen = time.monotonic()

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def close(self) -> None:
        """Release what the session holds (a training thread stops)."""


class Sessions:
    """At most ``limit`` live sessions of one kind, by random id."""

    def __init__(self, kind: str, limit: int) -> None:
        self.kind, self.limit = kind, limit
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()

    def check_room(self) -> None:
        """Raise 429 when no other session fits (checked before building an expensive one)."""
        with self._lock:
            self._check_room()

    def _check_room(self) -> None:
        self._reap()
        if len(self._items) >= self.limit:
            raise LabError(429, f"too many {self.kind} sessions open (limit {self.limit}); "
                           "close one (reset) or try again later")

    def add(self, session: Session) -> str:
        with self._lock:
            self._check_room()
            key = secrets.token_hex(8)
            self._items[key] = session
            return key

    def get(self, key: str) -> Session:
        with self._lock:
            session = self._items.get(key)
        if session is None:
            raise LabError(404, f"no {self.kind} session {key!r} (closed, expired or never "
                           "opened); start a new one")
        session.touch()
        return session

    def remove(self, key: str) -> None:
        with self._lock:
            session = self._items.pop(key, None)
        if session is None:
            raise LabError(404, f"no {self.kind} session {key!r}")
        session.close()

    def close_all(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for session in items:
            session.close()

    def __len__(self) -> int:
        return len(self._items)

    def _reap(self) -> None:
        now = time.monotonic()
        for key, session in list(self._items.items()):
            if now - session.last_seen > LIMITS.idle_seconds:
                self._items.pop(key).close()


def plain(value):
    """``value`` as strict JSON data: arrays as lists, non-finite floats as the strings
    ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def short(value) -> str:
    """A value as the graph pictures label it: 6 significant digits, up to 4 elements in full,
    a larger array as its shape and mean."""
    array = np.asarray(getattr(value, "_data", value), dtype=float)
    if array.size == 1:
        return f"{array.item():.6g}"
    if array.size <= 4:
        return "[" + ", ".join(f"{v:.6g}" for v in array.ravel()) + "]"
    return f"shape {tuple(array.shape)}, mean {array.mean():.4g}"
