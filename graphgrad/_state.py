"""Per-thread state: whether operations record a graph for autograd, and whether a Graph is being
captured. Thread-local, never class attributes, so threads never see each other's modes."""

import threading


class _ThreadState(threading.local):
    # Class defaults: every new thread starts with gradients on and no capture, like PyTorch.
    grad_enabled = True
    capture = None  # a callable(op, inputs, params, output) while graphgrad.trace records


state = _ThreadState()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded.

    >>> import graphgrad as gg
    >>> gg.is_grad_enabled()
    True
    """
    return state.grad_enabled
