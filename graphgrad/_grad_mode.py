"""Whether operations record a graph: one flag per thread, never a class attribute."""

import threading


class _GradState(threading.local):
    enabled = True  # class default: every new thread starts with gradients on, like PyTorch


state = _GradState()


def is_grad_enabled() -> bool:
    """True when operations on tensors that require grad are being recorded.

    >>> import graphgrad as gg
    >>> gg.is_grad_enabled()
    True
    """
    return state.enabled
