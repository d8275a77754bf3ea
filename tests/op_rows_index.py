"""Op-table rows: sorting, scans and indexing (graphgrad/ops/select.py, ops/scan.py)."""

from op_case import BROADCAST, POS, OpCase, binary, unary  # noqa: F401

ROWS: list[OpCase] = []
