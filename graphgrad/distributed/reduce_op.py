"""``ReduceOp``: how ``all_reduce`` and ``reduce_scatter`` combine the ranks' tensors."""

from __future__ import annotations

import enum


class ReduceOp(enum.Enum):
    """torch.distributed's reduction names.

    >>> from graphgrad.distributed import ReduceOp
    >>> ReduceOp.SUM, ReduceOp["AVG"]
    (<ReduceOp.SUM: 0>, <ReduceOp.AVG: 1>)
    """

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
