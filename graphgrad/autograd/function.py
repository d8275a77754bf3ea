"""User-defined differentiable operations, with torch's ``autograd.Function`` interface."""

from __future__ import annotations

from .. import _state
from ..engine import GRAD_DTYPES, record
from ..ops import Op
from ..tensor import Tensor, _new, wrap


class FunctionCtx:
    """The ``ctx`` a Function's forward and backward share."""

    def __init__(self, needs_input_grad: tuple) -> None:
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple = ()
        self.output = None  # what forward returned, as computed (not connected to the graph)

    def save_for_backward(self, *tensors) -> None:
        self.saved_tensors = tensors

    def with_output(self, connected) -> FunctionCtx:
        """A copy in which a saved output is replaced by ``connected``, a version of it that is
        part of the graph, so that a second derivative flows through it as in torch."""
        copy = FunctionCtx(self.needs_input_grad)
        copy.__dict__.update(self.__dict__)
        copy.saved_tensors = tuple(connected if t is self.output else t for t in self.saved_tensors)
        return copy

    def mark_non_differentiable(self, *tensors) -> None:
        pass  # the single output of a graphgrad Function is always differentiable


class _FunctionOp(Op):
    """Adapts a Function to the engine's op interface: its backward sees and returns tensors."""

    function: type  # the Function subclass this op runs

    @classmethod
    def forward(cls, *args):
        """Forward again on arrays, with a scratch ctx: used to reconnect a saved output."""
        *inputs, ctx = args
        scratch = FunctionCtx(ctx.needs_input_grad)
        tensors = (wrap(a) if hasattr(a, "shape") else a for a in inputs)
        return cls.function.forward(scratch, *tensors)._data

    @classmethod
    def vjp(cls, ctx, g, *inputs):
        (fctx,) = ctx.params
        first_order = not isinstance(g, Tensor)
        if not first_order and any(t is fctx.output for t in fctx.saved_tensors):
            fctx = fctx.with_output(ctx.out)  # the output, recomputed as part of the graph
        previous = _state.state.grad_enabled
        _state.state.grad_enabled = not first_order
        try:
            grads = cls.function.backward(fctx, wrap(g) if first_order else g)
        finally:
            _state.state.grad_enabled = previous
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(inputs):
            raise RuntimeError(
                f"function {cls.function.__name__}Backward returned an incorrect "
                f"number of gradients (expected {len(inputs)}, got {len(grads)})"
            )
        if first_order:
            return tuple(gr._data if isinstance(gr, Tensor) else gr for gr in grads)
        return grads


class _FunctionMeta(type):
    def __init__(cls, name, bases, namespace):
        super().__init__(name, bases, namespace)
        cls._op = type(
            f"{name}Op",
            (_FunctionOp,),
            dict(name=name, grad_fn_name=f"{name}Backward", function=cls),
        )


class Function(metaclass=_FunctionMeta):
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``, then
    call ``apply``. ``backward`` returns one gradient (or None) per argument of ``forward``.

    >>> import graphgrad as gg
    >>> class Cube(gg.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return grad * 3 * x ** 2
    >>> x = gg.tensor(2.0, requires_grad=True)
    >>> Cube.apply(x).backward(); x.grad.item()
    12.0
    """

    @staticmethod
    def forward(ctx, *args):
        raise NotImplementedError("a Function subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, *grad_outputs)")

    @classmethod
    def apply(cls, *args):
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        previous = _state.state.grad_enabled
        _state.state.grad_enabled = False
        try:
            out = cls.forward(ctx, *args)
        finally:
            _state.state.grad_enabled = previous
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return one Tensor, got {type(out).__name__}"
            )
        if not (previous and any(needs)) or out._data.dtype not in GRAD_DTYPES:
            return out  # an output that is not floating point never requires grad, as in torch
        ctx.output = out
        arrays = tuple(a._data if isinstance(a, Tensor) else a for a in args)
        result = _new(out._data, True)
        result.grad_fn = record(cls._op, args, arrays, (ctx,), out._data, needs)
        return result
