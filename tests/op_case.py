"""The op table's row type, shared by tests/test_ops.py and the row files ``op_rows_*.py``.

A row file holds the rows of one family of primitives (``ROWS``); test_ops.py runs every row
against NumPy, float64 finite differences and torch, to first and higher order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class OpCase:
    op: str  # the registered primitive this row exercises
    call: Callable  # call(lib, *tensors) with lib = graphgrad or torch
    ref: Callable | None  # the same computation in NumPy; None when NumPy has no twin
    shapes: list  # input shapes to try: each a tuple of shapes, one per input
    low: float = -2.0
    high: float = 2.0
    domains: dict = field(default_factory=dict)  # input index -> (low, high) override
    grad: bool = True  # differentiable
    distinct: bool = False  # inputs must have distinct values (extrema, sorting)

    def __str__(self) -> str:
        return self.op


UNARY = [(5,), (2, 3), ()]
BROADCAST = [((3, 1), (1, 4)), ((2, 3), ()), ((), (4,)), ((2, 1, 3), (4, 1))]
POS = (0.5, 2.0)


def unary(op, call, ref, **kw):
    return OpCase(op, call, ref, [(s,) for s in UNARY], **kw)


def binary(op, call, ref, **kw):
    return OpCase(op, call, ref, BROADCAST, **kw)
