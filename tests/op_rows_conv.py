"""Op-table rows: convolution and pooling (graphgrad/ops/conv.py)."""

from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ROWS: list[OpCase] = []
