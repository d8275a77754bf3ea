"""Op-table rows: elementwise math and activations (graphgrad/ops/special.py)."""

from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ROWS: list[OpCase] = []
