"""``Parameter``: a tensor that a :class:`~graphgrad.nn.Module` registers as one of its weights."""

from __future__ import annotations

from ..creation import empty
from ..tensor import Tensor, _new


class Parameter(Tensor):
    """A leaf tensor that requires grad and shares memory with ``data`` (no copy).

    >>> import graphgrad as gg
    >>> p = gg.nn.Parameter(gg.ones(2))
    >>> p
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
    >>> p.is_leaf, isinstance(p, gg.Tensor)
    (True, True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter: data must be a Tensor, got {type(data).__name__}")
        param = _new(data._data, False, cls=cls)  # the same memory, as torch's Parameter
        param.requires_grad_(requires_grad)
        return param

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass  # everything is set in __new__; Tensor.__init__ would overwrite it

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
