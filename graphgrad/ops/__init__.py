"""Primitive operations.

Each primitive is one class: a NumPy ``forward`` and its vector-Jacobian product ``vjp`` side by
side. Everything else reads this one definition: the eager engine, the Graph executors, gradcheck,
explain and the op test table.

A ``vjp(ctx, grad, *inputs)`` returns one gradient per input (``None`` for "no gradient"), and may
return it in the broadcast shape: the engine sums it back to the input's shape. It is written
against ``ctx.xp``, a small namespace that is NumPy when the engine hands it arrays and graphgrad's
own differentiable functions when it hands it tensors (``create_graph=True``). So one definition
serves first and higher order, and the first-order path never builds tensors. Under
``create_graph=True`` every array input arrives as a tensor (a constant one when it does not
require grad), so a vjp never mixes arrays with tensors; numbers and None stay as they are.
"""

from __future__ import annotations

import numpy as np

OPS: dict[str, type[Op]] = {}


class Op:
    """Base of every primitive; subclasses are registered by name with :func:`register`."""

    name: str = ""
    grad_fn_name: str = ""
    saves = True  # the vjp reads input or output values, not only their shapes
    # What the vjp reads, so that a compiled plan frees every other buffer as soon as the forward
    # no longer needs it, as torch saves only what a backward formula reads. False inputs: the
    # vjp reads ctx.out only (relu, tanh, exp...). True output: it reads ctx.out (a meta-test in
    # tests/test_ops.py holds this flag to the vjp's source).
    vjp_reads_inputs = True
    vjp_reads_output = False
    # False when no output is ever floating point (comparisons, argmax): a Graph run sends such a
    # node no gradient. Eager autograd needs no flag: it never records a node for an output that
    # is not floating point, whatever the op (engine.GRAD_DTYPES), as torch.
    differentiable = True
    floating = False  # integer inputs are first converted to the default float dtype

    @staticmethod
    def forward(*args) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def vjp(ctx, grad, *inputs):
        raise NotImplementedError

    @classmethod
    def node_name(cls, node) -> str:
        """The name torch gives this op's backward node; some ops name it by their arguments."""
        return cls.grad_fn_name

    @staticmethod
    def error(*args) -> str | None:
        """Explain why ``forward(*args)`` failed, in terms of the op's arguments (shapes)."""
        return None


def register(cls: type[Op]) -> type[Op]:
    if cls.name in OPS:
        raise ValueError(f"op {cls.name!r} is registered twice")
    OPS[cls.name] = cls
    return cls


def arrays_in(params):
    """Every array in an op's parameters (an index may be a tuple of arrays and slices)."""
    stack = list(params)
    while stack:
        p = stack.pop()
        if isinstance(p, np.ndarray):
            yield p
        elif isinstance(p, tuple):
            stack.extend(p)


def shape_str(x) -> str:
    dims = getattr(x, "shape", None)
    return str(tuple(dims)) if dims is not None else repr(x)


from . import (  # noqa: E402,F401  (registers the ops)
    conv,
    decomp,
    elementwise,
    linalg,
    recurrent,
    reduce,
    scan,
    select,
    shape,
    special,
)
