"""no_grad, enable_grad, set_grad_enabled: context managers and decorators on a per-thread flag."""

from __future__ import annotations

import functools

from .._state import is_grad_enabled, state


class _GradModeContext:
    """Sets the grad flag on entry and restores the previous value on exit; also a decorator."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = bool(enabled)
        self._previous: list[bool] = []

    def __enter__(self):
        self._previous.append(state.grad_enabled)
        state.grad_enabled = self._enabled
        return self

    def __exit__(self, *exc) -> None:
        state.grad_enabled = self._previous.pop()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)(*self._args()):
                return fn(*args, **kwargs)

        return wrapper

    def _args(self) -> tuple:
        return ()


class _BareDecorator(_GradModeContext):
    """Also usable without parentheses: ``@no_grad`` as well as ``@no_grad()``."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_BareDecorator):  # noqa: N801 - torch's name
    """Operations inside do not record a graph.

    >>> import graphgrad as gg
    >>> x = gg.ones(2, requires_grad=True)
    >>> with gg.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self, orig_func=None) -> None:
        super().__init__(False)


class enable_grad(_BareDecorator):  # noqa: N801
    """Record operations again, e.g. inside a ``no_grad`` block."""

    def __init__(self, orig_func=None) -> None:
        super().__init__(True)


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Turn recording on or off; takes effect at once, like torch, and also works as a context.

    >>> import graphgrad as gg
    >>> with gg.set_grad_enabled(False):
    ...     gg.is_grad_enabled()
    False
    """

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._previous.append(state.grad_enabled)
        state.grad_enabled = self._enabled

    def __enter__(self):
        return self

    def _args(self) -> tuple:
        return (self._enabled,)

    def __call__(self, fn):
        state.grad_enabled = self._previous.pop()  # used as a decorator: undo the immediate switch
        return super().__call__(fn)

    def __exit__(self, *exc) -> None:
        state.grad_enabled = self._previous.pop()


class inference_mode(_GradModeContext):  # noqa: N801
    """Same as :class:`no_grad` in graphgrad (there is no separate inference tensor kind)."""

    def __init__(self, mode: bool = True) -> None:
        super().__init__(not mode)
        self._mode = mode

    def _args(self) -> tuple:
        return (self._mode,)


__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled"]
