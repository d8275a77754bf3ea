"""Reverse-mode automatic differentiation: backward, grad, Functions, gradcheck, grad mode."""

from __future__ import annotations

import warnings

import numpy as np

from .. import _tensor_ns, engine
from .._backward import _as_list, _root_grads, backward
from ..tensor import Tensor
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, inference_mode, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck, gradgradcheck

__all__ = [
    "backward",
    "grad",
    "Function",
    "FunctionCtx",
    "gradcheck",
    "gradgradcheck",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled",
    "Variable",
]


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, returned rather than stored.

    >>> import graphgrad as gg
    >>> x = gg.tensor(3.0, requires_grad=True)
    >>> (dx,) = gg.autograd.grad(x ** 3, x, create_graph=True)
    >>> (d2x,) = gg.autograd.grad(dx, x)
    >>> dx.item(), d2x.item()
    (27.0, 18.0)
    """
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    root_grads = _root_grads(outs, _as_list(grad_outputs), create_graph, "grad")
    captured = engine.run_backward(
        outs,
        root_grads,
        retain_graph=create_graph if retain_graph is None else retain_graph,
        create_graph=create_graph,
        tensor_ns=_tensor_ns,
        capture=ins,
    )
    result = []
    for i, (t, g) in enumerate(zip(ins, captured)):
        if g is None:
            if materialize_grads:
                g = np.zeros(t._data.shape, t._data.dtype)
            elif not allow_unused:
                raise RuntimeError(
                    f"grad: One of the differentiated Tensors (input {i}, shape "
                    f"{tuple(t.shape)}) appears to not have been used in the "
                    f"graph. Set allow_unused=True if this is the desired behavior."
                )
            else:
                result.append(None)
                continue
        result.append(g if isinstance(g, Tensor) else _tensor_ns.wrap(np.array(g)))
    return tuple(result)


class _VariableMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor)  # every tensor is a Variable, as in torch


class Variable(metaclass=_VariableMeta):
    """torch's deprecated wrapper (torch.autograd.Variable): ``Variable(t, requires_grad)`` is
    a new leaf tensor sharing ``t``'s memory, out of any graph; ``Variable()`` is empty.

    >>> import graphgrad as gg
    >>> from graphgrad.autograd import Variable
    >>> v = Variable(gg.ones(2), requires_grad=True)
    >>> type(v).__name__, v.requires_grad, v.is_leaf, isinstance(v, Variable)
    ('Tensor', True, True, True)
    """

    def __new__(cls, data=None, requires_grad: bool = False, volatile: bool = False) -> Tensor:
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use `with "
                          "graphgrad.no_grad():` instead.", UserWarning, stacklevel=2)
        if data is None:
            data = Tensor()
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        tensor = data.detach()
        if requires_grad:
            tensor.requires_grad_(True)
        return tensor
