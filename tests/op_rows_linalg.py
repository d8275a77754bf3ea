"""Op-table rows: products and graphgrad.linalg (graphgrad/ops/decomp.py)."""

from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ROWS: list[OpCase] = []
