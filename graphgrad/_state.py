"""Per-thread state: whether operations record a graph for autograd, and whether a Graph is being
captured. Thread-local, never class attributes, so threads never see each other's modes."""

import functools
import threading


class _ThreadState(threading.local):
    # Class defaults: every new thread starts with gradients on and no capture, like PyTorch.
    grad_enabled = True
    # While graphgrad.trace or graphgrad.compile records this thread: a callable
    # (op, inputs, params, output, arrays) told of every primitive run; compile's recorder also
    # has the optional methods backward, read, draw, module and call (see graphgrad/compiler.py).
    capture = None


state = _ThreadState()


def replayed(function):
    """Mark ``function`` as one step that ``graphgrad.compile`` repeats whole at each replay:
    an optimizer's step or ``zero_grad`` works on NumPy memory, out of sight of the op stream."""

    @functools.wraps(function)
    def call(*args, **kwargs):
        recorder = getattr(state.capture, "call", None)
        if recorder is None:
            return function(*args, **kwargs)
        return recorder(function, args, kwargs)

    return call


def forward_hook(hook, module, args, output):
    """Call a module's forward hook; a recording ``graphgrad.compile`` records the call, so
    that its replays call the hook again with their own tensors."""
    recorder = getattr(state.capture, "hook", None)
    if recorder is None:
        return hook(module, args, output)
    return recorder(hook, module, args, output)


def note(event: str, *details) -> None:
    """Tell a recording ``graphgrad.compile`` of an event it must see (a value read into
    Python, a random draw, a module called), if it listens for it."""
    listener = getattr(state.capture, event, None)
    if listener is not None:
        listener(*details)


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded.

    >>> import graphgrad as gg
    >>> gg.is_grad_enabled()
    True
    """
    return state.grad_enabled
